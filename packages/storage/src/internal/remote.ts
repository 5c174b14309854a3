/**
 * What S3Store and GcsStore share: a client call under the layer's timeout, and what a failure
 * means once the backend's own status rules have had their say. Each backend keeps its rules
 * (which answers are conflicts, which are throttling) in its own module, as a `Backend`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import {
  OutcomeUnknown,
  PreconditionFailed,
  type ReadError,
  type StoreError,
  StoreFailure,
  StoreUnavailable
} from "../ObjectStore.js"

export const defaultRequestTimeout = Duration.seconds(10)

/** Raw outcome of one client call, before it is given a meaning for the operation at hand. */
export type CallFailure = { readonly _tag: "Timeout" } | { readonly _tag: "Error"; readonly error: unknown }

export interface Described {
  readonly status: number | undefined
  readonly code: string | undefined
  readonly text: string
}

export interface Backend {
  /** For logs: "s3", "gcs". */
  readonly name: string
  readonly describe: (error: unknown) => Described
  /** Names the client gives network-path errors besides the E* socket codes. */
  readonly networkNames: ReadonlySet<string>
  /** Advice a person can act on, appended to a StoreFailure's reason; "" for none. */
  readonly hint: (reason: string, bucket: string) => string
  /** A 404 that is the object's absence, not the bucket's. */
  readonly isMissing: (d: Described) => boolean
  /** An HTTP answer to a read that means the store is unavailable for now. */
  readonly readUnavailable: (status: number, code: string | undefined) => boolean
  /** The backend's own reading of a failed write; undefined leaves it to the shared rules. */
  readonly writeRule: (
    d: Described,
    expected: string | undefined
  ) => "PreconditionFailed" | "StoreUnavailable" | undefined
}

// Connection errors raised before a byte of the request left: the write cannot have landed.
const notSentCodes = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"])

export const normalizePrefix = (prefix: string | undefined): string =>
  prefix === undefined || prefix === "" ? "" : prefix.endsWith("/") ? prefix : `${prefix}/`

export const contentTypeOf = (key: string) => (key.endsWith(".json") ? "application/json" : "application/octet-stream")

export const make = (
  backend: Backend,
  options: { readonly bucket: string; readonly timeout: Duration.Duration; readonly readRetries: number }
) => {
  const { bucket, readRetries, timeout } = options
  const noAnswer = `no answer within ${Duration.format(timeout)}`

  const call = <A>(f: (signal: AbortSignal) => Promise<A>): Effect.Effect<A, CallFailure> =>
    Effect.tryPromise({ try: f, catch: (error): CallFailure => ({ _tag: "Error", error }) }).pipe(
      Effect.timeoutFail({ duration: timeout, onTimeout: (): CallFailure => ({ _tag: "Timeout" }) })
    )

  const failure = (operation: string, key: string, reason: string, cause: unknown) =>
    new StoreFailure({ operation, key, reason: `${reason}${backend.hint(reason, bucket)}`, cause })

  // Errors from the network path (sockets, timeouts) as opposed to ones the client raises before
  // sending anything (no region, no credentials, bad options), which are configuration errors.
  const isNetworkError = (d: Described, error: unknown) =>
    (d.code !== undefined && (/^E[A-Z]+$/.test(d.code) || backend.networkNames.has(d.code))) ||
    (error instanceof Error && /socket|network|timed? ?out/i.test(error.message))

  const isNotFound = (raw: CallFailure) => raw._tag === "Error" && backend.isMissing(backend.describe(raw.error))

  const readError = (operation: string, key: string, raw: CallFailure): ReadError => {
    if (raw._tag === "Timeout") return new StoreUnavailable({ operation, key, cause: noAnswer })
    const d = backend.describe(raw.error)
    const unavailable = d.status === undefined
      ? isNetworkError(d, raw.error)
      : backend.readUnavailable(d.status, d.code)
    return unavailable
      ? new StoreUnavailable({ operation, key, cause: raw.error })
      : failure(operation, key, d.text, raw.error)
  }

  const writeError = (operation: string, key: string, expected: string | undefined, raw: CallFailure): StoreError => {
    if (raw._tag === "Timeout") return new OutcomeUnknown({ key, cause: noAnswer })
    const d = backend.describe(raw.error)
    switch (backend.writeRule(d, expected)) {
      case "PreconditionFailed":
        return new PreconditionFailed({ key, expected: expected ?? "(absent)" })
      case "StoreUnavailable":
        return new StoreUnavailable({ operation, key, cause: raw.error })
    }
    if (d.status !== undefined && d.status >= 500) return new OutcomeUnknown({ key, cause: raw.error })
    if (d.status === undefined) {
      if (!isNetworkError(d, raw.error)) return failure(operation, key, d.text, raw.error)
      return d.code !== undefined && notSentCodes.has(d.code)
        ? new StoreUnavailable({ operation, key, cause: raw.error })
        : new OutcomeUnknown({ key, cause: raw.error })
    }
    return failure(operation, key, d.text, raw.error)
  }

  const retry = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>, retryable: (e: E) => boolean) =>
    Effect.retry(effect, {
      schedule: Schedule.jittered(Schedule.exponential("100 millis")),
      times: readRetries,
      while: retryable
    })

  /** A read (list) call given its meaning, retried while the store is unavailable. */
  const asRead = (operation: string, key: string) => <A>(effect: Effect.Effect<A, CallFailure>) =>
    retry(
      Effect.mapError(effect, (raw) => readError(operation, key, raw)),
      (e) => e._tag === "StoreUnavailable"
    )

  /** A read of one object, whose absence is an answer rather than a failure. */
  const asOptionalRead = (operation: string, key: string) => <A>(effect: Effect.Effect<A, CallFailure>) =>
    effect.pipe(
      Effect.map(Option.some),
      Effect.catchIf(isNotFound, () => Effect.succeed(Option.none<A>())),
      asRead(operation, key)
    )

  /** A conditional put, whose unknown outcome is logged: someone may have to look at the store. */
  const asPut =
    (key: string, expected: string | undefined, objectKey: string) => <A>(effect: Effect.Effect<A, CallFailure>) =>
      effect.pipe(
        Effect.mapError((raw) => writeError("put", key, expected, raw)),
        Effect.tapError((e) =>
          e._tag === "OutcomeUnknown"
            ? Effect.logWarning("conditional put of unknown outcome").pipe(
              Effect.annotateLogs({ backend: backend.name, bucket, key: objectKey, cause: String(e.cause) })
            )
            : Effect.void
        )
      )

  /**
   * A delete, where an absent object is already deleted. A DELETE can be repeated safely, so an
   * unavailable store is worth another try, and so is an unknown outcome when no version must match.
   */
  const asDelete = (key: string, ifMatch: string | undefined) => <A>(effect: Effect.Effect<A, CallFailure>) =>
    effect.pipe(
      Effect.asVoid,
      Effect.catchIf(isNotFound, () => Effect.void),
      Effect.mapError((raw) => writeError("delete", key, ifMatch, raw)),
      (deleted) =>
        retry(deleted, (e) => e._tag === "StoreUnavailable" || (ifMatch === undefined && e._tag === "OutcomeUnknown"))
    )

  return { call, failure, asRead, asOptionalRead, asPut, asDelete }
}
