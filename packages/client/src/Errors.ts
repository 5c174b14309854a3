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
