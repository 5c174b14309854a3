/**
 * What time does to the state, first in every batch: leases expire, delayed and retrying jobs
 * become claimable, finished and dead jobs leave after their retention, the state sheds finished
 * jobs when over its cap, and due schedules run.
 */
import type { Heap } from "../Heap.js"
import { settle } from "./flows.js"
import type { Item } from "./jobIndex.js"
import { failAttempt } from "./rules.js"
import { runSchedules } from "./schedules.js"
import { shed } from "./sizeCaps.js"
import type { StateCore } from "./stateCore.js"

/** Lease expiry, delayed and retry promotion, and retention, as of `now`. Runs first in every batch. */
export const tick = (core: StateCore, now: number): void => {
  const from = core.journal?.length ?? 0
  for (let item = core.jobs.leases.peek(); item !== undefined && item.key <= now; item = core.jobs.leases.peek()) {
    core.jobs.leases.pop()
    const job = core.jobs.live(item, "running")
    if (job === undefined) continue
    const error = `lease expired: worker ${job.lease!.workerId} stopped heartbeating`
    core.emit("expired", job, now, error)
    failAttempt(core, job, error, "expired", true, undefined, now)
  }
  for (
    let item = core.jobs.scheduled.peek();
    item !== undefined && item.key <= now;
    item = core.jobs.scheduled.peek()
  ) {
    core.jobs.scheduled.pop()
    const job = core.jobs.live(item)
    if (job === undefined || (job.state !== "delayed" && job.state !== "failed-waiting-retry")) continue
    core.put({ ...job, state: "queued" })
  }
  const { keepDead, keepDeadMs, keepFinished, keepFinishedMs, maxStateBytes } = core.limits
  retain(
    core,
    core.jobs.finished,
    () => core.jobs.byState.completed.size + core.jobs.byState.cancelled.size,
    keepFinished,
    keepFinishedMs,
    now
  )
  retain(core, core.jobs.dead, () => core.jobs.byState.dead.size, keepDead, keepDeadMs, now)
  // Results, errors and progress grow the state past the cap without an enqueue: the batch after
  // brings it back under by shedding finished jobs (docs/architecture.md, "Limits").
  shed(core, core.bytes - maxStateBytes)
  // Whole milliseconds, as a job's times are (a test clock may stand between two).
  runSchedules(core, Math.floor(now))
  // A child that died or expired above tells its parent (docs/flows.md).
  settle(core, from, now)
}

/** Removes the oldest jobs of a retention heap while more than `keep` are left or the oldest is older than `keepMs`. */
const retain = (
  core: StateCore,
  heap: Heap<Item>,
  kept: () => number,
  keep: number,
  keepMs: number,
  now: number
): void => {
  for (let item = core.jobs.oldest(heap); item !== undefined; item = core.jobs.oldest(heap)) {
    if (kept() <= keep && item.key + keepMs > now) break
    heap.pop()
    core.remove(item.id)
  }
}
