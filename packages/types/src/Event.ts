/** What happened to a job (or the queue), as the `watch` stream and the activity log show it. */
import * as Schema from "effect/Schema"

export const JobEventKind = Schema.Literal(
  "enqueued",
  "claimed",
  "completed",
  "failed",
  "retrying",
  "expired",
  "released",
  "dead",
  "cancelled",
  "redriven",
  /** A delayed or retry-waiting job made claimable now by hand. */
  "promoted",
  /** A job removed by hand (`Delete`; a purge's jobs leave without an event each, as retention's do). */
  "deleted"
)
export type JobEventKind = typeof JobEventKind.Type

export const JobEvent = Schema.Struct({
  kind: JobEventKind,
  jobId: Schema.String,
  type: Schema.String,
  at: Schema.Int,
  attempt: Schema.Int,
  workerId: Schema.optionalWith(Schema.String, { exact: true }),
  error: Schema.optionalWith(Schema.String, { exact: true }),
  /** On `claimed`: how long the job was claimable before this claim (from its `runAt`), in ms. */
  waitedMs: Schema.optionalWith(Schema.NonNegativeInt, { exact: true }),
  /** On `completed`: how long the attempt ran, from its claim to its completion, in ms. */
  ranMs: Schema.optionalWith(Schema.NonNegativeInt, { exact: true })
})
export type JobEvent = typeof JobEvent.Type
