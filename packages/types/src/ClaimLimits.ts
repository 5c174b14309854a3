/**
 * Global concurrency and rate limits on claims (docs/architecture.md, "Limits on claims"): for
 * one job type, or for the whole queue, at most `concurrency` jobs running at once across every
 * worker, and at most `rate.max` claims starting in any `rate.windowMs`. The leader enforces them
 * inside each claim; a claim past a limit simply gets fewer jobs, or none.
 */
import * as Schema from "effect/Schema"
import { JobType, strictFields } from "./Job.js"

/** Most jobs a concurrency limit may allow (a larger one is no limit). */
export const maxConcurrency = 1_000_000

/**
 * Most starts a rate limit may allow per window: the state remembers up to this many start times
 * per limited scope, in the checkpoint too.
 */
export const maxRateStarts = 10_000

/** Longest window of a rate limit: one day. */
export const maxRateWindowMs = 24 * 60 * 60 * 1000

/** Most job types with a limit of their own (the whole queue's limit comes on top). */
export const maxLimitedTypes = 100

export const Concurrency = Schema.Int.pipe(
  Schema.between(1, maxConcurrency, {
    message: () =>
      `a concurrency limit is a whole number of running jobs from 1 to ${maxConcurrency} (pause the type to run none)`
  })
)

export const RateLimit = Schema.Struct({
  /** Most claims that may start within any window. */
  max: Schema.Int.pipe(
    Schema.between(1, maxRateStarts, {
      message: () =>
        `a rate limit allows a whole number of starts from 1 to ${maxRateStarts} per window (pause the type to start none)`
    })
  ),
  /** The sliding window, in milliseconds. */
  windowMs: Schema.Int.pipe(
    Schema.between(1, maxRateWindowMs, {
      message: () => `a rate limit's window is whole milliseconds from 1 to ${maxRateWindowMs} (one day)`
    })
  )
}).annotations(strictFields)
export type RateLimit = typeof RateLimit.Type

/** The limit of one scope: a job type, or the whole queue when `type` is absent. */
export const ClaimLimit = Schema.Struct({
  type: Schema.optionalWith(JobType, { exact: true }),
  concurrency: Schema.optionalWith(Concurrency, { exact: true }),
  rate: Schema.optionalWith(RateLimit, { exact: true })
}).annotations(strictFields)
export type ClaimLimit = typeof ClaimLimit.Type

/**
 * A `SetLimit` request: the scope's limit becomes exactly this (a field left out is no limit of
 * that kind). At least one of `concurrency` and `rate`: `ClearLimit` removes a limit.
 */
export const SetLimitRequest = ClaimLimit.pipe(
  Schema.filter((limit) =>
    limit.concurrency !== undefined || limit.rate !== undefined ||
    "a limit needs a concurrency, a rate or both: to remove one, clear it (ClearLimit)"
  )
)

/**
 * A limit as queue.json and log headers hold it: read leniently (any safe integer), as the other
 * stored fields are, so a file stays readable whatever bounds requests get later.
 */
export const StoredLimit = Schema.Struct({
  type: Schema.optionalWith(Schema.String, { exact: true }),
  concurrency: Schema.optionalWith(Schema.Int, { exact: true }),
  rate: Schema.optionalWith(Schema.Struct({ max: Schema.Int, windowMs: Schema.Int }), { exact: true })
})

/** A rate-limited scope's remembered start times in a checkpoint, oldest first. */
export const StoredStarts = Schema.Struct({
  type: Schema.optionalWith(Schema.String, { exact: true }),
  at: Schema.Array(Schema.Int)
})
export type StoredStarts = typeof StoredStarts.Type
