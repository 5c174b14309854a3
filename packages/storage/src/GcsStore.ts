/**
 * The ObjectStore on Google Cloud Storage. Versions are object generations; writes are uploads
 * with `ifGenerationMatch` (0 = only if absent), and the new generation comes from the upload's
 * own response, never from a later read.
 *
 * Failures mean the same as on S3: 412 → PreconditionFailed; 429, 503, 408, refused connections →
 * StoreUnavailable; timeouts and other 5xx on a write → OutcomeUnknown (read back to know);
 * anything else → StoreFailure. The client's own retries are off (`autoRetry: false`): it treats
 * uploads with a generation precondition as safe to repeat, and a repeated upload that had landed
 * fails its precondition. Reads are retried here, visibly.
 *
 * GCS allows about one write per second to one object, hence `minWriteInterval` of 1 s.
 */
import { type File, type FileMetadata, Storage } from "@google-cloud/storage"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { createHash } from "node:crypto"
import * as Remote from "./internal/remote.js"
import {
  type Body,
  bodyBytes,
  type Metadata,
  type ObjectHead,
  ObjectStore,
  type ObjectStoreShape,
  OutcomeUnknown,
  type PutOptions,
  type StoredObject,
  StoreUnavailable,
  type WriteCondition
} from "./ObjectStore.js"

export interface GcsStoreConfig {
  readonly bucket: string
  /** Every key lives under this prefix; a missing trailing "/" is added. Default: none. */
  readonly prefix?: string
  /**
   * Another JSON API server (fake-gcs-server, the test stand-in, a private endpoint), e.g.
   * "http://127.0.0.1:4443". Requests to it carry no credentials unless `authWithCustomEndpoint`.
   */
  readonly apiEndpoint?: string
  readonly authWithCustomEndpoint?: boolean
  /** Default: from the credentials (Application Default Credentials). */
  readonly projectId?: string
  /** A service account key file; default: Application Default Credentials. */
  readonly keyFilename?: string
  /** Per request; a write that runs over it reports OutcomeUnknown. Default 10 s. */
  readonly requestTimeout?: Duration.DurationInput
  /** Extra attempts for get/head/list/delete when the store is unavailable. Default 2. */
  readonly readRetries?: number
  /** What the store allows per object. Default 1 s (GCS's documented limit). */
  readonly minWriteInterval?: Duration.DurationInput
}

// A generation read by metadata can be replaced before its bytes are fetched; a few retries
// settle it unless the object is rewritten faster than it can be read.
const consistentReadAttempts = 5

const noSuchBucket = (text: string) => /bucket does not exist/i.test(text)

const backend: Remote.Backend = {
  name: "gcs",
  // ApiError (HTTP answers) carries a numeric `code`; socket errors carry a string one.
  describe: (error) => {
    if (error instanceof Error) {
      const code: unknown = (error as { code?: unknown }).code
      if (typeof code === "number") {
        return { status: code, code: undefined, text: `HTTP ${code}: ${error.message.slice(0, 300)}` }
      }
      const name = typeof code === "string" ? code : error.name
      return { status: undefined, code: name, text: `${name}: ${error.message.slice(0, 300)}` }
    }
    return { status: undefined, code: undefined, text: String(error) }
  },
  networkNames: new Set(["TimeoutError", "AbortError", "FetchError", "RequestError"]),
  hint: (reason, bucket) =>
    noSuchBucket(reason)
      ? ` (bucket "${bucket}" does not exist)`
      : /HTTP 40[13]/.test(reason)
      ? " (access denied: the credentials need storage.objects.get, storage.objects.create, storage.objects.delete and storage.objects.list on the bucket)"
      : "",
  isMissing: (d) => d.status === 404,
  readUnavailable: (status) => status === 408 || status === 429 || status >= 500,
  writeRule: (d, expected) => {
    // 409: another request was changing the object at the same moment; ours did not happen.
    if (d.status === 412 || d.status === 409) return "PreconditionFailed"
    // GCS answers 412 for a missing object too; 404 here can only be the bucket, unless the
    // object vanished under a delete, which is a failed precondition all the same.
    if (d.status === 404 && expected !== undefined && !noSuchBucket(d.text)) return "PreconditionFailed"
    if (d.status === 408 || d.status === 429 || d.status === 503) return "StoreUnavailable"
    return undefined
  }
}

const toMetadata = (raw: FileMetadata["metadata"]): Metadata => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(raw ?? {})) if (v !== null && v !== undefined) out[k] = String(v)
  return out
}

export const make = (config: GcsStoreConfig): Effect.Effect<ObjectStoreShape> =>
  Effect.sync(() => {
    const prefix = Remote.normalizePrefix(config.prefix)
    const timeout = Duration.decode(config.requestTimeout ?? Remote.defaultRequestTimeout)
    const timeoutMs = Duration.toMillis(timeout)
    const storage = new Storage({
      ...(config.apiEndpoint !== undefined ? { apiEndpoint: config.apiEndpoint } : {}),
      ...(config.authWithCustomEndpoint !== undefined
        ? { useAuthWithCustomEndpoint: config.authWithCustomEndpoint }
        : {}),
      ...(config.projectId !== undefined ? { projectId: config.projectId } : {}),
      ...(config.keyFilename !== undefined ? { keyFilename: config.keyFilename } : {}),
      // See the module comment: a repeated conditional upload reports its own success as a conflict.
      retryOptions: { autoRetry: false, maxRetries: 0 },
      // A backstop for quiet sockets; the Effect timeout below is the one that decides.
      timeout: timeoutMs + 1000
    })
    const bucket = storage.bucket(config.bucket)

    const objectName = (key: string) => `${prefix}${key}`

    const { asDelete, asOptionalRead, asPut, asRead, call, failure } = Remote.make(
      backend,
      { bucket: config.bucket, timeout, readRetries: config.readRetries ?? 2 }
    )

    const readMetadata = (operation: string, key: string) =>
      call(() => bucket.file(objectName(key)).getMetadata().then(([m]) => m)).pipe(asOptionalRead(operation, key))

    const generationOf = (operation: string, key: string, metadata: FileMetadata) =>
      metadata.generation === undefined
        ? Effect.fail(failure(operation, key, "the object's metadata carried no generation", undefined))
        : Effect.succeed(String(metadata.generation))

    const get = Effect.fn("GcsStore.get", { captureStackTrace: false })(function*(key: string) {
      yield* Effect.annotateCurrentSpan("key", key)
      for (let attempt = 1; attempt <= consistentReadAttempts; attempt++) {
        const metadata = yield* readMetadata("get", key)
        if (Option.isNone(metadata)) return Option.none<StoredObject>()
        const generation = yield* generationOf("get", key, metadata.value)
        // Pinned to the generation just read, so bytes, version and metadata belong together.
        const pinned: File = bucket.file(objectName(key), { generation })
        const bytes = yield* call(() => pinned.download().then(([data]) => data)).pipe(asOptionalRead("get", key))
        if (Option.isSome(bytes)) {
          return Option.some<StoredObject>({
            bytes: new Uint8Array(bytes.value.buffer, bytes.value.byteOffset, bytes.value.byteLength),
            version: generation,
            metadata: toMetadata(metadata.value.metadata)
          })
        }
        yield* Effect.logDebug("object replaced between metadata and download; reading again").pipe(
          Effect.annotateLogs({ backend: "gcs", bucket: config.bucket, key: objectName(key), generation, attempt })
        )
      }
      return yield* new StoreUnavailable({
        operation: "get",
        key,
        cause: `the object changed under ${consistentReadAttempts} consecutive reads`
      })
    })

    const head = Effect.fn("GcsStore.head", { captureStackTrace: false })(function*(key: string) {
      yield* Effect.annotateCurrentSpan("key", key)
      const metadata = yield* readMetadata("head", key)
      if (Option.isNone(metadata)) return Option.none<ObjectHead>()
      const version = yield* generationOf("head", key, metadata.value)
      return Option.some<ObjectHead>({ version, metadata: toMetadata(metadata.value.metadata) })
    })

    const put = Effect.fn("GcsStore.put", { captureStackTrace: false })(
      function*(key: string, body: Body, condition: WriteCondition, options?: PutOptions) {
        const bytes = bodyBytes(body)
        const expected = "ifMatch" in condition ? condition.ifMatch : undefined
        yield* Effect.annotateCurrentSpan({ key, bytes: bytes.length, expected: expected ?? "(absent)" })
        const file = bucket.file(objectName(key))
        const written = yield* call(async () => {
          await file.save(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
            // one request: a resumable upload is several, and its session outlives a timeout
            resumable: false,
            // The client's check runs after the upload and deletes the object on a mismatch,
            // which for queue.json is worse than the mismatch; the server checks md5Hash
            // before it stores anything instead.
            validation: false,
            timeout: timeoutMs + 1000,
            preconditionOpts: { ifGenerationMatch: expected ?? 0 },
            metadata: {
              contentType: Remote.contentTypeOf(key),
              md5Hash: createHash("md5").update(bytes).digest("base64"),
              metadata: { ...options?.metadata }
            }
          })
          // save() leaves the upload's response on the File: the generation that was written
          return file.metadata.generation
        }).pipe(asPut(key, expected, objectName(key)))
        if (written === undefined) {
          // It landed, but without its generation the caller has no version: read back to find it.
          return yield* new OutcomeUnknown({ key, cause: "the upload's response carried no generation" })
        }
        return String(written)
      }
    )

    const del = Effect.fn("GcsStore.delete")(function*(key: string, ifMatch?: string) {
      yield* Effect.annotateCurrentSpan({ key, expected: ifMatch ?? "(any)" })
      yield* call(() =>
        bucket.file(objectName(key)).delete({
          ignoreNotFound: true,
          ...(ifMatch !== undefined ? { ifGenerationMatch: ifMatch } : {})
        })
      ).pipe(asDelete(key, ifMatch))
    })

    const list = Effect.fn("GcsStore.list")(function*(listPrefix: string) {
      yield* Effect.annotateCurrentSpan("prefix", listPrefix)
      const names = yield* call(() =>
        bucket.getFiles({ prefix: objectName(listPrefix), autoPaginate: true }).then(([files]) =>
          files.map((f) => f.name)
        )
      ).pipe(asRead("list", listPrefix))
      return names.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length)).sort()
    })

    return {
      backend: "gcs",
      minWriteInterval: Duration.decode(config.minWriteInterval ?? Duration.seconds(1)),
      get,
      head,
      put,
      delete: del,
      list
    } satisfies ObjectStoreShape
  })

export const layer = (config: GcsStoreConfig): Layer.Layer<ObjectStore> => Layer.effect(ObjectStore, make(config))

/**
 * GCS_BUCKET (required), GCS_PREFIX, GCS_API_ENDPOINT (else STORAGE_EMULATOR_HOST, the variable
 * fake-gcs-server and Google's tools use), GCS_PROJECT_ID, GCS_REQUEST_TIMEOUT.
 * Credentials: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, metadata server).
 */
export const config: Config.Config<GcsStoreConfig> = Config.all({
  bucket: Config.nonEmptyString("GCS_BUCKET").pipe(Config.withDescription("bucket holding the queue's objects")),
  prefix: Config.string("GCS_PREFIX").pipe(Config.withDefault(""), Config.withDescription("object name prefix")),
  apiEndpoint: Config.option(
    Config.string("GCS_API_ENDPOINT").pipe(
      Config.orElse(() =>
        // the emulator convention allows a bare host:port
        Config.string("STORAGE_EMULATOR_HOST").pipe(Config.map((h) => (/^https?:\/\//.test(h) ? h : `http://${h}`)))
      )
    )
  ),
  projectId: Config.option(Config.string("GCS_PROJECT_ID")),
  requestTimeout: Config.duration("GCS_REQUEST_TIMEOUT").pipe(Config.withDefault(Remote.defaultRequestTimeout))
}).pipe(
  Config.map(({ apiEndpoint, projectId, ...rest }): GcsStoreConfig => ({
    ...rest,
    ...(Option.isSome(apiEndpoint) ? { apiEndpoint: apiEndpoint.value } : {}),
    ...(Option.isSome(projectId) ? { projectId: projectId.value } : {})
  }))
)

/** `layer` configured from the environment (see `config`). */
export const layerConfig: Layer.Layer<ObjectStore, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(config, layer)
)
