/**
 * @osqueue/storage: the `ObjectStore` service (bytes under keys, with a version token and
 * conditional writes) and its layers. Pick one layer per deployment; everything above
 * (`Cas`, `Election`, the broker) only sees `ObjectStore`.
 */
export * from "./ObjectStore.js"
/** In-process memory: tests and demos. */
export * as MemoryStore from "./MemoryStore.js"
/** A local directory: the embedded default, safe across processes and crashes. */
export * as FileStore from "./FileStore.js"
/** Fault injection over any other layer: latency, refused and ambiguous writes. */
export * as FaultyStore from "./FaultyStore.js"
/** Amazon S3 and S3-compatible servers (conditional PutObject). */
export * as S3Store from "./S3Store.js"
/** Google Cloud Storage (ifGenerationMatch). */
export * as GcsStore from "./GcsStore.js"
