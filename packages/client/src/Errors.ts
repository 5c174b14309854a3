/**
 * Errors the client adds to the broker's own (`OsqueueError`): the broker could not be reached
 * at all. Everything else a call can fail with came over the wire from a broker.
 */
import type { OsqueueError } from "@osqueue/types"
import * as Data from "effect/Data"

/** No answer from any broker (connection refused, socket closed, timeout) within the retry budget. */
export class BrokerUnreachable extends Data.TaggedError("BrokerUnreachable")<{
  readonly url: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `broker ${this.url} is unreachable: ${this.reason}`
  }
}

/** What a client call can fail with. */
export type ClientError = OsqueueError | BrokerUnreachable

/**
 * A job awaited for its result ended without one: dead (its attempts used up, or failed as not
 * retryable) or cancelled. `lastError` is the last attempt's error, when one was recorded.
 */
export class JobFailed extends Data.TaggedError("JobFailed")<{
  readonly jobId: string
  readonly type: string
  readonly state: "dead" | "cancelled"
  readonly attempts: number
  readonly lastError?: string | undefined
}> {
  override get message() {
    const last = this.lastError === undefined ? "no error was recorded" : `last error: ${this.lastError}`
    return this.state === "dead"
      ? `job ${this.jobId} (${this.type}) is dead after ${this.attempts} attempt(s); ${last}`
      : `job ${this.jobId} (${this.type}) was cancelled; ${last}`
  }
}

/** The job did not finish within the time the caller would wait. It was not cancelled: it goes on. */
export class WaitTimeout extends Data.TaggedError("WaitTimeout")<{
  readonly jobId: string
  readonly waitMs: number
}> {
  override get message() {
    return `job ${this.jobId} did not finish within ${this.waitMs} ms; it goes on (it was not cancelled): wait for it again, or cancel it`
  }
}

/** The job completed, but its result does not decode with the definition it was awaited with. */
export class UnexpectedResult extends Data.TaggedError("UnexpectedResult")<{
  readonly jobId: string
  readonly type: string
  readonly reason: string
}> {
  override get message() {
    return `job ${this.jobId} completed with a result that does not match the ${this.type} definition (${this.reason}); the worker and this producer disagree about it`
  }
}

/** What waiting for a job's result can fail with, besides a client call's errors. */
export type WaitError = ClientError | JobFailed | WaitTimeout | UnexpectedResult
