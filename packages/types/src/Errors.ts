/**
 * Every error that crosses the wire. Each names what was wrong and what to do; the broker maps
 * them to HTTP status codes for REST (see `httpStatus`).
 */
import * as Schema from "effect/Schema"

/**
 * Most characters a refusal's message quotes: a decode error quotes the value it refused, and a
 * request of megabytes must not be answered with several times its size.
 */
export const maxQuotedChars = 2_000

/** `text` cut in the middle to `maxQuotedChars`, saying how much was left out. */
export const clipped = (text: string): string =>
  text.length <= maxQuotedChars
    ? text
    : `${text.slice(0, maxQuotedChars / 2)}…(${text.length - maxQuotedChars} characters left out)…${
      text.slice(-maxQuotedChars / 2)
    }`

export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  message: Schema.String
}) {}

export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", {
  id: Schema.String
}) {
  override get message() {
    return `no job with id ${this.id} (it may have finished and left the retention window)`
  }
}

export class ScheduleNotFound extends Schema.TaggedError<ScheduleNotFound>()("ScheduleNotFound", {
  id: Schema.String
}) {
  override get message() {
    return `no schedule with id ${this.id} (list them with \`osqueue schedule list\`)`
  }
}

export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  jobId: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `the lease on job ${this.jobId} is no longer valid: ${this.reason}; stop working on it`
  }
}

export class InvalidTransition extends Schema.TaggedError<InvalidTransition>()("InvalidTransition", {
  jobId: Schema.String,
  state: Schema.String,
  action: Schema.String,
  /** What to do instead, when there is something. */
  hint: Schema.optionalWith(Schema.String, { exact: true })
}) {
  override get message() {
    return `cannot ${this.action} job ${this.jobId}: it is ${this.state}${
      this.hint === undefined ? "" : `; ${this.hint}`
    }`
  }
}

export class NotLeader extends Schema.TaggedError<NotLeader>()("NotLeader", {
  /** Where the leader is, when known: retry there. */
  leaderUrl: Schema.NullOr(Schema.String)
}) {
  override get message() {
    return this.leaderUrl === null
      ? "this broker is not the leader and no leader is known yet; retry shortly"
      : `this broker is not the leader; send the request to ${this.leaderUrl}`
  }
}

export class Overloaded extends Schema.TaggedError<Overloaded>()("Overloaded", {
  reason: Schema.String,
  retryAfterMs: Schema.Int
}) {
  override get message() {
    return `the broker is overloaded (${this.reason}); retry after ${this.retryAfterMs} ms`
  }
}

export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  what: Schema.String,
  bytes: Schema.Int,
  limit: Schema.Int
}) {
  override get message() {
    return `${this.what} is ${this.bytes} bytes, over the limit of ${this.limit}; store large data elsewhere and pass a reference`
  }
}

/**
 * The state is at its cap with no finished job left to shed: only live and dead jobs fill it
 * (docs/architecture.md, "Limits"). `retryAfterMs` is when space may have freed: the next lease
 * to end, or longer when no job is running (then only workers or an operator free space).
 */
export class QueueFull extends Schema.TaggedError<QueueFull>()("QueueFull", {
  bytes: Schema.Int,
  limit: Schema.Int,
  retryAfterMs: Schema.optionalWith(Schema.Int, { exact: true })
}) {
  override get message() {
    return `queue.json would be ${this.bytes} bytes, over the limit of ${this.limit}, with no finished job left to shed; ${
      this.retryAfterMs === undefined ? "" : `retry after ${this.retryAfterMs} ms, `
    }let workers drain the queue, purge dead jobs, or raise the limit`
  }
}

/** The write that carried the request failed; nothing of it is in the queue. Safe to retry. */
export class CommitFailed extends Schema.TaggedError<CommitFailed>()("CommitFailed", {
  reason: Schema.String
}) {
  override get message() {
    return `the queue could not be written (${this.reason}); the request was not applied, retry it`
  }
}

/** queue.json cannot be read back: the broker refuses to touch it. */
export class StateCorrupt extends Schema.TaggedError<StateCorrupt>()("StateCorrupt", {
  reason: Schema.String,
  /** The object that failed to decode: queue.json when absent, else a log entry (`log/<position>`). */
  key: Schema.optionalWith(Schema.String, { exact: true })
}) {
  override get message() {
    return `${
      this.key ?? "queue.json"
    } is unreadable (${this.reason}); the broker will not overwrite it nor lead on it: restore it from a backup or move it aside`
  }
}

export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  reason: Schema.String
}) {
  override get message() {
    return `unauthorized: ${this.reason}; send "Authorization: Bearer <OSQUEUE_TOKEN>"`
  }
}

/** The request is well-formed and authenticated, but this broker does not let it through (its Origin, or the token's role). */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  reason: Schema.String,
  /** When the token's role is what refused: that role, the operation asked for, and the roles that may run it. */
  role: Schema.optional(Schema.String),
  operation: Schema.optional(Schema.String),
  needs: Schema.optional(Schema.Array(Schema.String))
}) {
  override get message() {
    return `forbidden: ${this.reason}`
  }
}

/** Nothing is served at this path, by any method. */
export class NoSuchRoute extends Schema.TaggedError<NoSuchRoute>()("NoSuchRoute", {
  method: Schema.String,
  path: Schema.String
}) {
  override get message() {
    return `nothing is served at ${this.path}: REST is under /v1 (described at /docs and /v1/openapi.json), RPC at /rpc and /rpc/ws`
  }
}

/** The path is served, but not by this method; `allowed` are the ones it answers (also in the `Allow` header). */
export class MethodNotAllowed extends Schema.TaggedError<MethodNotAllowed>()("MethodNotAllowed", {
  method: Schema.String,
  path: Schema.String,
  allowed: Schema.Array(Schema.String)
}) {
  override get message() {
    return `${this.method} is not allowed on ${this.path}; use ${this.allowed.join(" or ")}`
  }
}

/** The request's headers or body did not arrive in time: the connection is closed. */
export class RequestTimeout extends Schema.TaggedError<RequestTimeout>()("RequestTimeout", {
  reason: Schema.String
}) {
  override get message() {
    return `the request did not arrive in time (${this.reason}); send it whole, without pauses`
  }
}

/** The request names a queue this broker does not serve; `served` are the ones it does. */
export class UnknownQueue extends Schema.TaggedError<UnknownQueue>()("UnknownQueue", {
  queue: Schema.String,
  served: Schema.Array(Schema.String)
}) {
  override get message() {
    return `this broker serves no queue named "${this.queue}"; it serves ${
      this.served.map((name) => `"${name}"`).join(", ")
    } (OSQUEUE_QUEUES)`
  }
}

export const OsqueueError = Schema.Union(
  InvalidRequest,
  JobNotFound,
  ScheduleNotFound,
  LeaseLost,
  InvalidTransition,
  NotLeader,
  Overloaded,
  PayloadTooLarge,
  QueueFull,
  CommitFailed,
  StateCorrupt,
  Unauthorized,
  Forbidden,
  NoSuchRoute,
  MethodNotAllowed,
  RequestTimeout,
  UnknownQueue
)
export type OsqueueError = typeof OsqueueError.Type

const tags: ReadonlySet<string> = new Set(OsqueueError.members.map((member) => member.identifier))

export const isOsqueueError = (u: unknown): u is OsqueueError =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string" && tags.has(u._tag)

/** Errors after which the same request may succeed if sent again (possibly elsewhere). */
export const isRetryable = (error: OsqueueError): boolean =>
  error._tag === "NotLeader" || error._tag === "Overloaded" || error._tag === "CommitFailed"

/** The HTTP status for each error: 400 input, 401/403 auth, 404/405 unknown, 408 slow, 409 lease, 413 size, 421 leader, 429/503 load. */
export const httpStatus = (error: OsqueueError): number => {
  switch (error._tag) {
    case "InvalidRequest":
      return 400
    case "Unauthorized":
      return 401
    case "Forbidden":
      return 403
    case "JobNotFound":
    case "ScheduleNotFound":
    case "NoSuchRoute":
    case "UnknownQueue":
      return 404
    case "MethodNotAllowed":
      return 405
    case "RequestTimeout":
      return 408
    case "LeaseLost":
    case "InvalidTransition":
      return 409
    case "PayloadTooLarge":
      return 413
    case "NotLeader":
      return 421
    case "Overloaded":
      return 429
    case "QueueFull":
    case "CommitFailed":
      return 503
    case "StateCorrupt":
      return 500
  }
}
