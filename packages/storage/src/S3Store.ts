/**
 * The ObjectStore on S3 (AWS, or any server that implements conditional PUT: Ceph radosgw is the
 * one the tests run against). Versions are ETags without quotes; writes are `PutObject` with
 * `If-Match` or `If-None-Match: *`.
 *
 * What a conditional write's failure means is the point of this module (`backend` here, the rules
 * S3 shares with GCS in internal/remote.ts):
 * - 412, 409 ConditionalRequestConflict, 404 on If-Match → PreconditionFailed
 * - 429, 503, SlowDown, refused connections → StoreUnavailable (nothing was written)
 * - timeouts, other 5xx, broken connections → OutcomeUnknown (it may have landed: read back)
 * - anything else → StoreFailure, with a reason a person can act on
 *
 * The SDK never retries on its own (`maxAttempts: 1`): a retried PUT that had landed comes back
 * 412 and would be reported as someone else's write. Reads are retried here, visibly.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
  S3ServiceException
} from "@aws-sdk/client-s3"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { createHash } from "node:crypto"
import * as Remote from "./internal/remote.js"
import {
  type Body,
  bodyBytes,
  type Metadata,
  type ObjectHead,
  ObjectStore,
  type ObjectStoreShape,
  PreconditionFailed,
  type PutOptions,
  type StoredObject,
  type WriteCondition
} from "./ObjectStore.js"

/** How the ETag goes into `If-Match`: AWS takes it quoted; Ceph radosgw only matches it unquoted. */
export type EtagQuoting = "quoted" | "unquoted"

export interface S3Credentials {
  readonly accessKeyId: string
  readonly secretAccessKey: Redacted.Redacted<string>
  readonly sessionToken?: Redacted.Redacted<string>
}

export interface S3StoreConfig {
  readonly bucket: string
  /** Every key lives under this prefix; a missing trailing "/" is added. Default: none. */
  readonly prefix?: string
  /** Default: the SDK's chain (AWS_REGION, profile), or "us-east-1" with a custom endpoint. */
  readonly region?: string
  /** For S3-compatible servers, e.g. "http://127.0.0.1:7480". Default: AWS. */
  readonly endpoint?: string
  /** `bucket` in the path instead of the host name (most non-AWS servers). Default: false. */
  readonly forcePathStyle?: boolean
  /** Default "quoted" (AWS). Ceph radosgw needs "unquoted". */
  readonly etagQuoting?: EtagQuoting
  /** Per request; a conditional put that runs over it reports OutcomeUnknown. Default 10 s. */
  readonly requestTimeout?: Duration.DurationInput
  /** Extra attempts for get/head/list/delete when the store is unavailable. Default 2. */
  readonly readRetries?: number
  /** Default: the SDK's default chain (env, profile, instance role, ...). */
  readonly credentials?: S3Credentials
}

const throttledCodes = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "TooManyRequests",
  "RequestLimitExceeded"
])
const isThrottled = (code: string | undefined) => code !== undefined && throttledCodes.has(code)

const describe = (error: unknown): Remote.Described => {
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode
    // radosgw sends no message for some errors, and the SDK then says "UnknownError"
    const message = error.message && error.message !== "UnknownError" ? `: ${error.message}` : ""
    return { status, code: error.name, text: `HTTP ${status ?? "?"} ${error.name}${message}` }
  }
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code ?? error.name
    return { status: undefined, code, text: `${code}: ${error.message}` }
  }
  return { status: undefined, code: undefined, text: String(error) }
}

const backend: Remote.Backend = {
  name: "s3",
  describe,
  networkNames: new Set(["TimeoutError", "AbortError", "RequestTimeout", "NetworkingError"]),
  hint: (reason, bucket) =>
    reason.includes("NoSuchBucket")
      ? ` (bucket "${bucket}" does not exist)`
      : reason.includes("HTTP 403")
      ? " (access denied: the credentials need s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on the bucket)"
      : reason.includes("HTTP 301") || reason.includes("PermanentRedirect")
      ? " (the bucket is in another region: set S3_REGION)"
      : "",
  isMissing: (d) => d.status === 404 && d.code !== "NoSuchBucket",
  readUnavailable: (status, code) => status === 429 || status >= 500 || isThrottled(code),
  writeRule: (d, expected) => {
    if (d.status === 412 || (d.status === 409 && d.code === "ConditionalRequestConflict")) return "PreconditionFailed"
    // AWS answers 404 to If-Match on a missing key (radosgw: 412). The object is gone, which is
    // a failed precondition, never a reason to create it again.
    if (d.status === 404 && expected !== undefined && d.code !== "NoSuchBucket") return "PreconditionFailed"
    if (d.status === 429 || d.status === 503 || isThrottled(d.code)) return "StoreUnavailable"
    // 409 OperationAborted and 400 RequestTimeout are refusals: nothing was written.
    if ((d.status === 409 && d.code === "OperationAborted") || d.code === "RequestTimeout") return "StoreUnavailable"
    return undefined
  }
}

const unquote = (etag: string): string =>
  etag.length >= 2 && etag.startsWith("\"") && etag.endsWith("\"") ? etag.slice(1, -1) : etag

// S3 sends user metadata as x-amz-meta-* headers: names come back lowercased and values must
// survive HTTP unchanged, so anything else is refused up front instead of read back altered.
const metadataKey = /^[a-z0-9][a-z0-9._-]*$/
const metadataValue = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/

export const checkMetadata = (metadata: Metadata): string | undefined => {
  for (const [name, value] of Object.entries(metadata)) {
    if (!metadataKey.test(name)) {
      return `metadata name "${name}" must be lowercase letters, digits, ".", "_" or "-" (S3 lowercases header names)`
    }
    if (!metadataValue.test(value)) {
      return `metadata value of "${name}" must be printable ASCII without leading or trailing spaces`
    }
  }
  return undefined
}

export const make = (config: S3StoreConfig): Effect.Effect<ObjectStoreShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    const bucket = config.bucket
    const prefix = Remote.normalizePrefix(config.prefix)
    const quoting = config.etagQuoting ?? "quoted"
    const timeout = Duration.decode(config.requestTimeout ?? Remote.defaultRequestTimeout)
    const region = config.region ?? (config.endpoint !== undefined ? "us-east-1" : undefined)

    const client = new S3Client({
      ...(region !== undefined ? { region } : {}),
      ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
      forcePathStyle: config.forcePathStyle ?? false,
      ...(config.credentials !== undefined
        ? {
          credentials: {
            accessKeyId: config.credentials.accessKeyId,
            secretAccessKey: Redacted.value(config.credentials.secretAccessKey),
            ...(config.credentials.sessionToken !== undefined
              ? { sessionToken: Redacted.value(config.credentials.sessionToken) }
              : {})
          }
        }
        : {}),
      // See the module comment: a retried conditional PUT can report its own success as a conflict.
      maxAttempts: 1,
      // The SDK's default CRC32 trailer breaks radosgw and other S3-compatible servers; puts carry
      // Content-MD5 instead, which every S3 implementation checks.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // A backstop for sockets that go quiet; the Effect timeout below is the one that decides.
      requestHandler: { requestTimeout: Duration.toMillis(timeout) + 1000, connectionTimeout: 5000 }
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))

    const objectKey = (key: string) => `${prefix}${key}`
    const ifMatchValue = (version: string) => (quoting === "quoted" ? `"${version}"` : version)

    const { asDelete, asOptionalRead, asPut, asRead, call, failure } = Remote.make(
      backend,
      { bucket, timeout, readRetries: config.readRetries ?? 2 }
    )

    const get = Effect.fn("S3Store.get", { captureStackTrace: false })(function*(key: string) {
      yield* Effect.annotateCurrentSpan("key", key)
      const found = yield* call(async (abortSignal) => {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey(key) }), { abortSignal })
        // Body, ETag and metadata come from one response, so they belong to the same write.
        const bytes = out.Body === undefined ? new Uint8Array(0) : await out.Body.transformToByteArray()
        return { bytes, etag: out.ETag, metadata: out.Metadata ?? {} }
      }).pipe(asOptionalRead("get", key))
      if (Option.isNone(found)) return Option.none<StoredObject>()
      const { bytes, etag, metadata } = found.value
      if (etag === undefined) {
        return yield* failure(
          "get",
          key,
          "the response carried no ETag, so there is no version to write against",
          undefined
        )
      }
      return Option.some<StoredObject>({ bytes, version: unquote(etag), metadata })
    })

    const head = Effect.fn("S3Store.head", { captureStackTrace: false })(function*(key: string) {
      yield* Effect.annotateCurrentSpan("key", key)
      const found = yield* call((abortSignal) =>
        client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey(key) }), { abortSignal })
      ).pipe(asOptionalRead("head", key))
      if (Option.isNone(found)) return Option.none<ObjectHead>()
      const etag = found.value.ETag
      if (etag === undefined) {
        return yield* failure(
          "head",
          key,
          "the response carried no ETag, so there is no version to write against",
          undefined
        )
      }
      return Option.some<ObjectHead>({ version: unquote(etag), metadata: found.value.Metadata ?? {} })
    })

    const put = Effect.fn("S3Store.put", { captureStackTrace: false })(
      function*(key: string, body: Body, condition: WriteCondition, options?: PutOptions) {
        const bytes = bodyBytes(body)
        const expected = "ifMatch" in condition ? condition.ifMatch : undefined
        yield* Effect.annotateCurrentSpan({ key, bytes: bytes.length, expected: expected ?? "(absent)" })
        const metadata = options?.metadata ?? {}
        const invalid = checkMetadata(metadata)
        if (invalid !== undefined) return yield* failure("put", key, invalid, undefined)
        const md5 = createHash("md5").update(bytes).digest()
        const out = yield* call((abortSignal) =>
          client.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: objectKey(key),
              Body: bytes,
              ContentLength: bytes.length,
              ContentType: Remote.contentTypeOf(key),
              ContentMD5: md5.toString("base64"),
              Metadata: { ...metadata },
              ...(expected !== undefined ? { IfMatch: ifMatchValue(expected) } : { IfNoneMatch: "*" })
            }),
            { abortSignal }
          )
        ).pipe(asPut(key, expected, objectKey(key)))
        // A plain PUT's ETag is the MD5 of the bytes; servers that leave it out still mean that.
        return out.ETag !== undefined ? unquote(out.ETag) : md5.toString("hex")
      }
    )

    const del = Effect.fn("S3Store.delete")(function*(key: string, ifMatch?: string) {
      yield* Effect.annotateCurrentSpan({ key, expected: ifMatch ?? "(any)" })
      if (ifMatch !== undefined) {
        // radosgw (and older S3 servers) ignore If-Match on DELETE, so look first. Where the
        // header is honoured (AWS) the delete itself is still conditional; elsewhere a write
        // between this HEAD and the DELETE can be lost, which only matters for concurrent deletes.
        const current = yield* head(key).pipe(Effect.map(Option.map((h) => h.version)))
        if (Option.isNone(current)) return
        if (current.value !== ifMatch) return yield* new PreconditionFailed({ key, expected: ifMatch })
      }
      yield* call((abortSignal) =>
        client.send(
          new DeleteObjectCommand({
            Bucket: bucket,
            Key: objectKey(key),
            ...(ifMatch !== undefined ? { IfMatch: ifMatchValue(ifMatch) } : {})
          }),
          { abortSignal }
        )
      ).pipe(asDelete(key, ifMatch))
    })

    const list = Effect.fn("S3Store.list")(function*(listPrefix: string) {
      yield* Effect.annotateCurrentSpan("prefix", listPrefix)
      const keys: Array<string> = []
      let token: string | undefined = undefined
      do {
        const continuation: string | undefined = token
        const page: ListObjectsV2CommandOutput = yield* call((abortSignal) =>
          client.send(
            new ListObjectsV2Command({
              Bucket: bucket,
              Prefix: objectKey(listPrefix),
              ...(continuation !== undefined ? { ContinuationToken: continuation } : {})
            }),
            { abortSignal }
          )
        ).pipe(asRead("list", listPrefix))
        for (const object of page.Contents ?? []) {
          if (object.Key !== undefined && object.Key.startsWith(prefix)) keys.push(object.Key.slice(prefix.length))
        }
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined
      } while (token !== undefined)
      return keys.sort()
    })

    return {
      backend: "s3",
      minWriteInterval: Duration.zero,
      get,
      head,
      put,
      delete: del,
      list
    } satisfies ObjectStoreShape
  })

/** The S3 store, closing the SDK client with the layer. */
export const layer = (config: S3StoreConfig): Layer.Layer<ObjectStore> => Layer.scoped(ObjectStore, make(config))

/**
 * S3_BUCKET (required), S3_PREFIX, S3_REGION, S3_ENDPOINT, S3_FORCE_PATH_STYLE,
 * S3_ETAG_QUOTING (quoted | unquoted), S3_REQUEST_TIMEOUT (e.g. "10 seconds").
 * Credentials come from the SDK's default chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, roles...).
 */
export const config: Config.Config<S3StoreConfig> = Config.all({
  bucket: Config.nonEmptyString("S3_BUCKET").pipe(Config.withDescription("bucket holding the queue's objects")),
  prefix: Config.string("S3_PREFIX").pipe(
    Config.withDefault(""),
    Config.withDescription("key prefix inside the bucket")
  ),
  region: Config.option(Config.string("S3_REGION")).pipe(Config.withDescription("bucket region")),
  endpoint: Config.option(Config.string("S3_ENDPOINT")).pipe(
    Config.withDescription("S3-compatible endpoint URL; AWS when unset")
  ),
  forcePathStyle: Config.boolean("S3_FORCE_PATH_STYLE").pipe(Config.withDefault(false)),
  etagQuoting: Config.literal("quoted", "unquoted")("S3_ETAG_QUOTING").pipe(
    Config.withDefault("quoted" as const),
    Config.withDescription("how If-Match carries the ETag: radosgw needs unquoted")
  ),
  requestTimeout: Config.duration("S3_REQUEST_TIMEOUT").pipe(Config.withDefault(Remote.defaultRequestTimeout))
}).pipe(
  Config.map(({ endpoint, region, ...rest }): S3StoreConfig => ({
    ...rest,
    ...(Option.isSome(region) ? { region: region.value } : {}),
    ...(Option.isSome(endpoint) ? { endpoint: endpoint.value } : {})
  }))
)

/** `layer` configured from the environment (see `config`). */
export const layerConfig: Layer.Layer<ObjectStore, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(config, layer)
)
