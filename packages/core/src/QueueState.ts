/**
 * The queue's state machine: pure and deterministic given (state, command, now, lease secrets),
 * mutated in place with an undo journal so that a batch whose write fails can be rolled back
 * without copying the state. Every command is O(log n) (claims add O(types)); indexes are heaps
 * with lazy deletion. Each job's JSON is cached, so a commit encodes only the jobs that changed.
 */
import {
  type Backoff,
  type ClaimLimit,
  currentFormat,
  defaultBackoff,
  defaultMissedSlots,
  type EnqueueOptions,
  firstLogFormat,
  fromStoredJob,
  type HeldLease,
  InvalidRequest,
  InvalidTransition,
  isJob,
  Job,
  type JobEvent,
  type JobEventKind,
  type JobId,
  JobNotFound,
  type JobPage,
  type JobState,
  jobStates,
  type Leader,
  LeaseLost,
  leaseSecretOf,
  type LeaseToken,
  type LimitStatus,
  type ListQuery,
  makeLeaseToken,
  maxConcurrency,
  maxInstant,
  maxLimitedTypes,
  maxPausedTypes,
  maxRateStarts,
  maxRateWindowMs,
  maxSchedules,
  type OsqueueError,
  parseLeaseToken,
  type Paused,
  PayloadTooLarge,
  publicJob,
  type QueueFile,
  QueueFull,
  type Schedule,
  ScheduleNotFound,
  scheduleRunKey,
  type ScheduleSpec,
  type Stats,
  storedJob,
  type Totals
} from "@osqueue/types"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { ClaimResult, Command, HeartbeatResult, ResultOf } from "./Command.js"
import { Heap } from "./Heap.js"
import { elementText } from "./JsonElements.js"
import {
  entryFormat,
  type EntryKind,
  type JobPatch,
  lastPosition,
  type LogEntry,
  type StartsChange
} from "./LogEntry.js"
import { latestSlot, nextSlot, problemOf } from "./ScheduleSlots.js"

export interface Limits {
  /** Largest JSON payload (and result) of one job, in bytes. */
  readonly maxPayloadBytes: number
  /** Largest queue.json, in bytes: enqueues past it fail with `QueueFull`. */
  readonly maxStateBytes: number
  /** Completed and cancelled jobs kept for reading, newest first. */
  readonly keepFinished: number
  /** …and for at most this long after they finished. */
  readonly keepFinishedMs: number
  /** Dead jobs kept for inspection and redrive, newest first… */
  readonly keepDead: number
  /** …and for at most this long after they died. */
  readonly keepDeadMs: number
  readonly defaultMaxAttempts: number
  readonly defaultLeaseMs: number
  readonly maxLeaseMs: number
  /** Past attempts kept per job. */
  readonly maxHistory: number
  /**
   * A schedule's slot found due later than this after its time was missed: no broker led then
   * (a leader commits at least every third of the election TTL, which is what brokers set this
   * to). Missed slots get one catch-up run together, or none (docs/architecture.md, "Schedules").
   */
  readonly scheduleGraceMs: number
}

export const defaultLimits: Limits = {
  maxPayloadBytes: 256 * 1024,
  maxStateBytes: 256 * 1024 * 1024,
  keepFinished: 1_000,
  keepFinishedMs: 60 * 60 * 1000,
  keepDead: 10_000,
  keepDeadMs: 7 * 24 * 60 * 60 * 1000,
  defaultMaxAttempts: 3,
  defaultLeaseMs: 30_000,
  maxLeaseMs: 60 * 60 * 1000,
  maxHistory: 10,
  scheduleGraceMs: 10_000
}

const jobsEnd = Buffer.from("]}")

/** An object's bytes as the parts a store writes in order (`ObjectStore.Body`), and their total. */
export interface Encoded {
  readonly parts: ReadonlyArray<Uint8Array>
  readonly length: number
}

/** Most bytes of jobs in one page of `list`: a page of 1,000 jobs with large payloads, results and progress could be most of a GB. */
export const maxPageBytes = 8 * 1024 * 1024

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

/** A rough size of a job's JSON beyond its payload, to check the state cap before encoding. */
const jobOverheadBytes = 400

/**
 * A job in the state. Once encoded, the job is kept only as its bytes (it is decoded again when
 * read): a queued job's object, payload included, cost about three times its bytes, and a big
 * queue is mostly jobs nobody reads until they are claimed. The fields the indexes need stay.
 * A running job keeps its object too: its heartbeats and its outcome read it again soon, and
 * running jobs are only as many as the leases workers hold.
 */
class Entry {
  private constructor(
    readonly state: JobState,
    readonly type: string,
    readonly seq: number,
    readonly idempotencyKey: string | undefined,
    private decoded: Job | undefined,
    /**
     * `,` and the job's stored JSON as UTF-8, filled in at the first encode after the job
     * changed: a commit then copies bytes instead of stringifying the whole queue.
     */
    private bytes: Uint8Array | undefined,
    /** Changes whenever the job does: heap items carrying an older stamp are stale. */
    readonly stamp: number
  ) {}

  /** `bytes`: the job's stored JSON with a comma in front, when it was read from them (a checkpoint, a log entry). */
  static of(job: Job, stamp: number, bytes?: Uint8Array): Entry {
    return new Entry(job.state, job.type, job.seq, job.idempotencyKey, job, bytes, stamp)
  }

  /** The same job under a new stamp (a rollback puts it back). */
  restamped(stamp: number): Entry {
    return new Entry(this.state, this.type, this.seq, this.idempotencyKey, this.decoded, this.bytes, stamp)
  }

  get job(): Job {
    // Bytes this state wrote from a valid job: no need to check them again.
    return this.decoded ??= fromStoredJob(JSON.parse(elementText(this.bytes!)) as Record<string, unknown>)
  }

  /** The job's object if it is at hand (no decode). */
  get decodedIfAny(): Job | undefined {
    return this.decoded
  }

  /** About how many bytes the job's JSON takes (its stored bytes once a commit wrote them). */
  get size(): number {
    return this.bytes?.length ?? JSON.stringify(storedJob(this.decoded!)).length + 1
  }

  /**
   * Encodes the job now, if it was not yet: the command that put it is refused (and undone) if
   * that throws, instead of the commit that carries it (docs/architecture.md, "Hostile input").
   */
  prepare(): void {
    this.bytes ??= Buffer.from(`,${JSON.stringify(storedJob(this.decoded!))}`)
  }

  get prepared(): boolean {
    return this.bytes !== undefined
  }

  /** False only when the job's JSON surely does not contain `needle` (a `list` search's first pass). */
  mayContain(needle: Uint8Array): boolean {
    return this.bytes === undefined ||
      Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength).indexOf(needle) >= 0
  }

  /** The bytes a commit writes; from now on they stand for the job. */
  encoded(): Uint8Array {
    this.prepare()
    if (this.state !== "running") this.decoded = undefined
    return this.bytes!
  }

  /** `encoded` for the operator's view: a running job without its lease's secret. */
  encodedPublic(): Uint8Array {
    return this.state === "running" ? Buffer.from(`,${JSON.stringify(storedJob(publicJob(this.job)))}`) : this.encoded()
  }
}

interface Meta {
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
type Scope = string | undefined

type Undo =
  | { readonly id: JobId; readonly prev: Entry | undefined }
  | { readonly meta: Meta }
  | { readonly schedule: string; readonly prev: Schedule | undefined }
  | { readonly starts: Scope; readonly prev: ReadonlyArray<number> | undefined }

/** What the open batch did to a scope's start times, in order: the log entry is made from it. */
type StartsStep = { readonly scope: Scope; readonly added: number } | { readonly scope: Scope; readonly dropped: true }

/** A change of a job (not of the header, a schedule or a scope's starts). */
const isJobUndo = (undo: Undo): undo is { readonly id: JobId; readonly prev: Entry | undefined } => "id" in undo

/** A schedule in the state: the stamp tells its current due-heap item from stale ones. */
interface HeldSchedule {
  readonly schedule: Schedule
  readonly stamp: number
}

/** A schedule's next slot in the due heap. */
interface DueItem {
  readonly key: number
  readonly id: string
  readonly stamp: number
}

/** Bytes a schedule takes in queue.json (its JSON and a comma). */
const scheduleSize = (schedule: Schedule | undefined): number =>
  schedule === undefined ? 0 : JSON.stringify(schedule).length + 1

/** One batch not yet durable: how to undo it, what happened in it, and (once encoded) what it adds. */
interface Frame {
  readonly journal: Array<Undo>
  readonly events: Array<JobEvent>
  sealed: { readonly growth: number; readonly stats: Stats } | undefined
}

interface Item {
  /** Priority for the ready heaps, a time for the others. */
  readonly key: number
  readonly seq: number
  readonly id: JobId
  readonly stamp: number
}

const itemLess = (a: Item, b: Item) => a.key < b.key || (a.key === b.key && a.seq < b.seq)
const newHeap = () => new Heap<Item>(itemLess)

export interface Savepoint {
  readonly journal: number
  readonly events: number
  readonly pendingBytes: number
  readonly startsSteps: number
}

/** The token of the job's lease (docs/architecture.md, "Lease tokens"). */
export const tokenOf = (job: Job): LeaseToken =>
  makeLeaseToken({ jobId: job.id, claims: job.claims, epoch: job.lease?.epoch ?? 0, secret: leaseSecretOf(job) })

/**
 * Where a claim's lease secrets come from: the leader's crypto-random source in a broker
 * (`LeaseSecret.random`), anything repeatable in a test. An input like `now`, so the state
 * machine stays deterministic given its inputs.
 */
export type SecretSource = () => string

/** Compares two secrets in time that depends on their length only. */
const sameSecret = (a: string, b: string): boolean => {
  if (a.length !== b.length) return false
  let difference = 0
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return difference === 0
}

/**
 * `now + ms`, never past `maxInstant`: every time the state computes stays a safe integer that
 * queue.json holds and reads back, whatever a job stored before requests were bounded says.
 */
const later = (now: number, ms: number): number => Math.min(now + ms, maxInstant)

/** Why a command that threw was refused, without walking what it carried. */
const reasonOf = (defect: unknown): string =>
  defect instanceof Error ? `${defect.name}: ${defect.message}` : "it could not be applied"

const decodeJob = Schema.decodeUnknownEither(Job)

/** A number in [0, 1) fixed by the job and attempt, so jitter keeps the state machine deterministic. */
const unitHash = (text: string): number => {
  let h = 2166136261
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 16777619)
  }
  return (h >>> 0) / 4294967296
}

/** Doublings past which any exponential backoff is at its cap: keeps the power finite. */
const maxDoublings = 64

export const backoffDelay = (backoff: Backoff, failures: number, salt: string): number => {
  if (backoff._tag === "fixed") return backoff.delayMs
  const raw = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(maxDoublings, Math.max(0, failures - 1)))
  return Math.round(raw * (1 - backoff.jitter * unitHash(salt)))
}

const finalStates: ReadonlySet<JobState> = new Set(["completed", "dead", "cancelled"])

export class QueueState {
  private readonly entries = new Map<JobId, Entry>()
  private readonly byState = Object.fromEntries(jobStates.map((s) => [s, new Set<JobId>()])) as Record<
    JobState,
    Set<JobId>
  >
  private readonly ready = new Map<string, Heap<Item>>()
  private readonly queuedByType = new Map<string, number>()
  private readonly runningByType = new Map<string, number>()
  /**
   * Each rate-limited scope's start times within its window (and at most its `max` newest),
   * oldest first: kept in the state, checkpoint and log rather than read from the jobs, whose
   * attempts leave with the jobs (retention, delete, purge) while their starts still count.
   */
  private starts = new Map<Scope, ReadonlyArray<number>>()
  private startsSteps: Array<StartsStep> = []
  /** `meta.limits` by scope, for the claim path (made again when the limits change). */
  private limitsByScope:
    | { readonly of: ReadonlyArray<ClaimLimit>; readonly byScope: Map<Scope, ClaimLimit> }
    | undefined
  private readonly scheduled = newHeap()
  private readonly leases = newHeap()
  private readonly finished = newHeap()
  private readonly dead = newHeap()
  private readonly byKey = new Map<string, JobId>()
  private readonly schedules = new Map<string, HeldSchedule>()
  private readonly dueSchedules = new Heap<DueItem>((a, b) => a.key < b.key)
  private meta: Meta
  private stamps = 0
  /** The open batch's undo journal (its frame's), undefined outside a batch. */
  private journal: Array<Undo> | undefined
  /** The open batch's events (its frame's). */
  private events: Array<JobEvent> = []
  /** The batches not yet durable, oldest first: at most the open one and the ones in flight below it. */
  private readonly frames: Array<Frame> = []
  /** Estimated bytes added since the last commit. */
  private pendingBytes = 0

  /** Of the last durable commit. */
  seq: number
  commitId: string
  bytes: number

  private constructor(
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

  static empty(limits: Limits = defaultLimits): QueueState {
    return new QueueState(
      {
        epoch: 0,
        leader: null,
        nextJobSeq: 1,
        paused: { all: false, types: [] },
        totals: { enqueued: 0, completed: 0, dead: 0 },
        limits: []
      },
      0,
      "",
      limits
    )
  }

  /**
   * `jobBytes`: each job's bytes as the file held them (`Cas.Decoded`), kept as its cached bytes
   * when the file is of the current format: no re-encode of every job for the next checkpoint.
   */
  static fromFile(
    file: QueueFile,
    bytes: number,
    limits: Limits = defaultLimits,
    jobBytes?: ReadonlyArray<Uint8Array>
  ): QueueState {
    const state = new QueueState(
      {
        epoch: file.epoch,
        leader: file.leader,
        nextJobSeq: file.nextJobSeq,
        paused: file.paused,
        totals: file.totals,
        limits: file.limits ?? []
      },
      file.seq,
      file.commitId,
      limits
    )
    for (const { at, type } of file.starts ?? []) state.starts.set(type, at)
    // Jobs are written alike from the first log format on.
    const kept = file.format >= firstLogFormat ? jobBytes : undefined
    file.jobs.forEach((job, i) => {
      const entry = Entry.of(job, ++state.stamps, kept?.[i])
      state.install(job.id, undefined, entry)
      if (kept !== undefined) entry.encoded()
    })
    for (const schedule of file.schedules ?? []) state.installSchedule(schedule.id, schedule)
    state.bytes = bytes
    return state
  }

  get epoch(): number {
    return this.meta.epoch
  }

  get leader(): Leader | null {
    return this.meta.leader
  }

  get paused(): Paused {
    return this.meta.paused
  }

  get claimLimits(): ReadonlyArray<ClaimLimit> {
    return this.meta.limits
  }

  get size(): number {
    return this.entries.size
  }

  // ---------------------------------------------------------------- batches and rollback

  /**
   * Starts recording undo information for a batch: a new frame on top of the sealed ones still
   * in flight (docs/architecture.md, "Appends in flight"). A frame still open is dropped (its
   * changes stay, unrecorded), as a new batch always did.
   */
  begin(): void {
    const top = this.frames[this.frames.length - 1]
    if (top !== undefined && top.sealed === undefined) this.frames.pop()
    const journal: Array<Undo> = []
    this.frames.push({ journal, events: [], sealed: undefined })
    this.journal = journal
    this.events = this.frames[this.frames.length - 1]!.events
    // The batches in flight below count against the size cap as if durable.
    this.pendingBytes = this.inFlightGrowth()
    this.startsSteps = []
  }

  savepoint(): Savepoint {
    return {
      journal: this.journal?.length ?? 0,
      events: this.events.length,
      pendingBytes: this.pendingBytes,
      startsSteps: this.startsSteps.length
    }
  }

  /** Undoes the open batch's changes since the savepoint (since its start when omitted). */
  rollback(to?: Savepoint): void {
    const journal = this.journal
    if (journal === undefined) return
    this.undo(journal, to?.journal ?? 0)
    this.events.length = to?.events ?? 0
    this.pendingBytes = to?.pendingBytes ?? this.inFlightGrowth()
    this.startsSteps.length = to?.startsSteps ?? 0
  }

  /** Undoes the open batch and drops it (it was never sent). */
  abandon(): void {
    this.rollback()
    if (this.frames[this.frames.length - 1]?.sealed === undefined) this.frames.pop()
    this.journal = undefined
    this.events = []
  }

  /** Undoes every batch not yet durable, the newest first: a failed append voids what was sent behind it. */
  rollbackAll(): void {
    for (let frame = this.frames.pop(); frame !== undefined; frame = this.frames.pop()) this.undo(frame.journal, 0)
    this.journal = undefined
    this.events = []
    this.pendingBytes = 0
    this.startsSteps = []
  }

  private undo(journal: Array<Undo>, to: number): void {
    while (journal.length > to) {
      const undo = journal.pop()!
      if ("meta" in undo) {
        this.meta = undo.meta
      } else if ("schedule" in undo) {
        this.installSchedule(undo.schedule, undo.prev)
      } else if ("starts" in undo) {
        this.installStarts(undo.starts, undo.prev)
      } else {
        const prev = undo.prev
        this.install(
          undo.id,
          this.entries.get(undo.id),
          prev === undefined ? undefined : prev.restamped(++this.stamps)
        )
      }
    }
  }

  /**
   * Ends the open batch once its entry is encoded: what it changed is fixed now, though a
   * batch sent behind it may change the same jobs before it is durable. `position` is the last
   * one it accounts for.
   */
  seal(position: number): void {
    const frame = this.frames[this.frames.length - 1]
    if (frame === undefined || frame.sealed !== undefined) return
    const growth = this.journalGrowth(frame.journal)
    const stateBytes = this.bytes + this.inFlightGrowth() + growth
    frame.sealed = { growth, stats: { ...this.stats(), seq: position, stateBytes } }
    this.journal = undefined
    this.events = []
  }

  /** The counts as they will stand once the batches in flight are durable: the newest sealed frame's. */
  sealedStats(): Stats | undefined {
    return this.frames[this.frames.length - 1]?.sealed?.stats
  }

  /**
   * Ends the oldest batch after its write is durable; returns what happened in it. `bytes` is
   * the size of the whole state when the write was one (a checkpoint); a log entry leaves it
   * out, and the size moves by what the batch's jobs gained or lost.
   */
  committed(seq: number, commitId: string, bytes?: number): ReadonlyArray<JobEvent> {
    if (this.frames[0]?.sealed === undefined) this.seal(seq)
    const frame = this.frames.shift()
    this.bytes = bytes ?? this.bytes + (frame?.sealed?.growth ?? 0)
    this.seq = seq
    this.commitId = commitId
    if (this.frames.length === 0) this.pendingBytes = 0
    return frame?.events ?? []
  }

  /** What the sealed batches not yet durable add to the encoded state. */
  private inFlightGrowth(): number {
    let growth = 0
    for (const frame of this.frames) growth += frame.sealed?.growth ?? 0
    return growth
  }

  /** How many bytes the jobs `journal` touched add to the encoded state (negative when it shrank). */
  private journalGrowth(journal: ReadonlyArray<Undo>): number {
    const before = new Map<JobId, Entry | undefined>()
    const schedulesBefore = new Map<string, Schedule | undefined>()
    for (const undo of journal) {
      if (isJobUndo(undo)) {
        if (!before.has(undo.id)) before.set(undo.id, undo.prev)
      } else if ("schedule" in undo && !schedulesBefore.has(undo.schedule)) {
        schedulesBefore.set(undo.schedule, undo.prev)
      }
    }
    let growth = 0
    for (const [id, prev] of before) growth += (this.entries.get(id)?.size ?? 0) - (prev?.size ?? 0)
    for (const [id, prev] of schedulesBefore) {
      growth += scheduleSize(this.schedules.get(id)?.schedule) - scheduleSize(prev)
    }
    return growth
  }

  /**
   * The log entry of the open batch (docs/architecture.md, "The log"), as the parts a store
   * writes in order: the header fields when any changed, each job the batch created as it stands
   * now (its cached bytes, the ones a checkpoint writes), each job it changed as the fields that
   * changed (`patchOf`: a claim or a completion does not write the payload again), and the ids of
   * touched jobs now gone. Read from the undo journal, so it costs the batch, not the queue. Call
   * before `seal`; `skip` is the positions after it that readers pass over.
   */
  entryParts(kind: EntryKind, position: number, commitId: string, skip = 0): Encoded {
    let headerChanged = false
    // Each touched job, with the entry it had before the batch.
    const touched = new Map<JobId, Entry | undefined>()
    const touchedSchedules = new Set<string>()
    for (const undo of this.journal ?? []) {
      if ("meta" in undo) headerChanged = true
      else if ("schedule" in undo) touchedSchedules.add(undo.schedule)
      else if (isJobUndo(undo) && !touched.has(undo.id)) touched.set(undo.id, undo.prev)
    }
    const removed: Array<JobId> = []
    const patched: Array<string> = []
    const parts: Array<Uint8Array> = [new Uint8Array(0)]
    let length = 0
    for (const [id, prev] of touched) {
      const entry = this.entries.get(id)
      if (entry === undefined) {
        removed.push(id)
        continue
      }
      const patch = prev === undefined ? undefined : patchOf(prev, entry)
      // The whole job's bytes are made either way: its size, and the next checkpoint's.
      const json = entry.encoded()
      if (patch !== undefined && patch.length < json.length) {
        patched.push(patch)
        continue
      }
      parts.push(parts.length === 1 ? json.subarray(1) : json)
      length += parts[parts.length - 1]!.length
    }
    const head = JSON.stringify({
      format: entryFormat,
      kind,
      position,
      epoch: this.meta.epoch,
      commitId,
      ...(skip > 0 ? { skip } : {}),
      ...(headerChanged ? { header: this.meta } : {})
    })
    parts[0] = Buffer.from(`${head.slice(0, -1)},"put":[`)
    const schedules = touchedSchedules.size > 0
      ? `"schedules":${JSON.stringify(this.scheduleChanges(touchedSchedules))},`
      : ""
    const starts = this.startsChanges()
    const tail = Buffer.from(
      `],${patched.length > 0 ? `"patched":[${patched.join(",")}],` : ""}${schedules}"removed":${
        JSON.stringify(removed)
      }${starts.length > 0 ? `,"starts":${JSON.stringify(starts)}` : ""}}`
    )
    parts.push(tail)
    return { parts, length: length + parts[0].length + tail.length }
  }

  /** The schedules a batch touched: as they stand now, or gone. */
  private scheduleChanges(ids: ReadonlySet<string>): { put: Array<Schedule>; removed: Array<string> } {
    const put: Array<Schedule> = []
    const removed: Array<string> = []
    for (const id of ids) {
      const held = this.schedules.get(id)
      if (held === undefined) removed.push(id)
      else put.push(held.schedule)
    }
    return { put, removed }
  }

  /**
   * How the open batch changed each scope's start times, as the entry writes it: the starts
   * added since the scope's last drop that are still held are the newest ones; every other held
   * start is one the scope had before the batch (`StartsChange`).
   */
  private startsChanges(): Array<StartsChange> {
    const added = new Map<Scope, number>()
    for (const step of this.startsSteps) {
      added.set(step.scope, "dropped" in step ? 0 : (added.get(step.scope) ?? 0) + step.added)
    }
    const changes: Array<StartsChange> = []
    for (const [scope, count] of added) {
      const held = this.starts.get(scope) ?? []
      const fresh = Math.min(held.length, count)
      changes.push({
        ...(scope === undefined ? {} : { type: scope }),
        keep: held.length - fresh,
        at: held.slice(held.length - fresh)
      })
    }
    return changes
  }

  /**
   * Applies a log entry someone else wrote, as one durable batch (a follower or a takeover
   * replaying the log). Returns what is wrong when the entry does not apply to this state (a
   * patch of a job it does not hold, or one that leaves no valid job): the batch is undone and
   * the entry is corrupt.
   */
  replay(entry: LogEntry): string | undefined {
    this.begin()
    // A header from before the limits on claims (entry format 2) has none.
    if (entry.header !== undefined) this.setMeta({ ...entry.header, limits: entry.header.limits ?? [] })
    entry.put.forEach((job, i) => this.put(job, entry.putBytes?.[i]))
    for (const patch of entry.patched ?? []) {
      const prev = this.entries.get(patch.id as JobId)
      const job = prev === undefined ? undefined : patched(prev.job, patch)
      if (job === undefined) {
        this.rollbackAll()
        return prev === undefined
          ? `it changes job ${JSON.stringify(patch.id)}, which the state does not hold`
          : `its change of job ${JSON.stringify(patch.id)} leaves no valid job`
      }
      this.put(job)
      // Its bytes now, as the leader made them: the state's size, and the next checkpoint's.
      this.entries.get(job.id)!.encoded()
    }
    for (const id of entry.removed) this.remove(id as JobId)
    for (const schedule of entry.schedules?.put ?? []) this.putSchedule(schedule)
    for (const id of entry.schedules?.removed ?? []) this.removeSchedule(id)
    for (const change of entry.starts ?? []) {
      const held = this.starts.get(change.type) ?? []
      if (change.keep > held.length) {
        this.rollbackAll()
        return `it keeps ${change.keep} start times of ${
          change.type === undefined ? "the queue" : `type ${JSON.stringify(change.type)}`
        }, which holds ${held.length}`
      }
      this.setStarts(change.type, [...held.slice(held.length - change.keep), ...change.at])
    }
    this.committed(lastPosition(entry), entry.commitId)
    return undefined
  }

  // ---------------------------------------------------------------- encoding

  /** queue.json as of position `seq`, as UTF-8. Only jobs changed since their last encode are stringified. */
  encode(seq: number, commitId: string): Uint8Array {
    const { parts, length } = this.partsInto([], seq, commitId)
    return Buffer.concat(parts, length)
  }

  /**
   * `encode` as the parts a store writes in order: the header, each job's cached bytes, the
   * closing bracket — a checkpoint never builds one string or buffer of the whole queue. Jobs'
   * bytes are immutable (a changed job gets new ones), so the parts stay a consistent snapshot
   * while later commits change the state: a checkpoint is written from them in the background.
   */
  encodeParts(seq: number, commitId: string): Encoded {
    return this.partsInto([], seq, commitId)
  }

  private partsInto(parts: Array<Uint8Array>, seq: number, commitId: string, secrets = true): Encoded {
    const { epoch, leader, limits, nextJobSeq, paused, totals } = this.meta
    // By id: the same bytes whichever order the schedules were set in (a replica's, a leader's).
    const schedules = this.schedules.size === 0 ? undefined : this.listSchedules()
    const starts = [...this.starts].map(([type, at]) => (type === undefined ? { at } : { type, at }))
    const header = JSON.stringify({
      format: currentFormat,
      epoch,
      seq,
      commitId,
      leader,
      nextJobSeq,
      paused,
      totals,
      schedules,
      ...(limits.length > 0 ? { limits } : {}),
      ...(starts.length > 0 ? { starts } : {})
    })
    parts.length = this.entries.size + 2
    parts[0] = Buffer.from(`${header.slice(0, -1)},"jobs":[`)
    let length = parts[0].length + jobsEnd.length
    let i = 1
    for (const entry of this.entries.values()) {
      const json = secrets ? entry.encoded() : entry.encodedPublic()
      // The first job goes without its leading comma.
      parts[i] = i === 1 ? json.subarray(1) : json
      length += parts[i++]!.length
    }
    parts[i] = jobsEnd
    return { parts, length }
  }

  /** `encode` as text, for tests. */
  toJson(seq: number, commitId: string): string {
    const { length, parts } = this.partsInto([], seq, commitId)
    return Buffer.concat(parts, length).toString("utf8")
  }

  /** `toJson` without the lease secrets: the operator's view of the state (`/state`, `State`). */
  publicJson(seq: number, commitId: string): string {
    const { length, parts } = this.partsInto([], seq, commitId, false)
    return Buffer.concat(parts, length).toString("utf8")
  }

  // ---------------------------------------------------------------- leadership

  /** A new leader takes the queue: a new epoch, and every running lease gets a full TTL of grace. */
  takeover(leader: Leader, now: number): void {
    this.setMeta({ ...this.meta, epoch: this.meta.epoch + 1, leader })
    for (const id of [...this.byState.running]) {
      const job = this.entries.get(id)!.job
      const lease = job.lease!
      const expiresAt = Math.max(lease.expiresAt, later(now, lease.ttlMs))
      if (expiresAt !== lease.expiresAt) this.put({ ...job, lease: { ...lease, expiresAt } })
    }
  }

  /** The leader steps down cleanly: followers may take over without waiting for the TTL. */
  release(): void {
    if (this.meta.leader !== null) this.setMeta({ ...this.meta, leader: { ...this.meta.leader, released: true } })
  }

  // ---------------------------------------------------------------- time

  /** Lease expiry, delayed and retry promotion, and retention, as of `now`. Runs first in every batch. */
  tick(now: number): void {
    for (let item = this.leases.peek(); item !== undefined && item.key <= now; item = this.leases.peek()) {
      this.leases.pop()
      const job = this.live(item, "running")
      if (job === undefined) continue
      const error = `lease expired: worker ${job.lease!.workerId} stopped heartbeating`
      this.emit("expired", job, now, error)
      this.failAttempt(job, error, "expired", true, undefined, now)
    }
    for (let item = this.scheduled.peek(); item !== undefined && item.key <= now; item = this.scheduled.peek()) {
      this.scheduled.pop()
      const job = this.live(item)
      if (job === undefined || (job.state !== "delayed" && job.state !== "failed-waiting-retry")) continue
      this.put({ ...job, state: "queued" })
    }
    const { keepDead, keepDeadMs, keepFinished, keepFinishedMs, maxStateBytes } = this.limits
    this.retain(
      this.finished,
      () => this.byState.completed.size + this.byState.cancelled.size,
      keepFinished,
      keepFinishedMs,
      now
    )
    this.retain(this.dead, () => this.byState.dead.size, keepDead, keepDeadMs, now)
    // Results, errors and progress grow the state past the cap without an enqueue: the batch after
    // brings it back under by shedding finished jobs (docs/architecture.md, "Limits").
    this.shed(this.bytes - maxStateBytes)
    // Whole milliseconds, as a job's times are (a test clock may stand between two).
    this.runSchedules(Math.floor(now))
  }

  /**
   * Enqueues the runs of every schedule with slots due by `now` (docs/architecture.md,
   * "Schedules"). A schedule whose runs the queue refuses (full) is left as it was: the next
   * commit tries again.
   */
  private runSchedules(now: number): void {
    const refused: Array<DueItem> = []
    for (let item = this.dueSchedules.peek(); item !== undefined && item.key <= now; item = this.dueSchedules.peek()) {
      this.dueSchedules.pop()
      const held = this.schedules.get(item.id)
      if (held === undefined || held.stamp !== item.stamp) continue
      if (!this.runDue(held.schedule, held.schedule.nextAt!, now)) refused.push(item)
    }
    for (const item of refused) this.dueSchedules.push(item)
  }

  /**
   * One run per slot from `nextAt` to `now`, each under its slot's idempotency key. Slots older
   * than the grace were missed while no broker led: together they get one run (the latest of
   * them's) or, when the schedule skips missed slots, none. False when the queue refused the runs
   * (nothing changed).
   */
  private runDue(schedule: Schedule, nextAt: number, now: number): boolean {
    const cutoff = now - this.limits.scheduleGraceMs
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
    const savepoint = this.savepoint()
    const runs = slots.length === 0
      ? Either.right([])
      : this.enqueue(slots.map((slot) => ({ ...schedule.job, idempotencyKey: scheduleRunKey(schedule.id, slot) })), now)
    if (Either.isLeft(runs)) {
      this.rollback(savepoint)
      return false
    }
    const { nextAt: _, ...rest } = schedule
    const next = nextSlot(schedule, now)
    const last = runs.right.at(-1)
    this.putSchedule({
      ...rest,
      ...(next === undefined ? {} : { nextAt: next }),
      ...(last === undefined ? {} : { lastRun: { slot: slots.at(-1)!, at: now, jobId: last.id } })
    })
    return true
  }

  /** Removes the oldest jobs of a retention heap while more than `keep` are left or the oldest is older than `keepMs`. */
  private retain(heap: Heap<Item>, kept: () => number, keep: number, keepMs: number, now: number): void {
    for (let item = this.oldest(heap); item !== undefined; item = this.oldest(heap)) {
      if (kept() <= keep && item.key + keepMs > now) break
      heap.pop()
      this.remove(item.id)
    }
  }

  /** The current top of a retention heap (finished or dead jobs): stale items are dropped on the way. */
  private oldest(heap: Heap<Item>): Item | undefined {
    for (let item = heap.peek(); item !== undefined; item = heap.peek()) {
      const entry = this.entries.get(item.id)
      // An unchanged entry (same stamp) is still in the state the heap holds it for.
      if (entry !== undefined && entry.stamp === item.stamp) return item
      heap.pop()
    }
    return undefined
  }

  /**
   * Removes the oldest finished (completed, cancelled) jobs until `bytes` are freed or none is
   * left. What they took counts as freed at once (off `pendingBytes`), as an enqueue's jobs count
   * as added.
   */
  private shed(bytes: number): void {
    let freed = 0
    while (freed < bytes) {
      const item = this.oldest(this.finished)
      if (item === undefined) break
      this.finished.pop()
      freed += this.entries.get(item.id)!.size
      this.remove(item.id)
    }
    this.pendingBytes -= freed
  }

  /**
   * How long a client refused with `QueueFull` should wait: until the next lease ends (its job
   * finishes, and can be shed, or expires), at least a second and at most a minute; a minute when
   * no job runs, since then nothing frees space but workers claiming or an operator.
   */
  private fullFor(now: number): number {
    for (let item = this.leases.peek(); item !== undefined; item = this.leases.peek()) {
      if (this.live(item, "running") !== undefined) return Math.min(Math.max(item.key - now, 1_000), 60_000)
      this.leases.pop()
    }
    return 60_000
  }

  // ---------------------------------------------------------------- commands

  /**
   * Applies one command under its own savepoint, and encodes every job it put. A command that is
   * refused, throws (a value `JSON.stringify` cannot write, nested too deep for the stack) or
   * would store a job that `Job` refuses is undone alone and answered with its error: nothing
   * one command carries can fail the commit of the others (docs/architecture.md, "Hostile
   * input"). `secrets` gives each lease a claim grants its secret.
   */
  apply<C extends Command>(command: C, now: number, secrets: SecretSource): Either.Either<ResultOf<C>, OsqueueError> {
    const alone = this.journal === undefined
    if (alone) this.journal = []
    const savepoint = this.savepoint()
    try {
      const result = this.dispatch(command, now, secrets)
      const refused = Either.isLeft(result) ? result.left : this.checkJobsSince(savepoint)
      if (refused === undefined) return result as Either.Either<ResultOf<C>, OsqueueError>
      this.rollback(savepoint)
      return Either.left(refused)
    } catch (defect) {
      this.rollback(savepoint)
      return Either.left(
        new InvalidRequest({ message: `the ${command._tag} request was refused: ${reasonOf(defect)}` })
      )
    } finally {
      if (alone) this.journal = undefined
    }
  }

  /**
   * Checks and encodes the jobs put since `savepoint`: each must be a `Job` (so that every answer
   * carrying it encodes, and queue.json reads back) and its JSON must be writable. Throws what
   * the encode throws.
   */
  private checkJobsSince(savepoint: Savepoint): InvalidRequest | undefined {
    const journal = this.journal!
    for (let i = savepoint.journal; i < journal.length; i++) {
      const undo = journal[i]!
      if (!isJobUndo(undo)) continue
      const entry = this.entries.get(undo.id)
      if (entry === undefined || entry.prepared) continue
      const job: unknown = entry.job
      // The guard first (a fraction of a microsecond); the schema only for a job it refuses.
      if (!isJob(job)) {
        const decoded = decodeJob(job)
        if (Either.isLeft(decoded)) {
          const problem = ParseResult.TreeFormatter.formatErrorSync(decoded.left)
          return new InvalidRequest({ message: `the request would leave job ${undo.id} unreadable: ${problem}` })
        }
      }
      entry.prepare()
    }
    return undefined
  }

  private dispatch(command: Command, now: number, secrets: SecretSource): Either.Either<unknown, OsqueueError> {
    switch (command._tag) {
      case "Enqueue":
        return this.enqueue(command.jobs, now)
      case "Claim":
        return this.claim(command.workerId, command.types, command.max, command.leaseMs, now, secrets)
      case "Heartbeat":
        return this.heartbeat(command.token, command.progress, command.leaseMs, now)
      case "Complete":
        return Either.flatMap(this.leased(command.token), (job) => this.complete(job, command.result, now))
      case "Fail":
        return Either.map(this.leased(command.token), (job) => {
          this.emit("failed", job, now, command.error)
          return this.failAttempt(job, command.error, "failed", command.retryable ?? true, command.retryDelayMs, now)
        })
      case "Release":
        return Either.map(this.leased(command.token), (job) => {
          this.emit("released", job, now)
          return this.put({
            ...withoutLease(job),
            state: "queued",
            attempts: job.attempts - 1,
            runAt: now,
            history: this.endAttempt(job, "released", now)
          })
        })
      case "Cancel":
        return this.cancel(command.id, now)
      case "Retry":
        return this.retry(command.id, now)
      case "RetryDead": {
        let count = 0
        for (const id of [...this.byState.dead]) {
          const job = this.entries.get(id)!.job
          if (command.type !== undefined && job.type !== command.type) continue
          this.redrive(job, now)
          count++
        }
        return Either.right(count)
      }
      case "Promote":
        return this.promote(command.id, now)
      case "SetPriority":
        return this.setPriority(command.id, command.priority)
      case "Delete":
        return this.delete(command.id, now)
      case "Purge":
        return this.purge(command.state, command.type)
      case "Pause":
      case "Resume":
        return this.setPaused(command._tag === "Pause", command.type)
      case "UpsertSchedule":
        return this.upsertSchedule(command.schedule, Math.floor(now))
      case "RemoveSchedule": {
        const held = this.schedules.get(command.id)
        if (held === undefined) return Either.left(new ScheduleNotFound({ id: command.id }))
        this.removeSchedule(command.id)
        return Either.right(held.schedule)
      }
      case "SetLimit":
        return this.setLimit(command.limit)
      case "ClearLimit":
        return this.clearLimit(command.type)
    }
  }

  /**
   * Sets a schedule. Its next slot is the first after now, and after its last run: a replaced
   * schedule never runs a slot again, whatever the leader's clock says.
   */
  private upsertSchedule(spec: ScheduleSpec, now: number): Either.Either<Schedule, OsqueueError> {
    const problem = problemOf(spec, now)
    if (problem !== undefined) return Either.left(new InvalidRequest({ message: `schedule ${spec.id}: ${problem}` }))
    const prev = this.schedules.get(spec.id)?.schedule
    if (prev === undefined && this.schedules.size >= maxSchedules) {
      return Either.left(
        new InvalidRequest({ message: `a queue holds at most ${maxSchedules} schedules: remove some first` })
      )
    }
    const tooLarge = this.checkSize(`the payload of schedule ${spec.id}'s job`, spec.job.payload ?? null)
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
    const projected = this.bytes + this.pendingBytes + added
    if (added > 0 && projected > this.limits.maxStateBytes) {
      return Either.left(
        new QueueFull({ bytes: projected, limit: this.limits.maxStateBytes, retryAfterMs: this.fullFor(now) })
      )
    }
    this.pendingBytes += added
    this.putSchedule(schedule)
    return Either.right(schedule)
  }

  private promote(id: JobId, now: number): Either.Either<Job, OsqueueError> {
    const job = this.entries.get(id)?.job
    if (job === undefined) return Either.left(new JobNotFound({ id }))
    if (job.state !== "delayed" && job.state !== "failed-waiting-retry") {
      return Either.left(
        new InvalidTransition({
          jobId: id,
          state: job.state,
          action: "promote",
          hint: job.state === "queued"
            ? "it is claimable already"
            : "only delayed and retry-waiting jobs can be promoted"
        })
      )
    }
    const queued = this.put({ ...job, state: "queued", runAt: now })
    this.emit("promoted", queued, now)
    return Either.right(queued)
  }

  private setPriority(id: JobId, priority: number): Either.Either<Job, OsqueueError> {
    const job = this.entries.get(id)?.job
    if (job === undefined) return Either.left(new JobNotFound({ id }))
    if (job.state !== "queued" && job.state !== "delayed" && job.state !== "failed-waiting-retry") {
      return Either.left(
        new InvalidTransition({
          jobId: id,
          state: job.state,
          action: "change the priority of",
          hint: "only a job that has not started (queued, delayed, waiting to retry) has a priority to change"
        })
      )
    }
    return Either.right(job.priority === priority ? job : this.put({ ...job, priority }))
  }

  /** A running job is refused: its worker holds a lease, which a cancel revokes first. */
  private delete(id: JobId, now: number): Either.Either<Job, OsqueueError> {
    const job = this.entries.get(id)?.job
    if (job === undefined) return Either.left(new JobNotFound({ id }))
    if (job.state === "running") {
      return Either.left(
        new InvalidTransition({
          jobId: id,
          state: job.state,
          action: "delete",
          hint: "cancel it first (that revokes its worker's lease), then delete it"
        })
      )
    }
    this.remove(id)
    this.emit("deleted", job, now)
    return Either.right(job)
  }

  private purge(state: JobState, type: string | undefined): Either.Either<number, OsqueueError> {
    if (state === "running") {
      return Either.left(
        new InvalidRequest({ message: "running jobs cannot be purged: cancel them first (that revokes their leases)" })
      )
    }
    let count = 0
    for (const id of [...this.byState[state]]) {
      if (type !== undefined && this.entries.get(id)!.type !== type) continue
      this.remove(id)
      count++
    }
    return Either.right(count)
  }

  private enqueue(
    options: ReadonlyArray<EnqueueOptions>,
    now: number
  ): Either.Either<ReadonlyArray<Job>, OsqueueError> {
    const { maxPayloadBytes, maxStateBytes, defaultMaxAttempts } = this.limits
    let added = 0
    for (const option of options) {
      if (option.idempotencyKey !== undefined && this.byKey.has(option.idempotencyKey)) continue
      const json = JSON.stringify(option.payload ?? null)
      if (json === undefined) return Either.left(new InvalidRequest({ message: "the payload is not JSON" }))
      const bytes = Buffer.byteLength(json)
      if (bytes > maxPayloadBytes) {
        return Either.left(
          new PayloadTooLarge({ what: `the payload of a ${option.type} job`, bytes, limit: maxPayloadBytes })
        )
      }
      added += bytes + jobOverheadBytes
    }
    // Finished jobs are shed first (oldest first; `shed` takes what they took off `pendingBytes`).
    // If that is not enough, the refusal's rollback puts them back.
    const over = this.bytes + this.pendingBytes + added - maxStateBytes
    if (over > 0) this.shed(over)
    const projected = this.bytes + this.pendingBytes + added
    if (projected > maxStateBytes) {
      return Either.left(new QueueFull({ bytes: projected, limit: maxStateBytes, retryAfterMs: this.fullFor(now) }))
    }
    this.pendingBytes += added

    let seq = this.meta.nextJobSeq
    const jobs = options.map((option) => {
      const existing = option.idempotencyKey === undefined ? undefined : this.byKey.get(option.idempotencyKey)
      if (existing !== undefined) return this.entries.get(existing)!.job
      const runAt = option.runAt ?? later(now, option.delayMs ?? 0)
      const job: Job = {
        id: `job-${seq}` as JobId,
        type: option.type,
        payload: option.payload ?? null,
        state: runAt > now ? "delayed" : "queued",
        priority: option.priority ?? 0,
        attempts: 0,
        maxAttempts: option.maxAttempts ?? defaultMaxAttempts,
        claims: 0,
        backoff: option.backoff ?? defaultBackoff,
        seq,
        createdAt: now,
        runAt,
        ...(option.idempotencyKey === undefined ? {} : { idempotencyKey: option.idempotencyKey }),
        ...(option.traceparent === undefined ? {} : { traceparent: option.traceparent }),
        ...(option.timeoutMs === undefined ? {} : { timeoutMs: option.timeoutMs }),
        history: []
      }
      seq++
      this.emit("enqueued", this.put(job), now)
      return job
    })
    const enqueued = seq - this.meta.nextJobSeq
    if (enqueued > 0) {
      const totals = { ...this.meta.totals, enqueued: this.meta.totals.enqueued + enqueued }
      this.setMeta({ ...this.meta, nextJobSeq: seq, totals })
    }
    return Either.right(jobs)
  }

  private claim(
    workerId: string,
    types: ReadonlyArray<string> | undefined,
    max: number,
    leaseMs: number | undefined,
    now: number,
    secrets: SecretSource
  ): Either.Either<ReadonlyArray<ClaimResult>, OsqueueError> {
    const ttlMs = leaseMs ?? this.limits.defaultLeaseMs
    if (ttlMs <= 0 || ttlMs > this.limits.maxLeaseMs) {
      return Either.left(new InvalidRequest({ message: `leaseMs must be between 1 and ${this.limits.maxLeaseMs}` }))
    }
    const { all, types: pausedTypes } = this.meta.paused
    if (all) return Either.right([])
    // How many more each limited scope may start now (docs/architecture.md, "Limits on claims").
    let queueRoom = this.room(undefined, now)
    const heaps: Array<{ readonly heap: Heap<Item>; readonly type: string; room: number }> = []
    // Each type once: a type named twice must not get its limit's room twice.
    for (const type of types === undefined ? this.ready.keys() : new Set(types)) {
      const heap = this.ready.get(type)
      if (heap !== undefined && !pausedTypes.includes(type)) heaps.push({ heap, type, room: this.room(type, now) })
    }
    const claimed: Array<ClaimResult> = []
    const started = new Map<Scope, number>()
    while (claimed.length < max && queueRoom > 0) {
      let best: (typeof heaps)[number] | undefined
      for (const candidate of heaps) {
        if (candidate.room <= 0) continue
        const top = this.validTop(candidate.heap)
        if (top !== undefined && (best === undefined || itemLess(top, best.heap.peek()!))) best = candidate
      }
      if (best === undefined) break
      best.room--
      queueRoom--
      started.set(best.type, (started.get(best.type) ?? 0) + 1)
      const job = this.entries.get(best.heap.pop()!.id)!.job
      const attempt = job.attempts + 1
      const lease: HeldLease = {
        workerId,
        epoch: this.meta.epoch,
        expiresAt: later(now, ttlMs),
        ttlMs,
        secret: secrets()
      }
      const running = this.put({
        ...job,
        state: "running",
        attempts: attempt,
        claims: job.claims + 1,
        startedAt: now,
        lease,
        history: this.appendHistory(job.history, { attempt, workerId, startedAt: now, outcome: "running" })
      })
      this.emit("claimed", running, now)
      claimed.push({ job: running, token: tokenOf(running) })
    }
    if (claimed.length > 0) started.set(undefined, claimed.length)
    for (const [scope, count] of started) this.recordStarts(scope, count, now)
    return Either.right(claimed)
  }

  // ---------------------------------------------------------------- limits on claims

  private limitOf(scope: Scope): ClaimLimit | undefined {
    const limits = this.meta.limits
    if (limits.length === 0) return undefined
    if (this.limitsByScope?.of !== limits) {
      this.limitsByScope = { of: limits, byScope: new Map(limits.map((limit) => [limit.type, limit])) }
    }
    return this.limitsByScope.byScope.get(scope)
  }

  private running(scope: Scope): number {
    return scope === undefined ? this.byState.running.size : this.runningByType.get(scope) ?? 0
  }

  /** Starts of the scope within the window of `windowMs` ending at `now` (a start counts until `start + windowMs`). */
  private startsWithin(scope: Scope, windowMs: number, now: number): number {
    const held = this.starts.get(scope) ?? []
    return held.length - firstAfter(held, now - windowMs)
  }

  /** How many more claims the scope's limit lets start now: `Infinity` without one. */
  private room(scope: Scope, now: number): number {
    const limit = this.limitOf(scope)
    if (limit === undefined) return Infinity
    let room = Infinity
    if (limit.concurrency !== undefined) room = limit.concurrency - this.running(scope)
    if (limit.rate !== undefined) {
      room = Math.min(room, limit.rate.max - this.startsWithin(scope, limit.rate.windowMs, now))
    }
    return room
  }

  /**
   * Remembers `count` claims started at `now` in a rate-limited scope: the starts that left the
   * window are forgotten, and at most the limit's `max` newest kept (no more can count). A start
   * is never remembered before the scope's newest one: under a new leader whose clock is behind,
   * the times stay in order and the window only lasts longer.
   */
  private recordStarts(scope: Scope, count: number, now: number): void {
    const rate = this.limitOf(scope)?.rate
    if (rate === undefined) return
    const held = this.starts.get(scope) ?? []
    const at = Math.max(now, held[held.length - 1] ?? now)
    const kept = held.slice(firstAfter(held, now - rate.windowMs))
    for (let i = 0; i < count; i++) kept.push(at)
    this.setStarts(scope, kept.length > rate.max ? kept.slice(kept.length - rate.max) : kept)
    this.startsSteps.push({ scope, added: count })
  }

  /** The scope forgets its starts (its rate limit was cleared). */
  private dropStarts(scope: Scope): void {
    if (!this.starts.has(scope)) return
    this.setStarts(scope, [])
    this.startsSteps.push({ scope, dropped: true })
  }

  private setStarts(scope: Scope, next: ReadonlyArray<number>): void {
    this.journal?.push({ starts: scope, prev: this.starts.get(scope) })
    this.installStarts(scope, next)
  }

  private installStarts(scope: Scope, next: ReadonlyArray<number> | undefined): void {
    if (next === undefined || next.length === 0) this.starts.delete(scope)
    else this.starts.set(scope, next)
  }

  /** A limit's fields that are out of bounds, named; undefined when it is a limit to keep. */
  private limitProblem(limit: ClaimLimit): string | undefined {
    const { concurrency, rate } = limit
    if (concurrency === undefined && rate === undefined) {
      return "a limit needs a concurrency, a rate or both: to remove one, clear it"
    }
    if (
      concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= maxConcurrency)
    ) {
      return `concurrency must be a whole number from 1 to ${maxConcurrency}`
    }
    if (rate !== undefined && !(Number.isInteger(rate.max) && rate.max >= 1 && rate.max <= maxRateStarts)) {
      return `a rate's max must be a whole number from 1 to ${maxRateStarts}`
    }
    if (
      rate !== undefined && !(Number.isInteger(rate.windowMs) && rate.windowMs >= 1 && rate.windowMs <= maxRateWindowMs)
    ) {
      return `a rate's windowMs must be whole milliseconds from 1 to ${maxRateWindowMs}`
    }
    return undefined
  }

  /** The scope's limit becomes exactly `limit`; a scope whose rate goes forgets its starts. */
  private setLimit(limit: ClaimLimit): Either.Either<ReadonlyArray<ClaimLimit>, OsqueueError> {
    const problem = this.limitProblem(limit)
    if (problem !== undefined) return Either.left(new InvalidRequest({ message: problem }))
    const { limits } = this.meta
    const at = limits.findIndex((other) => other.type === limit.type)
    if (
      at < 0 && limit.type !== undefined && limits.filter((other) => other.type !== undefined).length >= maxLimitedTypes
    ) {
      return Either.left(
        new InvalidRequest({
          message:
            `at most ${maxLimitedTypes} job types may have limits of their own; clear some, or limit the whole queue`
        })
      )
    }
    // Only the fields a limit has, in one order: the state, the log and answers hold the same object.
    const stored: ClaimLimit = {
      ...(limit.type === undefined ? {} : { type: limit.type }),
      ...(limit.concurrency === undefined ? {} : { concurrency: limit.concurrency }),
      ...(limit.rate === undefined ? {} : { rate: { max: limit.rate.max, windowMs: limit.rate.windowMs } })
    }
    const next = at < 0 ? [...limits, stored] : limits.map((other, i) => (i === at ? stored : other))
    this.setMeta({ ...this.meta, limits: next })
    if (stored.rate === undefined) this.dropStarts(stored.type)
    return Either.right(next)
  }

  private clearLimit(type: string | undefined): Either.Either<ReadonlyArray<ClaimLimit>, OsqueueError> {
    const { limits } = this.meta
    if (!limits.some((limit) => limit.type === type)) return Either.right(limits)
    const next = limits.filter((limit) => limit.type !== type)
    this.setMeta({ ...this.meta, limits: next })
    this.dropStarts(type)
    return Either.right(next)
  }

  /**
   * Each limit, with its scope's running jobs and (with a rate) its starts in the window ending
   * at `now`; without `now`, the starts remembered (those in the window as of the scope's latest
   * claim), so that stats stay a function of the state alone.
   */
  limitStatus(now?: number): ReadonlyArray<LimitStatus> {
    return this.meta.limits.map((limit) => ({
      ...limit,
      running: this.running(limit.type),
      ...(limit.rate === undefined ? {} : {
        startsInWindow: now === undefined
          ? this.starts.get(limit.type)?.length ?? 0
          : this.startsWithin(limit.type, limit.rate.windowMs, now)
      })
    }))
  }

  private heartbeat(
    token: LeaseToken,
    progress: unknown,
    leaseMs: number | undefined,
    now: number
  ): Either.Either<HeartbeatResult, OsqueueError> {
    return Either.flatMap(this.leased(token), (job) => {
      const lease = job.lease!
      const ttlMs = leaseMs ?? lease.ttlMs
      if (ttlMs <= 0 || ttlMs > this.limits.maxLeaseMs) {
        return Either.left(new InvalidRequest({ message: `leaseMs must be between 1 and ${this.limits.maxLeaseMs}` }))
      }
      const tooLarge = progress === undefined ? undefined : this.checkSize("the progress", progress)
      if (tooLarge !== undefined) return Either.left(tooLarge)
      const expiresAt = later(now, ttlMs)
      this.put({ ...job, lease: { ...lease, expiresAt, ttlMs }, ...(progress === undefined ? {} : { progress }) })
      return Either.right({ jobId: job.id, expiresAt })
    })
  }

  private complete(job: Job, result: unknown, now: number): Either.Either<Job, OsqueueError> {
    const tooLarge = result === undefined ? undefined : this.checkSize("the result", result)
    if (tooLarge !== undefined) return Either.left(tooLarge)
    const totals = { ...this.meta.totals, completed: this.meta.totals.completed + 1 }
    this.setMeta({ ...this.meta, totals })
    const done = this.put({
      ...withoutLease(job),
      state: "completed",
      finishedAt: now,
      ...(result === undefined ? {} : { result }),
      history: this.endAttempt(job, "completed", now)
    })
    this.emit("completed", done, now)
    return Either.right(done)
  }

  private cancel(id: JobId, now: number): Either.Either<Job, OsqueueError> {
    const job = this.entries.get(id)?.job
    if (job === undefined) return Either.left(new JobNotFound({ id }))
    if (finalStates.has(job.state)) {
      return Either.left(new InvalidTransition({ jobId: id, state: job.state, action: "cancel" }))
    }
    const cancelled = this.put({
      ...withoutLease(job),
      state: "cancelled",
      finishedAt: now,
      history: job.state === "running" ? this.endAttempt(job, "cancelled", now) : job.history
    })
    this.emit("cancelled", cancelled, now)
    return Either.right(cancelled)
  }

  private retry(id: JobId, now: number): Either.Either<Job, OsqueueError> {
    const job = this.entries.get(id)?.job
    if (job === undefined) return Either.left(new JobNotFound({ id }))
    if (job.state !== "dead" && job.state !== "cancelled" && job.state !== "failed-waiting-retry") {
      return Either.left(new InvalidTransition({ jobId: id, state: job.state, action: "retry" }))
    }
    return Either.right(this.redrive(job, now))
  }

  /** Back to the queue now. A finished job gets a fresh set of attempts; its place (seq) is kept. */
  private redrive(job: Job, now: number): Job {
    const { finishedAt: _, ...rest } = job
    const queued = this.put({
      ...rest,
      state: "queued",
      runAt: now,
      attempts: job.state === "failed-waiting-retry" ? job.attempts : 0
    })
    this.emit("redriven", queued, now)
    return queued
  }

  /** A failed or expired attempt: retry after the backoff, or dead-letter when none are left. */
  private failAttempt(
    job: Job,
    error: string,
    outcome: "failed" | "expired",
    retryable: boolean,
    retryDelayMs: number | undefined,
    now: number
  ): Job {
    const history = this.endAttempt(job, outcome, now, error)
    const base = { ...withoutLease(job), lastError: error, history }
    if (!retryable || job.attempts >= job.maxAttempts) {
      const totals = { ...this.meta.totals, dead: this.meta.totals.dead + 1 }
      this.setMeta({ ...this.meta, totals })
      const dead = this.put({ ...base, state: "dead", finishedAt: now })
      this.emit("dead", dead, now, error)
      return dead
    }
    const delay = retryDelayMs ?? backoffDelay(job.backoff, job.attempts, `${job.id}/${job.attempts}`)
    const waiting = this.put({
      ...base,
      state: delay > 0 ? "failed-waiting-retry" : "queued",
      runAt: later(now, delay)
    })
    this.emit("retrying", waiting, now, error)
    return waiting
  }

  private setPaused(pause: boolean, type: string | undefined): Either.Either<Paused, OsqueueError> {
    const { all, types } = this.meta.paused
    if (pause && type !== undefined && !types.includes(type) && types.length >= maxPausedTypes) {
      return Either.left(
        new InvalidRequest({
          message: `at most ${maxPausedTypes} types may be paused one by one; resume some, or pause every type`
        })
      )
    }
    const paused: Paused = type === undefined
      ? pause
        ? { all: true, types }
        : { all: false, types: [] }
      : { all, types: pause ? (types.includes(type) ? types : [...types, type]) : types.filter((t) => t !== type) }
    this.setMeta({ ...this.meta, paused })
    return Either.right(paused)
  }

  // ---------------------------------------------------------------- reads

  get(id: string): Job | undefined {
    return this.entries.get(id as JobId)?.job
  }

  list(query: ListQuery): JobPage {
    const limit = query.limit ?? 100
    const newestFirst = query.order === "desc"
    // `after` is the cursor in the chosen order: past it is a greater seq, or newest first a smaller one.
    const after = query.after ?? (newestFirst ? Number.MAX_SAFE_INTEGER : 0)
    const ahead = newestFirst ? (a: number, b: number) => a > b : (a: number, b: number) => a < b
    const matches = query.search === undefined ? undefined : searcher(query.search)
    const ids: Iterable<JobId> = query.state === undefined ? this.entries.keys() : this.byState[query.state]
    // The first `limit` seqs past `after`, kept in a heap whose top is the last of them:
    // O(n log limit), no full sort, and only the page's jobs (and a search's candidates) decoded.
    const page = new Heap<Entry>((a, b) => ahead(b.seq, a.seq))
    let more = false
    for (const id of ids) {
      const entry = this.entries.get(id)!
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

  /** Jobs of each type in each state: one pass over every job (the dashboard's per-type table, every few seconds). */
  countsByType(): Map<string, Record<JobState, number>> {
    const counts = new Map<string, Record<JobState, number>>()
    for (const entry of this.entries.values()) {
      let row = counts.get(entry.type)
      if (row === undefined) {
        counts.set(entry.type, row = Object.fromEntries(jobStates.map((s) => [s, 0])) as Record<JobState, number>)
      }
      row[entry.state]++
    }
    return counts
  }

  stats(): Stats {
    const counts = Object.fromEntries(jobStates.map((s) => [s, this.byState[s].size])) as Stats["counts"]
    return {
      counts,
      queuedByType: Object.fromEntries(this.queuedByType),
      paused: this.meta.paused,
      limits: this.limitStatus(),
      epoch: this.meta.epoch,
      seq: this.seq,
      stateBytes: this.bytes,
      completedTotal: this.meta.totals.completed,
      deadTotal: this.meta.totals.dead,
      enqueuedTotal: this.meta.totals.enqueued
    }
  }

  /** True when a claim could return a job at `now` (not paused, something queued, within the limits on claims). */
  hasClaimable(types: ReadonlyArray<string> | undefined, now: number): boolean {
    if (this.meta.paused.all || this.room(undefined, now) <= 0) return false
    for (const type of types ?? this.queuedByType.keys()) {
      if (
        (this.queuedByType.get(type) ?? 0) > 0 && !this.meta.paused.types.includes(type) && this.room(type, now) > 0
      ) return true
    }
    return false
  }

  /**
   * The workers holding leases: how many running jobs each holds, and its latest claim or
   * heartbeat (the latest start of one of its leases; a takeover's grace restarts them too).
   */
  workers(): ReadonlyArray<{ readonly id: string; readonly jobs: number; readonly lastSeenAt: number }> {
    const byWorker = new Map<string, { id: string; jobs: number; lastSeenAt: number }>()
    for (const id of this.byState.running) {
      const lease = this.entries.get(id)!.job.lease!
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

  /** Every schedule, by id. */
  listSchedules(): ReadonlyArray<Schedule> {
    return [...this.schedules.values()].map((held) => held.schedule).sort((
      a,
      b
    ) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /**
   * When, after `now`, the next delayed or retrying job becomes claimable, a lease expires, a
   * schedule runs, or a rate limit that holds queued jobs back lets one more start (its window
   * lets go of a start): a long-poll claim waits until then, as no commit may come to wake it.
   */
  nextWakeup(now: number): number | undefined {
    let wake: number | undefined
    for (const at of [this.scheduled.peek()?.key, this.leases.peek()?.key, this.nextScheduleRun()]) {
      if (at !== undefined && (wake === undefined || at < wake)) wake = at
    }
    for (const limit of this.meta.limits) {
      const queued = limit.type === undefined ? this.byState.queued.size : this.queuedByType.get(limit.type) ?? 0
      if (limit.rate === undefined || queued === 0) continue
      const { max, windowMs } = limit.rate
      const held = this.starts.get(limit.type) ?? []
      if (this.startsWithin(limit.type, windowMs, now) < max) continue
      // The window is full: it lets one more start once its `max`-th newest start leaves it.
      const frees = held[held.length - max]! + windowMs
      if (wake === undefined || frees < wake) wake = frees
    }
    return wake
  }

  /** The next slot of any schedule (stale heap items dropped on the way). */
  private nextScheduleRun(): number | undefined {
    for (let item = this.dueSchedules.peek(); item !== undefined; item = this.dueSchedules.peek()) {
      if (this.schedules.get(item.id)?.stamp === item.stamp) return item.key
      this.dueSchedules.pop()
    }
    return undefined
  }

  // ---------------------------------------------------------------- internals

  /** The job holding this lease token, or why it does not. */
  private leased(token: LeaseToken): Either.Either<Job, OsqueueError> {
    const parsed = parseLeaseToken(token)
    if (parsed === undefined) {
      return Either.left(
        new InvalidRequest({ message: "the lease token is not one a claim returned (jobId/claims/epoch/secret)" })
      )
    }
    const job = this.entries.get(parsed.jobId)?.job
    if (job === undefined) return Either.left(new JobNotFound({ id: parsed.jobId }))
    if (job.state !== "running") {
      return Either.left(new LeaseLost({ jobId: job.id, reason: `the job is ${job.state}` }))
    }
    if (job.claims !== parsed.claims || job.lease?.epoch !== parsed.epoch) {
      return Either.left(
        new LeaseLost({ jobId: job.id, reason: `the job was claimed again since (attempt ${job.attempts} holds it)` })
      )
    }
    // A lease granted before leases had secrets has none: its three-part token still holds it.
    const held = leaseSecretOf(job)
    const presented = parsed.secret
    if (held === undefined ? presented !== undefined : presented === undefined || !sameSecret(held, presented)) {
      return Either.left(new LeaseLost({ jobId: job.id, reason: "the token's secret is not the lease's" }))
    }
    return Either.right(job)
  }

  private checkSize(what: string, value: unknown): PayloadTooLarge | InvalidRequest | undefined {
    const json = JSON.stringify(value)
    if (json === undefined) return new InvalidRequest({ message: `${what} is not JSON` })
    const bytes = Buffer.byteLength(json)
    const limit = this.limits.maxPayloadBytes
    return bytes > limit ? new PayloadTooLarge({ what, bytes, limit }) : undefined
  }

  private appendHistory(history: Job["history"], attempt: Job["history"][number]): Job["history"] {
    const next = [...history, attempt]
    return next.length > this.limits.maxHistory ? next.slice(next.length - this.limits.maxHistory) : next
  }

  private endAttempt(
    job: Job,
    outcome: Job["history"][number]["outcome"],
    now: number,
    error?: string
  ): Job["history"] {
    const last = job.history[job.history.length - 1]
    if (last === undefined || last.attempt !== job.attempts || last.outcome !== "running") return job.history
    const ended = { ...last, endedAt: now, outcome, ...(error === undefined ? {} : { error }) }
    return [...job.history.slice(0, -1), ended]
  }

  private emit(kind: JobEventKind, job: Job, at: number, error?: string): void {
    this.events.push({
      kind,
      jobId: job.id,
      type: job.type,
      at,
      attempt: job.attempts,
      ...(job.lease === undefined ? {} : { workerId: job.lease.workerId }),
      ...(error === undefined ? {} : { error })
    })
  }

  /** The job behind a heap item, if the item is still current (and the job in `state`). */
  private live(item: Item, state?: JobState): Job | undefined {
    const entry = this.entries.get(item.id)
    if (entry === undefined || entry.stamp !== item.stamp) return undefined
    return state === undefined || entry.state === state ? entry.job : undefined
  }

  private validTop(heap: Heap<Item>): Item | undefined {
    for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
      if (this.live(top, "queued") !== undefined) return top
      heap.pop()
    }
    return undefined
  }

  private setMeta(meta: Meta): void {
    this.journal?.push({ meta: this.meta })
    this.meta = meta
  }

  private putSchedule(schedule: Schedule): void {
    this.journal?.push({ schedule: schedule.id, prev: this.schedules.get(schedule.id)?.schedule })
    this.installSchedule(schedule.id, schedule)
  }

  private removeSchedule(id: string): void {
    this.journal?.push({ schedule: id, prev: this.schedules.get(id)?.schedule })
    this.installSchedule(id, undefined)
  }

  /** Replaces a schedule and queues its next slot (an older item of it goes stale). */
  private installSchedule(id: string, schedule: Schedule | undefined): void {
    if (schedule === undefined) {
      this.schedules.delete(id)
      return
    }
    const stamp = ++this.stamps
    this.schedules.set(id, { schedule, stamp })
    if (schedule.nextAt !== undefined) this.dueSchedules.push({ key: schedule.nextAt, id, stamp })
  }

  private put(job: Job, bytes?: Uint8Array): Job {
    const prev = this.entries.get(job.id)
    this.journal?.push({ id: job.id, prev })
    const entry = Entry.of(job, ++this.stamps, bytes)
    this.install(job.id, prev, entry)
    // Read from stored bytes: a queued job is kept as them alone, as after an encode.
    if (bytes !== undefined) entry.encoded()
    return job
  }

  private remove(id: JobId): void {
    const prev = this.entries.get(id)
    this.journal?.push({ id, prev })
    this.install(id, prev, undefined)
  }

  /** Replaces a job's entry and keeps every index in step. */
  private install(id: JobId, prev: Entry | undefined, next: Entry | undefined): void {
    if (prev !== undefined) {
      this.byState[prev.state].delete(id)
      if (prev.state === "queued") countDown(this.queuedByType, prev.type)
      if (prev.state === "running") countDown(this.runningByType, prev.type)
      if (prev.idempotencyKey !== undefined && this.byKey.get(prev.idempotencyKey) === id) {
        this.byKey.delete(prev.idempotencyKey)
      }
    }
    if (next === undefined) {
      this.entries.delete(id)
      return
    }
    this.entries.set(id, next)
    const job = next.job
    this.byState[job.state].add(id)
    if (job.idempotencyKey !== undefined) this.byKey.set(job.idempotencyKey, id)
    const stamp = next.stamp
    switch (job.state) {
      case "queued": {
        this.queuedByType.set(job.type, (this.queuedByType.get(job.type) ?? 0) + 1)
        let heap = this.ready.get(job.type)
        if (heap === undefined) this.ready.set(job.type, heap = newHeap())
        heap.push({ key: job.priority, seq: job.seq, id, stamp })
        break
      }
      case "delayed":
      case "failed-waiting-retry":
        this.scheduled.push({ key: job.runAt, seq: job.seq, id, stamp })
        break
      case "running":
        this.runningByType.set(job.type, (this.runningByType.get(job.type) ?? 0) + 1)
        this.leases.push({ key: job.lease!.expiresAt, seq: job.seq, id, stamp })
        break
      case "completed":
      case "cancelled":
        this.finished.push({ key: job.finishedAt ?? 0, seq: job.seq, id, stamp })
        break
      case "dead":
        this.dead.push({ key: job.finishedAt ?? 0, seq: job.seq, id, stamp })
        break
    }
  }
}

/** The fields a log entry's patch may set or unset: `Job`'s own. */
const jobFields: ReadonlySet<string> = new Set(Object.keys(Job.fields))

/**
 * A changed job as a patch's JSON: the fields whose value is not the very one the job had before
 * the batch (jobs are changed by copying, so an untouched payload or history is the same object),
 * and the fields it lost. Undefined when the job's object from before is not at hand.
 */
const patchOf = (prev: Entry, next: Entry): string | undefined => {
  const before = prev.decodedIfAny as Record<string, unknown> | undefined
  const after = next.decodedIfAny as Record<string, unknown> | undefined
  if (before === undefined || after === undefined) return undefined
  const set: Record<string, unknown> = {}
  const unset: Array<string> = []
  for (const key in after) {
    const value = after[key]
    if (value === undefined) {
      if (before[key] !== undefined) unset.push(key)
    } else if (value !== before[key]) set[key] = value
  }
  for (const key in before) if (before[key] !== undefined && !(key in after)) unset.push(key)
  return JSON.stringify(unset.length > 0 ? { id: after.id, set, unset } : { id: after.id, set })
}

/** `job` with a patch's changes, checked as any stored job is; undefined when that is no valid job. */
const patched = (job: Job, patch: JobPatch): Job | undefined => {
  const fields: Record<string, unknown> = { ...job }
  for (const key in patch.set) {
    if (!jobFields.has(key)) return undefined
    fields[key] = patch.set[key]
  }
  for (const key of patch.unset ?? []) {
    if (!jobFields.has(key)) return undefined
    delete fields[key]
  }
  // In `Job`'s field order, as a job read from stored bytes is.
  const next = fromStoredJob(fields)
  return next.id === job.id && isJob(next) ? next : undefined
}

/** One less of `key` in a count map; a count that reaches 0 leaves the map. */
const countDown = (counts: Map<string, number>, key: string): void => {
  const left = (counts.get(key) ?? 1) - 1
  if (left === 0) counts.delete(key)
  else counts.set(key, left)
}

/** The index of the first time in `times` (ascending) that is after `instant`. */
const firstAfter = (times: ReadonlyArray<number>, instant: number): number => {
  let low = 0
  let high = times.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (times[mid]! > instant) high = mid
    else low = mid + 1
  }
  return low
}

const withoutLease = (job: Job): Job => {
  if (job.lease === undefined) return job
  const { lease: _, ...rest } = job
  return rest
}
