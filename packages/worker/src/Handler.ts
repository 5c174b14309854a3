/**
 * What a worker runs per job type: an Effect from the (decoded) payload and a context that
 * can report progress. A failure fails the job with its message — retryable unless it is a
 * `NonRetryable` — and a timeout fails it too.
 */
import type { JobDefinition } from "@osqueue/client"
import type { ChildResult, Job, LeaseToken } from "@osqueue/types"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"

export interface JobContext {
  readonly job: Job
  readonly token: LeaseToken
  readonly workerId: string
  /** 1 for the first attempt. */
  readonly attempt: number
  /** Sends `value` to the broker at once with a heartbeat (it shows on the job as `progress`). */
  readonly progress: (value: unknown) => Effect.Effect<void>
  /**
   * A flow's parent: how each of its children ended, by id in the flow's order — `result` for one
   * that completed, `error` for one that died (docs/flows.md). Empty for a job with no children.
   */
  readonly childResults: Readonly<Record<string, ChildResult>>
}

/** Fail a handler with this to send the job to the dead-letter list without further attempts. */
export class NonRetryable extends Data.TaggedError("NonRetryable")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * The handler ran longer than its time limit (the job's `timeoutMs`, else its type's timeout): it
 * is interrupted, and the attempt failed (retried if attempts remain).
 */
export class JobTimeout extends Data.TaggedError("JobTimeout")<{
  readonly type: string
  readonly timeout: Duration.Duration
}> {
  override get message() {
    return `the ${this.type} handler did not finish within ${Duration.format(this.timeout)}`
  }
}

export type HandlerFunction<P, A, R> = (payload: P, ctx: JobContext) => Effect.Effect<A, unknown, R>

export interface HandlerOptions {
  /** Fail the attempt when the handler runs longer than this (a job's own `timeoutMs` wins). */
  readonly timeout?: Duration.DurationInput | undefined
}

export interface HandlerSpec<R> {
  readonly _tag: "HandlerSpec"
  /** Decodes the payload (and encodes the result) when present. */
  readonly definition: JobDefinition.Any | undefined
  // The payload's type is fixed by `handler` from the definition; here every spec must fit.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly handle: HandlerFunction<any, unknown, R>
  readonly timeout: Duration.Duration | undefined
}

/** A handler: a plain function (raw payload) or a spec from `handler(...)`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handler<R> = HandlerSpec<R> | HandlerFunction<any, unknown, R>

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handlers = Readonly<Record<string, Handler<any>>>

/** The services the handlers need. */
export type HandlersContext<H extends Handlers> = {
  [K in keyof H]: H[K] extends Handler<infer R> ? R : never
}[keyof H]

/** A handler for a defined job type: the payload arrives decoded; the result is encoded. */
export const handler: {
  <D extends JobDefinition.Any, R>(
    definition: D,
    handle: HandlerFunction<JobDefinition.Payload<D>, JobDefinition.Result<D>, R>,
    options?: HandlerOptions
  ): HandlerSpec<R>
  <R>(handle: HandlerFunction<unknown, unknown, R>, options?: HandlerOptions): HandlerSpec<R>
} = (
  first: JobDefinition.Any | HandlerFunction<unknown, unknown, unknown>,
  second?: HandlerFunction<unknown, unknown, unknown> | HandlerOptions,
  third?: HandlerOptions
): HandlerSpec<never> => {
  const [definition, handle, options] = typeof first === "function"
    ? [undefined, first, second as HandlerOptions | undefined]
    : [first, second as HandlerFunction<unknown, unknown, unknown>, third]
  return {
    _tag: "HandlerSpec",
    definition,
    handle: handle as HandlerFunction<unknown, unknown, never>,
    timeout: options?.timeout === undefined ? undefined : Duration.decode(options.timeout)
  }
}

export const toSpec = <R>(entry: Handler<R>): HandlerSpec<R> =>
  typeof entry === "function"
    ? { _tag: "HandlerSpec", definition: undefined, handle: entry, timeout: undefined }
    : entry
