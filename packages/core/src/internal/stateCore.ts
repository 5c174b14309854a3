/**
 * The state's data in one place — the jobs and their indexes, the header, the schedules, the
 * scopes' start times, the open batch's journal — and the only ways to change it: each change
 * is written to the open batch's undo journal first (internal/journal.ts), so that a rollback
 * puts it back. The other internal modules are functions over it, one concern each.
 */
import type { ClaimLimit, Job, JobEvent, JobEventKind, JobId, Leader, Paused, Schedule, Totals } from "@osqueue/types"
import { BinaryHeap } from "../Heap.js"
import type { Limits } from "../QueueState.js"
import type { KeptJobs } from "../StoredJobs.js"
import { Entry } from "./entry.js"
import { JobIndex } from "./jobIndex.js"
import type { Frame, StartsStep, Undo } from "./journal.js"

export interface Meta {
  readonly epoch: number
  readonly leader: Leader | null
  readonly nextJobSeq: number
  readonly paused: Paused
  readonly totals: Totals
  /** The limits on claims, one per scope (a job type, or the whole queue without `type`). */
  readonly limits: ReadonlyArray<ClaimLimit>
}

/**
 * A scope of a limit on claims: a job type, or `undefined` for the whole queue (docs/architecture.md,
 * "Limits on claims").
 */
export type Scope = string | undefined

/** A schedule in the state: the stamp tells its current due-heap item from stale ones. */
export interface HeldSchedule {
  readonly schedule: Schedule
  readonly stamp: number
}

/** A schedule's next slot in the due heap. */
export interface DueItem {
  readonly key: number
  readonly id: string
  readonly stamp: number
}

export class StateCore {
  readonly jobs = new JobIndex()
  /**
   * Each rate-limited scope's start times within its window (and at most its `max` newest),
   * oldest first: kept in the state, checkpoint and log rather than read from the jobs, whose
   * attempts leave with the jobs (retention, delete, purge) while their starts still count.
   */
  starts = new Map<Scope, ReadonlyArray<number>>()
  startsSteps: Array<StartsStep> = []
  /** `meta.limits` by scope, for the claim path (made again when the limits change). */
  limitsByScope: { readonly of: ReadonlyArray<ClaimLimit>; readonly byScope: Map<Scope, ClaimLimit> } | undefined
  readonly schedules = new Map<string, HeldSchedule>()
  readonly dueSchedules = new BinaryHeap<DueItem>((a, b) => a.key < b.key)
  meta: Meta
  stamps = 0
  /** The open batch's undo journal (its frame's), undefined outside a batch. */
  journal: Array<Undo> | undefined
  /** The open batch's events (its frame's). */
  events: Array<JobEvent> = []
  /** The batches not yet durable, oldest first: at most the open one and the ones in flight below it. */
  readonly frames: Array<Frame> = []
  /** Estimated bytes added since the last commit. */
  pendingBytes = 0

  /** Of the last durable commit. */
  seq: number
  commitId: string
  bytes: number

  constructor(
    meta: Meta,
    seq: number,
    commitId: string,
    readonly limits: Limits
  ) {
    this.meta = meta
    this.seq = seq
    this.commitId = commitId
    this.bytes = 0
  }

  setMeta(meta: Meta): void {
    this.journal?.push({ meta: this.meta })
    this.meta = meta
  }

  /** `payloadJson`: the payload's JSON, when `enqueue` made the job (`Entry.of`). */
  put(job: Job, payloadJson?: string): Job {
    const prev = this.jobs.entries.get(job.id)
    this.journal?.push({ id: job.id, prev })
    this.jobs.install(job.id, prev, Entry.of(job, ++this.stamps, payloadJson))
    return job
  }

  /** `put` for the job a claim made running out of a job just read from its bytes (`Entry.claimed`). */
  putClaimed(job: Job): Job {
    const prev = this.jobs.entries.get(job.id)
    this.journal?.push({ id: job.id, prev })
    this.jobs.install(job.id, prev, Entry.claimed(job, ++this.stamps))
    return job
  }

  /** Puts stored jobs (`KeptJobs`: a checkpoint's, a log entry's) as their bytes, as after an encode. */
  putKept(kept: KeptJobs): void {
    const { buffers, ends, ids, inFlow, keyHashes, keys, running, seqs, starts, states, types } = kept
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!
      const prev = this.jobs.entries.get(id)
      this.journal?.push({ id, prev })
      const entry = Entry.stored(
        states[i]!,
        types[i]!,
        seqs[i]!,
        // NaN: no key (`KeptJobs.keyHashes`).
        Number.isNaN(keyHashes[i]!) ? undefined : keyHashes[i]!,
        inFlow[i] === 1,
        running.get(i),
        buffers[i]!,
        starts[i]!,
        ends[i]!,
        ++this.stamps
      )
      this.jobs.install(id, prev, entry, keys[i])
    }
  }

  remove(id: JobId): void {
    const prev = this.jobs.entries.get(id)
    this.journal?.push({ id, prev })
    this.jobs.install(id, prev, undefined)
  }

  putSchedule(schedule: Schedule): void {
    this.journal?.push({ schedule: schedule.id, prev: this.schedules.get(schedule.id)?.schedule })
    this.installSchedule(schedule.id, schedule)
  }

  removeSchedule(id: string): void {
    this.journal?.push({ schedule: id, prev: this.schedules.get(id)?.schedule })
    this.installSchedule(id, undefined)
  }

  /** Replaces a schedule and queues its next slot (an older item of it goes stale). */
  installSchedule(id: string, schedule: Schedule | undefined): void {
    if (schedule === undefined) {
      this.schedules.delete(id)
      return
    }
    const stamp = ++this.stamps
    this.schedules.set(id, { schedule, stamp })
    if (schedule.nextAt !== undefined) this.dueSchedules.push({ key: schedule.nextAt, id, stamp })
  }

  setStarts(scope: Scope, next: ReadonlyArray<number>): void {
    this.journal?.push({ starts: scope, prev: this.starts.get(scope) })
    this.installStarts(scope, next)
  }

  installStarts(scope: Scope, next: ReadonlyArray<number> | undefined): void {
    if (next === undefined || next.length === 0) this.starts.delete(scope)
    else this.starts.set(scope, next)
  }

  emit(kind: JobEventKind, job: Job, at: number, error?: string): void {
    const event: { -readonly [K in keyof JobEvent]: JobEvent[K] } = {
      kind,
      jobId: job.id,
      type: job.type,
      at,
      attempt: job.attempts
    }
    if (job.lease !== undefined) event.workerId = job.lease.workerId
    if (error !== undefined) event.error = error
    // The durations ride on the event so that a reader of the stream (the broker's history of
    // waits and runs) need not decode the job from the state to time it.
    if (kind === "claimed") event.waitedMs = Math.max(0, at - job.runAt)
    else if (kind === "completed" && job.startedAt !== undefined) event.ranMs = Math.max(0, at - job.startedAt)
    this.events.push(event)
  }
}
