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
/** Any store under a key prefix: each named queue's objects (`queues/<name>/`). */
export * as PrefixedStore from "./PrefixedStore.js"
// S3 and GCS are subpaths (`@osqueue/storage/s3`, `@osqueue/storage/gcs`) so that their SDKs
// load only where they are used: importing them here would add a second to every start.
