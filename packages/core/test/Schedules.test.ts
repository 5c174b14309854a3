/**
 * Schedules in the state machine (docs/architecture.md, "Schedules"): runs created by the tick at
 * each slot under the slot's key, never twice for one slot, missed slots caught up once or
 * skipped, bad rules refused without a change, and schedules carried by checkpoints and log
 * entries.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Job, type Schedule, type ScheduleSpec } from "@osqueue/types"
import { Either } from "effect"
import * as Cas from "../src/Cas.js"
import { decode, entryFormat, logKey, putJobs } from "../src/LogEntry.js"
import { defaultLimits, type Limits, QueueState } from "../src/QueueState.js"
import { latestSlot, nextSlot } from "../src/ScheduleSlots.js"
import { testSecrets } from "./fixtures/model.js"
import { left, right } from "./fixtures/outcomes.js"

const secrets = testSecrets()
const minute = 60_000
const hour = 60 * minute
/** A whole hour (UTC), so that interval slots fall on round numbers. */
const T0 = Date.UTC(2026, 0, 5, 12)
const grace = 10_000

const fresh = (overrides: Partial<Limits> = {}) =>
  QueueState.empty({ ...defaultLimits, scheduleGraceMs: grace, ...overrides })

const every = (id: string, everyMs: number, extra: Partial<ScheduleSpec> = {}): ScheduleSpec => ({
  id,
  everyMs,
  job: { type: "report", payload: { id } },
  ...extra
})

const upsert = (s: QueueState, spec: ScheduleSpec, now: number) =>
  s.apply({ _tag: "UpsertSchedule", schedule: spec }, now, secrets)

/** One batch at `now`, as the commit path runs it: the tick first. */
const batch = (s: QueueState, now: number, position: number) => {
  s.begin()
  s.tick(now)
  s.committed(position, `L:${position}`)
}

const runs = (s: QueueState): ReadonlyArray<Job> =>
  s.list({ limit: 1_000 }).jobs.filter((job) => job.idempotencyKey?.startsWith("schedule:"))

const keys = (s: QueueState) => runs(s).map((job) => job.idempotencyKey)

describe("slots", () => {
  it("an interval's slots are its multiples since 1970; next is strictly after, latest at or before", () => {
    const rule = { everyMs: minute }
    expect(nextSlot(rule, T0)).toBe(T0 + minute)
    expect(nextSlot(rule, T0 - 1)).toBe(T0)
    expect(latestSlot(rule, T0)).toBe(T0)
    expect(latestSlot(rule, T0 + minute - 1)).toBe(T0)
  })

  it("a cron expression's slots follow its time zone, across a daylight-saving change", () => {
    const rule = { cron: "0 9 * * *", timezone: "Europe/Paris" }
    // Winter: 09:00 in Paris is 08:00 UTC; after the last Sunday of March, 07:00 UTC.
    expect(nextSlot(rule, Date.UTC(2026, 2, 27, 12))).toBe(Date.UTC(2026, 2, 28, 8))
    expect(nextSlot(rule, Date.UTC(2026, 2, 28, 12))).toBe(Date.UTC(2026, 2, 29, 7))
    expect(latestSlot(rule, Date.UTC(2026, 2, 29, 7))).toBe(Date.UTC(2026, 2, 29, 7))
    expect(nextSlot({ cron: "0 9 * * *" }, T0)).toBe(Date.UTC(2026, 0, 6, 9))
  })
})

describe("schedules", () => {
  it("a run is enqueued at each slot, under the slot's key, and never twice for one slot", () => {
    const s = fresh()
    const schedule = right(upsert(s, every("tick", minute), T0 + 5))
    expect(schedule).toMatchObject({
      id: "tick",
      everyMs: minute,
      missed: "catch-up",
      createdAt: T0 + 5,
      nextAt: T0 + minute
    })
    expect(s.nextWakeup(T0)).toBe(T0 + minute)
    batch(s, T0 + minute - 1, 1)
    expect(runs(s)).toEqual([])
    batch(s, T0 + minute, 2)
    batch(s, T0 + minute, 3)
    batch(s, T0 + minute + 30_000, 4)
    expect(keys(s)).toEqual([`schedule:tick:${T0 + minute}`])
    const [run] = runs(s)
    expect(run).toMatchObject({ type: "report", payload: { id: "tick" }, state: "queued", createdAt: T0 + minute })
    expect(s.listSchedules()[0]).toMatchObject({
      nextAt: T0 + 2 * minute,
      lastRun: { slot: T0 + minute, at: T0 + minute, jobId: run!.id }
    })
  })

  it("slots that came due since the last commit, within the grace, each get a run", () => {
    const s = fresh()
    right(upsert(s, every("fast", 2_000), T0))
    batch(s, T0 + 7_000, 1)
    expect(keys(s)).toEqual([2_000, 4_000, 6_000].map((d) => `schedule:fast:${T0 + d}`))
  })

  it("slots missed while no broker led get one catch-up run together, then the slots on time", () => {
    const s = fresh()
    right(upsert(s, every("tick", minute), T0))
    // Three hours without a commit: every slot up to now - grace was missed.
    const now = T0 + 3 * hour + 5_000
    batch(s, now, 1)
    expect(keys(s)).toEqual([`schedule:tick:${T0 + 3 * hour - minute}`, `schedule:tick:${T0 + 3 * hour}`])
    expect(s.listSchedules()[0]).toMatchObject({
      nextAt: T0 + 3 * hour + minute,
      lastRun: { slot: T0 + 3 * hour, at: now }
    })
  })

  it("a schedule that skips missed slots runs only those on time", () => {
    const s = fresh()
    right(upsert(s, every("tick", minute, { missed: "skip" }), T0))
    batch(s, T0 + 3 * hour + 5_000, 1)
    expect(keys(s)).toEqual([`schedule:tick:${T0 + 3 * hour}`])
    batch(s, T0 + 5 * hour + grace + 1, 2)
    expect(keys(s)).toEqual([`schedule:tick:${T0 + 3 * hour}`])
    expect(s.listSchedules()[0]?.nextAt).toBe(T0 + 5 * hour + minute)
  })

  it("the run carries the template's options", () => {
    const s = fresh()
    const job = {
      type: "mail",
      payload: [1],
      priority: -5,
      maxAttempts: 7,
      backoff: { _tag: "fixed" as const, delayMs: 50 },
      timeoutMs: 900
    }
    right(upsert(s, { id: "m", cron: "*/10 * * * * *", job }, T0))
    batch(s, T0 + 10_000, 1)
    expect(runs(s)[0]).toMatchObject({ ...job, state: "queued", idempotencyKey: `schedule:m:${T0 + 10_000}` })
  })

  it("replacing a schedule keeps its creation and last run: no slot runs again, even on a clock that is behind", () => {
    const s = fresh()
    right(upsert(s, every("tick", minute), T0))
    batch(s, T0 + minute, 1)
    // A new leader whose clock is two minutes behind sets it again.
    const replaced = right(upsert(s, every("tick", minute, { job: { type: "other" } }), T0 - minute))
    expect(replaced).toMatchObject({
      createdAt: T0,
      updatedAt: T0 - minute,
      nextAt: T0 + 2 * minute,
      lastRun: { slot: T0 + minute }
    })
    batch(s, T0 + minute, 2)
    expect(keys(s)).toEqual([`schedule:tick:${T0 + minute}`])
    // A cron rule in place of the interval: the first slot after now.
    expect(right(upsert(s, { id: "tick", cron: "0 0 * * *", job: { type: "other" } }, T0 + minute))).toMatchObject({
      nextAt: Date.UTC(2026, 0, 6)
    })
  })

  it("a removed schedule runs no more; removing an unknown one is ScheduleNotFound", () => {
    const s = fresh()
    right(upsert(s, every("tick", minute), T0))
    expect(right(s.apply({ _tag: "RemoveSchedule", id: "tick" }, T0, secrets)).id).toBe("tick")
    batch(s, T0 + hour, 1)
    expect(runs(s)).toEqual([])
    expect(s.nextWakeup(T0)).toBeUndefined()
    expect(left(s.apply({ _tag: "RemoveSchedule", id: "tick" }, T0, secrets))._tag).toBe("ScheduleNotFound")
  })

  it("a bad rule is InvalidRequest naming what is wrong, and changes nothing", () => {
    const s = fresh()
    right(upsert(s, every("kept", minute), T0))
    const before = s.toJson(0, "c")
    const refusals: ReadonlyArray<[ScheduleSpec, RegExp]> = [
      [{ id: "a", cron: "61 * * * *", job: { type: "t" } }, /cron expression "61 \* \* \* \*" is not valid \(.*61.*\)/],
      [{ id: "a", cron: "not a cron", job: { type: "t" } }, /is not valid/],
      [{ id: "a", cron: "   ", job: { type: "t" } }, /must not be blank/],
      [
        { id: "a", cron: "0 0 * * *", timezone: "Mars/Olympus", job: { type: "t" } },
        /time zone "Mars\/Olympus" is not an IANA time zone/
      ],
      [{ id: "a", cron: "0 0 * * *", everyMs: minute, job: { type: "t" } }, /either `cron` or `everyMs`, not both/],
      [{ id: "a", job: { type: "t" } }, /needs `cron`.*or `everyMs`/],
      [
        { id: "a", everyMs: minute, timezone: "UTC", job: { type: "t" } },
        /`timezone` applies to a `cron` schedule only/
      ],
      [
        { id: "kept", cron: "0 0 31 2 *", job: { type: "t" } },
        /schedule kept: the cron expression "0 0 31 2 \*" is not valid/
      ]
    ]
    for (const [spec, message] of refusals) {
      const error = left(upsert(s, spec, T0))
      expect(error._tag, JSON.stringify(spec)).toBe("InvalidRequest")
      expect(error.message).toMatch(message)
    }
    expect(left(upsert(s, every("big", minute, { job: { type: "t", payload: "x".repeat(300 * 1024) } }), T0))._tag)
      .toBe("PayloadTooLarge")
    expect(s.toJson(0, "c")).toBe(before)
  })

  it("a job template that cannot be written as JSON is refused alone, and changes nothing", () => {
    const s = fresh()
    right(upsert(s, every("kept", minute), T0))
    const before = s.toJson(0, "c")
    let deep: unknown = null
    for (let i = 0; i < 200_000; i++) deep = [deep]
    for (const payload of [deep, { n: 1n }]) {
      const error = left(upsert(s, every("hostile", minute, { job: { type: "t", payload } }), T0))
      expect(error._tag).toBe("InvalidRequest")
      expect(error.message).toMatch(/UpsertSchedule request was refused|not JSON/)
    }
    expect(s.toJson(0, "c")).toBe(before)
  })

  it("a queue holds at most 1,000 schedules", () => {
    const s = fresh()
    for (let i = 0; i < 1_000; i++) right(upsert(s, every(`s${i}`, hour), T0))
    expect(left(upsert(s, every("one-more", hour), T0)).message).toMatch(/at most 1000 schedules/)
    // Replacing one is not one more.
    right(upsert(s, every("s7", minute), T0))
  })

  it("runs the queue refuses (full) leave the schedule as it was: the next commit tries again", () => {
    const s = fresh({ maxStateBytes: 5_000 })
    s.begin()
    right(upsert(s, every("big", minute, { job: { type: "t", payload: "x".repeat(1_000) } }), T0))
    right(s.apply({ _tag: "Enqueue", jobs: [{ type: "filler", payload: "y".repeat(2_500) }] }, T0, secrets))
    s.committed(1, "L:1")
    batch(s, T0 + minute, 2)
    batch(s, T0 + 2 * minute, 3)
    expect(runs(s)).toEqual([])
    expect(s.listSchedules()[0]?.nextAt).toBe(T0 + minute)
    s.begin()
    right(s.apply({ _tag: "Purge", state: "queued", type: "filler" }, T0 + 2 * minute, secrets))
    s.committed(4, "L:4")
    // Room again: the waiting slots, late by now, get their catch-up run, then the slot on time.
    batch(s, T0 + 3 * minute, 5)
    expect(keys(s)).toEqual([`schedule:big:${T0 + 2 * minute}`, `schedule:big:${T0 + 3 * minute}`])
    expect(s.listSchedules()[0]?.nextAt).toBe(T0 + 4 * minute)
  })

  it("a refused upsert in a batch is undone with the rest of its command; a rollback undoes a schedule's runs", () => {
    const s = fresh()
    right(upsert(s, every("tick", minute), T0))
    const before = s.toJson(0, "c")
    s.begin()
    s.tick(T0 + minute)
    right(upsert(s, every("other", hour), T0 + minute))
    expect(runs(s).length).toBe(1)
    s.rollback()
    expect(s.toJson(0, "c")).toBe(before)
    expect(s.nextWakeup(T0)).toBe(T0 + minute)
  })

  it("a checkpoint holds the schedules; one written before schedules (format 3) loads with none", () => {
    const s = fresh()
    right(
      upsert(s, {
        id: "paris",
        cron: "0 9 * * *",
        timezone: "Europe/Paris",
        job: { type: "t", payload: { deep: [1] } },
        missed: "skip"
      }, T0)
    )
    batch(s, T0, 1)
    const bytes = s.encode(1, "L:1")
    const loaded = QueueState.fromFile(Either.getOrThrow(Cas.decode(bytes)), bytes.length, s.limits)
    expect(loaded.listSchedules()).toEqual(s.listSchedules())
    expect(loaded.nextWakeup(T0)).toBe(Date.UTC(2026, 0, 6, 8))

    const old = JSON.parse(fresh().toJson(1, "L:1")) as Record<string, unknown>
    const legacy = Buffer.from(JSON.stringify({ ...old, format: 3 }))
    expect(QueueState.fromFile(Either.getOrThrow(Cas.decode(legacy)), legacy.length).listSchedules()).toEqual([])
  })

  it("log entries carry schedule changes and runs; a replica replaying them holds the same schedules", () => {
    const leader = fresh()
    const replica = fresh()
    let position = 0
    const commit = (now: number, change?: (s: QueueState) => void) => {
      leader.begin()
      leader.tick(now)
      change?.(leader)
      position++
      const bytes = Buffer.concat(leader.entryParts("batch", position, `L:${position}`).parts)
      leader.committed(position, `L:${position}`)
      const entry = Either.getOrThrow(decode(logKey(position), bytes))
      expect(replica.replay(entry)).toBeUndefined()
      return entry
    }
    const set = commit(T0, (s) => right(upsert(s, every("tick", minute), T0)))
    expect(set.format).toBe(entryFormat)
    expect(set.schedules?.put.map((x: Schedule) => x.id)).toEqual(["tick"])
    expect(commit(T0 + 1).schedules).toBeUndefined()
    const ran = commit(T0 + minute)
    expect(ran.schedules?.put[0]?.lastRun?.slot).toBe(T0 + minute)
    expect(putJobs(ran).map((job) => job.idempotencyKey)).toEqual([`schedule:tick:${T0 + minute}`])
    expect(
      commit(T0 + minute, (s) => right(s.apply({ _tag: "RemoveSchedule", id: "tick" }, T0 + minute, secrets))).schedules
        ?.removed
    ).toEqual(["tick"])
    expect(replica.listSchedules()).toEqual([])
    expect(JSON.parse(replica.toJson(position, "c"))).toEqual(JSON.parse(leader.toJson(position, "c")))
    expect(replica.bytes).toBe(leader.bytes)
  })

  it("an entry in format 2 (before schedules) still replays", () => {
    const leader = fresh()
    leader.begin()
    right(leader.apply({ _tag: "Enqueue", jobs: [{ type: "t" }] }, T0, secrets))
    const text = Buffer.concat(leader.entryParts("batch", 1, "L:1").parts).toString("utf8").replace(
      "\"format\":3",
      "\"format\":2"
    )
    const entry = Either.getOrThrow(decode(logKey(1), Buffer.from(text)))
    const replica = fresh()
    expect(replica.replay(entry)).toBeUndefined()
    expect(replica.size).toBe(1)
  })
})
