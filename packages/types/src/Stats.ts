/** The queue's counts as `stats` answers them: jobs by state and type, pauses, limits on claims, totals. */
import * as Schema from "effect/Schema"

export const StateCounts = Schema.Struct({
  queued: Schema.Int,
  delayed: Schema.Int,
  running: Schema.Int,
  completed: Schema.Int,
  "failed-waiting-retry": Schema.Int,
  dead: Schema.Int,
  cancelled: Schema.Int,
  /** Absent from brokers without flows: none. */
  "waiting-children": Schema.optionalWith(Schema.Int, { default: () => 0 })
})
export type StateCounts = typeof StateCounts.Type

/** Most types paused one by one (pausing every type has no limit). */
export const maxPausedTypes = 100

export const Paused = Schema.Struct({
  all: Schema.Boolean,
  types: Schema.Array(Schema.String)
})
export type Paused = typeof Paused.Type

/**
 * A limit on claims as stats show it (`ClaimLimits.ts`): the limit (`type` absent: the whole
 * queue), the scope's jobs running now, and with a rate the claims started within the window
 * ending now.
 */
export const LimitStatus = Schema.Struct({
  type: Schema.optionalWith(Schema.String, { exact: true }),
  concurrency: Schema.optionalWith(Schema.Int, { exact: true }),
  rate: Schema.optionalWith(Schema.Struct({ max: Schema.Int, windowMs: Schema.Int }), { exact: true }),
  running: Schema.Int,
  startsInWindow: Schema.optionalWith(Schema.Int, { exact: true })
})
export type LimitStatus = typeof LimitStatus.Type

export const Stats = Schema.Struct({
  counts: StateCounts,
  /** Queued jobs by type. */
  queuedByType: Schema.Record({ key: Schema.String, value: Schema.Int }),
  paused: Paused,
  /** The limits on claims, with what each scope uses of its limit (absent from brokers without limits). */
  limits: Schema.optionalWith(Schema.Array(LimitStatus), { exact: true }),
  epoch: Schema.Int,
  seq: Schema.Int,
  /** Bytes of the last committed queue.json. */
  stateBytes: Schema.Int,
  completedTotal: Schema.Int,
  deadTotal: Schema.Int,
  enqueuedTotal: Schema.Int
})
export type Stats = typeof Stats.Type
