/**
 * Repeatable and cron schedules (docs/architecture.md, "Schedules"): a job template the leader
 * enqueues at each slot of a cron expression in a time zone, or every N milliseconds. A schedule
 * lives in the queue's state (queue.json and the log), so its runs survive failover: the state
 * holds the next slot to run, and no slot is run twice.
 */
import * as Schema from "effect/Schema"
import * as Struct from "effect/Struct"
import { EnqueueOptions, JobId, maxDelayMs, Millis, strictFields } from "./Job.js"

/** Most schedules one queue holds. */
export const maxSchedules = 1_000

/** Longest schedule id. */
export const maxScheduleIdLength = 128

export const ScheduleId = Schema.String.pipe(
  Schema.pattern(new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,${maxScheduleIdLength - 1}}$`), {
    message: () =>
      `a schedule id is 1 to ${maxScheduleIdLength} letters, digits, '.', '_', ':' or '-', starting with a letter or digit`
  }),
  Schema.annotations({ description: "A schedule's id, chosen by whoever sets it (e.g. `nightly-report`)" })
)

/** Longest cron expression. */
export const maxCronLength = 200

export const CronExpression = Schema.String.pipe(
  Schema.minLength(1, { message: () => "a cron expression must not be empty" }),
  Schema.maxLength(maxCronLength, { message: () => `a cron expression has at most ${maxCronLength} characters` }),
  Schema.annotations({
    description:
      "Five fields (minute hour day-of-month month day-of-week), or six with seconds first; `@hourly`, `@daily`... too"
  })
)

/** Longest time zone name. */
export const maxTimeZoneLength = 64

export const TimeZone = Schema.String.pipe(
  Schema.minLength(1, { message: () => "a time zone must not be empty: leave it out for UTC" }),
  Schema.maxLength(maxTimeZoneLength, { message: () => `a time zone has at most ${maxTimeZoneLength} characters` }),
  Schema.annotations({ description: "An IANA time zone (`Europe/Paris`, `America/New_York`); UTC when absent" })
)

/** Shortest interval of an `everyMs` schedule: one second (a cron expression's finest field too). */
export const minEveryMs = 1_000

/** Longest interval of an `everyMs` schedule: ten years, as a delay. */
export const maxEveryMs = maxDelayMs

export const EveryMs = Schema.Int.pipe(
  Schema.between(minEveryMs, maxEveryMs, {
    message: () => `an interval (everyMs) is whole milliseconds from ${minEveryMs} to ${maxEveryMs} (ten years)`
  }),
  Schema.annotations({ description: "Run at every multiple of this many milliseconds since 1970 (UTC)" })
)

/**
 * What happens to slots that came due while no broker led (found later than a grace after their
 * time): `catch-up` runs them once, together, as soon as a broker leads again; `skip` runs none
 * of them.
 */
export const MissedSlots = Schema.Literal("catch-up", "skip")
export type MissedSlots = typeof MissedSlots.Type

export const defaultMissedSlots: MissedSlots = "catch-up"

/** The job each run enqueues: an enqueue's options, less those that name one job (key, delay, trace). */
export const ScheduleJob = Schema.Struct(
  Struct.pick(EnqueueOptions.fields, "type", "payload", "priority", "maxAttempts", "backoff", "timeoutMs")
).annotations({ identifier: "ScheduleJob", ...strictFields })
export type ScheduleJob = typeof ScheduleJob.Type

/**
 * A schedule as a request sets it: `cron` (with `timezone`, UTC by default) or `everyMs`, one of
 * the two. Setting an id that exists replaces its rule and job; its last run is kept, so no slot
 * already run is run again.
 */
export const ScheduleSpec = Schema.Struct({
  id: ScheduleId,
  cron: Schema.optionalWith(CronExpression, { exact: true }),
  timezone: Schema.optionalWith(TimeZone, { exact: true }),
  everyMs: Schema.optionalWith(EveryMs, { exact: true }),
  job: ScheduleJob,
  /** Slots missed while no broker led: `catch-up` (the default) runs them once, `skip` does not. */
  missed: Schema.optionalWith(MissedSlots, { exact: true })
}).annotations({ identifier: "ScheduleSpec", ...strictFields })
export type ScheduleSpec = typeof ScheduleSpec.Type

/** The latest slot a run was enqueued for. */
export const ScheduleRun = Schema.Struct({
  /** The slot's time (ms since epoch). */
  slot: Millis,
  /** When the leader enqueued it (its clock: a catch-up run is later than its slot). */
  at: Millis,
  jobId: JobId
})
export type ScheduleRun = typeof ScheduleRun.Type

/** A schedule as the queue holds it, and answers carry it. */
export const Schedule = Schema.Struct({
  ...ScheduleSpec.fields,
  missed: MissedSlots,
  createdAt: Millis,
  updatedAt: Millis,
  /** The next slot the leader runs; absent when the expression has none left. */
  nextAt: Schema.optionalWith(Millis, { exact: true }),
  lastRun: Schema.optionalWith(ScheduleRun, { exact: true })
}).annotations({ identifier: "Schedule" })
export type Schedule = typeof Schedule.Type

/** The idempotency key of the run of schedule `id` at `slot`: one job per slot, whatever happens. */
export const scheduleRunKey = (id: string, slot: number): string => `schedule:${id}:${slot}`
