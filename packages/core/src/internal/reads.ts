/**
 * What the state answers without changing: pages of jobs (`list`), counts and stats, the workers
 * holding leases, whether a claim could find a job, and when the next timed change is due.
 */
import { type JobId, type JobPage, type JobState, jobStates, type ListQuery, type Stats } from "@osqueue/types"
import { BinaryHeap } from "../Heap.js"
import { limitStatus, room, startsWithin } from "./claimLimits.js"
import type { Entry } from "./entry.js"
import { nextScheduleRun } from "./schedules.js"
import type { StateCore } from "./stateCore.js"

/**
 * A `list` search: the jobs whose id, payload or last error contains `text` (as the job's JSON
 * writes it, case-sensitive). The stored bytes are scanned first (a native search, no decode);
 * only a job they contain is decoded to check the fields, so a lease's secret is never searched.
 */
const searcher = (text: string) => {
  const needle = Buffer.from(text)
  return (entry: Entry): boolean => {
    if (!entry.mayContain(needle)) return false
    const job = entry.job
    return job.id.includes(text) || (job.lastError?.includes(text) ?? false) ||
      (JSON.stringify(job.payload) ?? "").includes(text)
  }
}

/** Most bytes of jobs in one page of `list`: a page of 1,000 jobs with large payloads, results and progress could be most of a GB. */
export const maxPageBytes = 8 * 1024 * 1024

export const list = (core: StateCore, query: ListQuery): JobPage => {
  const limit = query.limit ?? 100
  const newestFirst = query.order === "desc"
  // `after` is the cursor in the chosen order: past it is a greater seq, or newest first a smaller one.
  const after = query.after ?? (newestFirst ? Number.MAX_SAFE_INTEGER : 0)
  const ahead = newestFirst ? (a: number, b: number) => a > b : (a: number, b: number) => a < b
  const matches = query.search === undefined ? undefined : searcher(query.search)
  const ids: Iterable<JobId> = query.state === undefined ? core.jobs.entries.keys() : core.jobs.byState[query.state]
  // The first `limit` seqs past `after`, kept in a heap whose top is the last of them:
  // O(n log limit), no full sort, and only the page's jobs (and a search's candidates) decoded.
  const page = new BinaryHeap<Entry>((a, b) => ahead(b.seq, a.seq))
  let more = false
  for (const id of ids) {
    const entry = core.jobs.entries.get(id)!
    if (!ahead(after, entry.seq) || (query.type !== undefined && entry.type !== query.type)) continue
    if (page.size >= limit && !ahead(entry.seq, page.peek()!.seq)) {
      more = true
      continue
    }
    if (matches !== undefined && !matches(entry)) continue
    if (page.size < limit) page.push(entry)
    else {
      more = true
      page.pop()
      page.push(entry)
    }
  }
  const entries: Array<Entry> = []
  for (let entry = page.pop(); entry !== undefined; entry = page.pop()) entries.push(entry)
  entries.reverse()
  // A page of big jobs ends early (always with one job at least): its answer stays bounded.
  let bytes = 0
  let end = 0
  while (end < entries.length && (end === 0 || bytes + entries[end]!.size <= maxPageBytes)) {
    bytes += entries[end++]!.size
  }
  if (end < entries.length) more = true
  const jobs = entries.slice(0, end).map((entry) => entry.job)
  return more ? { jobs, next: jobs[jobs.length - 1]!.seq } : { jobs }
}

/** Jobs of each type in each state (the dashboard's per-type table, every few seconds), as the index keeps them. */
export const countsByType = (core: StateCore): Map<string, Record<JobState, number>> => {
  const counts = new Map<string, Record<JobState, number>>()
  // Copies: the index's counts go on changing.
  for (const [type, row] of core.jobs.byType) counts.set(type, { ...row.states })
  return counts
}

/**
 * The counts as of `seq` with the state at `stateBytes` (by default the state's own): every
 * commit seals them (`journal.ts`), so the counts by state are assigned, not `fromEntries` over
 * a mapped array, and nothing is copied to set `seq`.
 */
export const stats = (core: StateCore, seq = core.seq, stateBytes = core.bytes): Stats => {
  const counts = {} as Record<JobState, number>
  for (const state of jobStates) counts[state] = core.jobs.byState[state].size
  return {
    counts,
    queuedByType: queuedByType(core),
    paused: core.meta.paused,
    limits: limitStatus(core),
    epoch: core.meta.epoch,
    seq,
    stateBytes,
    completedTotal: core.meta.totals.completed,
    deadTotal: core.meta.totals.dead,
    enqueuedTotal: core.meta.totals.enqueued
  }
}

/** Each type's queued jobs, for the types that have some. */
const queuedByType = (core: StateCore): Record<string, number> => {
  const queued: Array<[string, number]> = []
  for (const [type, { states }] of core.jobs.byType) if (states.queued > 0) queued.push([type, states.queued])
  // A type is a client's string ("__proto__" too): own properties from the pairs, never assigned.
  return Object.fromEntries(queued)
}

/** True when a claim could return a job at `now` (not paused, something queued, within the limits on claims). */
export const hasClaimable = (core: StateCore, types: ReadonlyArray<string> | undefined, now: number): boolean => {
  if (core.meta.paused.all || room(core, undefined, now) <= 0) return false
  for (const type of types ?? core.jobs.byType.keys()) {
    if (
      core.jobs.countOf(type, "queued") > 0 && !core.meta.paused.types.includes(type) && room(core, type, now) > 0
    ) return true
  }
  return false
}

/**
 * The workers holding leases: how many running jobs each holds, and its latest claim or
 * heartbeat (the latest start of one of its leases; a takeover's grace restarts them too).
 */
export const workers = (
  core: StateCore
): ReadonlyArray<{ readonly id: string; readonly jobs: number; readonly lastSeenAt: number }> => {
  const byWorker = new Map<string, { id: string; jobs: number; lastSeenAt: number }>()
  for (const id of core.jobs.byState.running) {
    const lease = core.jobs.entries.get(id)!.job.lease!
    const renewed = lease.expiresAt - lease.ttlMs
    const worker = byWorker.get(lease.workerId)
    if (worker === undefined) byWorker.set(lease.workerId, { id: lease.workerId, jobs: 1, lastSeenAt: renewed })
    else {
      worker.jobs++
      worker.lastSeenAt = Math.max(worker.lastSeenAt, renewed)
    }
  }
  return [...byWorker.values()]
}

/**
 * When, after `now`, the next delayed or retrying job becomes claimable, a lease expires, a
 * schedule runs, or a rate limit that holds queued jobs back lets one more start (its window
 * lets go of a start): a long-poll claim waits until then, as no commit may come to wake it.
 */
export const nextWakeup = (core: StateCore, now: number): number | undefined => {
  let wake: number | undefined
  for (const at of [core.jobs.scheduled.peek()?.key, core.jobs.leases.peek()?.key, nextScheduleRun(core)]) {
    if (at !== undefined && (wake === undefined || at < wake)) wake = at
  }
  for (const limit of core.meta.limits) {
    const queued = limit.type === undefined
      ? core.jobs.byState.queued.size
      : core.jobs.countOf(limit.type, "queued")
    if (limit.rate === undefined || queued === 0) continue
    const { max, windowMs } = limit.rate
    const held = core.starts.get(limit.type) ?? []
    if (startsWithin(core, limit.type, windowMs, now) < max) continue
    // The window is full: it lets one more start once its `max`-th newest start leaves it.
    const frees = held[held.length - max]! + windowMs
    if (wake === undefined || frees < wake) wake = frees
  }
  return wake
}
