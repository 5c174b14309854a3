/**
 * Schedules (docs/architecture.md, "Schedules"): setting one, and enqueueing the runs of those
 * whose slots are due at each batch's tick. A schedule's runs are enqueued as any job is, under
 * its slot's idempotency key.
 */
import {
  defaultMissedSlots,
  InvalidRequest,
  maxSchedules,
  type OsqueueError,
  QueueFull,
  type Schedule,
  scheduleRunKey,
  type ScheduleSpec
} from "@osqueue/types"
import * as Either from "effect/Either"
import { latestSlot, nextSlot, problemOf } from "../ScheduleSlots.js"
import * as Journal from "./journal.js"
import { enqueue } from "./rules.js"
import { checkSize, fullFor } from "./sizeCaps.js"
import type { DueItem, StateCore } from "./stateCore.js"

/** Bytes a schedule takes in queue.json (its JSON and a comma). */
export const scheduleSize = (schedule: Schedule | undefined): number =>
  schedule === undefined ? 0 : JSON.stringify(schedule).length + 1

/** Every schedule, by id. */
export const listSchedules = (core: StateCore): ReadonlyArray<Schedule> => {
  return [...core.schedules.values()].map((held) => held.schedule).sort((
    a,
    b
  ) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/** The next slot of any schedule (stale heap items dropped on the way). */
export const nextScheduleRun = (core: StateCore): number | undefined => {
  for (let item = core.dueSchedules.peek(); item !== undefined; item = core.dueSchedules.peek()) {
    if (core.schedules.get(item.id)?.stamp === item.stamp) return item.key
    core.dueSchedules.pop()
  }
  return undefined
}

/**
 * Enqueues the runs of every schedule with slots due by `now` (docs/architecture.md,
 * "Schedules"). A schedule whose runs the queue refuses (full) is left as it was: the next
 * commit tries again.
 */
export const runSchedules = (core: StateCore, now: number): void => {
  const refused: Array<DueItem> = []
  for (let item = core.dueSchedules.peek(); item !== undefined && item.key <= now; item = core.dueSchedules.peek()) {
    core.dueSchedules.pop()
    const held = core.schedules.get(item.id)
    if (held === undefined || held.stamp !== item.stamp) continue
    if (!runDue(core, held.schedule, held.schedule.nextAt!, now)) refused.push(item)
  }
  for (const item of refused) core.dueSchedules.push(item)
}

/**
 * One run per slot from `nextAt` to `now`, each under its slot's idempotency key. Slots older
 * than the grace were missed while no broker led: together they get one run (the latest of
 * them's) or, when the schedule skips missed slots, none. False when the queue refused the runs
 * (nothing changed).
 */
const runDue = (core: StateCore, schedule: Schedule, nextAt: number, now: number): boolean => {
  const cutoff = now - core.limits.scheduleGraceMs
  const slots: Array<number> = []
  if (nextAt <= cutoff && schedule.missed === "catch-up") {
    slots.push(Math.max(nextAt, latestSlot(schedule, cutoff) ?? nextAt))
  }
  for (
    let slot = nextAt > cutoff ? nextAt : nextSlot(schedule, cutoff);
    slot !== undefined && slot <= now;
    slot = nextSlot(schedule, slot)
  ) {
    slots.push(slot)
  }
  const savepoint = Journal.savepoint(core)
  const runs = slots.length === 0
    ? Either.right([])
    : enqueue(core, slots.map((slot) => ({ ...schedule.job, idempotencyKey: scheduleRunKey(schedule.id, slot) })), now)
  if (Either.isLeft(runs)) {
    Journal.rollback(core, savepoint)
    return false
  }
  const { nextAt: _, ...rest } = schedule
  const next = nextSlot(schedule, now)
  const last = runs.right.at(-1)
  core.putSchedule({
    ...rest,
    ...(next === undefined ? {} : { nextAt: next }),
    ...(last === undefined ? {} : { lastRun: { slot: slots.at(-1)!, at: now, jobId: last.id } })
  })
  return true
}

/**
 * Sets a schedule. Its next slot is the first after now, and after its last run: a replaced
 * schedule never runs a slot again, whatever the leader's clock says.
 */
export const upsertSchedule = (
  core: StateCore,
  spec: ScheduleSpec,
  now: number
): Either.Either<Schedule, OsqueueError> => {
  const problem = problemOf(spec, now)
  if (problem !== undefined) return Either.left(new InvalidRequest({ message: `schedule ${spec.id}: ${problem}` }))
  const prev = core.schedules.get(spec.id)?.schedule
  if (prev === undefined && core.schedules.size >= maxSchedules) {
    return Either.left(
      new InvalidRequest({ message: `a queue holds at most ${maxSchedules} schedules: remove some first` })
    )
  }
  const tooLarge = checkSize(core, `the payload of schedule ${spec.id}'s job`, spec.job.payload ?? null)
  if (tooLarge !== undefined) return Either.left(tooLarge)
  const nextAt = nextSlot(spec, Math.max(now, prev?.lastRun?.slot ?? 0))
  // In the schema's field order, as a schedule read back from the log is.
  const schedule: Schedule = {
    id: spec.id,
    ...(spec.cron === undefined ? {} : { cron: spec.cron }),
    ...(spec.timezone === undefined ? {} : { timezone: spec.timezone }),
    ...(spec.everyMs === undefined ? {} : { everyMs: spec.everyMs }),
    job: spec.job,
    missed: spec.missed ?? defaultMissedSlots,
    createdAt: prev?.createdAt ?? now,
    updatedAt: now,
    ...(nextAt === undefined ? {} : { nextAt }),
    ...(prev?.lastRun === undefined ? {} : { lastRun: prev.lastRun })
  }
  const added = scheduleSize(schedule) - scheduleSize(prev)
  const projected = core.bytes + core.pendingBytes + added
  if (added > 0 && projected > core.limits.maxStateBytes) {
    return Either.left(
      new QueueFull({ bytes: projected, limit: core.limits.maxStateBytes, retryAfterMs: fullFor(core, now) })
    )
  }
  core.pendingBytes += added
  core.putSchedule(schedule)
  return Either.right(schedule)
}
