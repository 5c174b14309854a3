/**
 * The queue's state machine: pure and deterministic given (state, command, now, lease secrets),
 * mutated in place with an undo journal so that a batch whose write fails can be rolled back
 * without copying the state. Every command is O(log n) (claims add O(types)); indexes are heaps
 * with lazy deletion. Each job's JSON is cached, so a commit encodes only the jobs that changed.
 *
 * This module is the public face; its parts live in internal/: the job cache (entry), the
 * indexes (jobIndex), the data and its journaled changes (stateCore), the undo journal and its
 * frames (journal), the checkpoint and the log entry (checkpoint, logEntry), the rules per
 * command (commands, rules, leases, time), schedules, limits on claims (claimLimits) and reads.
 */
import type {
  ClaimLimit,
  Job,
  JobEvent,
  JobId,
  JobPage,
  JobState,
  Leader,
  LimitStatus,
  ListQuery,
  OsqueueError,
  Paused,
  QueueFile,
  Schedule,
  Stats
} from "@osqueue/types"
import { defaultLeaseMs, maxLeaseMs } from "@osqueue/types"
import type * as Either from "effect/Either"
import type { Command, ResultOf } from "./Command.js"
import * as Checkpoint from "./internal/checkpoint.js"
import * as ClaimLimits from "./internal/claimLimits.js"
import * as Commands from "./internal/commands.js"
import * as Journal from "./internal/journal.js"
import type { SecretSource } from "./internal/leases.js"
import * as LogEntries from "./internal/logEntry.js"
import * as Reads from "./internal/reads.js"
import * as Rules from "./internal/rules.js"
import * as Schedules from "./internal/schedules.js"
import { StateCore } from "./internal/stateCore.js"
import * as Time from "./internal/time.js"
import type { EntryKind, LogEntry } from "./LogEntry.js"
import type { KeptJobs } from "./StoredJobs.js"

export type { Encoded } from "./internal/checkpoint.js"
export type { Savepoint } from "./internal/journal.js"
export { type SecretSource, tokenOf } from "./internal/leases.js"
export { maxPageBytes } from "./internal/reads.js"
export { backoffDelay } from "./internal/rules.js"

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
  defaultLeaseMs,
  maxLeaseMs,
  maxHistory: 10,
  scheduleGraceMs: 10_000
}

export class QueueState {
  private constructor(private readonly core: StateCore) {}

  static empty(limits: Limits = defaultLimits): QueueState {
    return new QueueState(
      new StateCore(
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
    )
  }

  /**
   * `kept`: the jobs as the bytes the file held and the fields the indexes need (`Cas.Decoded`),
   * when the file could be read so: no re-encode of every job for the next checkpoint.
   */
  static fromFile(file: QueueFile, bytes: number, limits: Limits = defaultLimits, kept?: KeptJobs): QueueState {
    return new QueueState(Checkpoint.load(file, bytes, limits, kept))
  }

  /** Of the last durable commit. */
  get seq(): number {
    return this.core.seq
  }

  get commitId(): string {
    return this.core.commitId
  }

  get bytes(): number {
    return this.core.bytes
  }

  get limits(): Limits {
    return this.core.limits
  }

  get epoch(): number {
    return this.core.meta.epoch
  }

  get leader(): Leader | null {
    return this.core.meta.leader
  }

  get paused(): Paused {
    return this.core.meta.paused
  }

  get claimLimits(): ReadonlyArray<ClaimLimit> {
    return this.core.meta.limits
  }

  get size(): number {
    return this.core.jobs.entries.size
  }

  // ---------------------------------------------------------------- batches and rollback

  /**
   * Starts recording undo information for a batch: a new frame on top of the sealed ones still
   * in flight (docs/architecture.md, "Appends in flight"). A frame still open is dropped (its
   * changes stay, unrecorded), as a new batch always did.
   */
  begin(): void {
    Journal.begin(this.core)
  }

  savepoint(): Journal.Savepoint {
    return Journal.savepoint(this.core)
  }

  /** Undoes the open batch's changes since the savepoint (since its start when omitted). */
  rollback(to?: Journal.Savepoint): void {
    Journal.rollback(this.core, to)
  }

  /** Undoes the open batch and drops it (it was never sent). */
  abandon(): void {
    Journal.abandon(this.core)
  }

  /** Undoes every batch not yet durable, the newest first: a failed append voids what was sent behind it. */
  rollbackAll(): void {
    Journal.rollbackAll(this.core)
  }

  /**
   * Ends the open batch once its entry is encoded: what it changed is fixed now, though a
   * batch sent behind it may change the same jobs before it is durable. `position` is the last
   * one it accounts for.
   */
  seal(position: number): void {
    Journal.seal(this.core, position)
  }

  /** The counts as they will stand once the batches in flight are durable: the newest sealed frame's. */
  sealedStats(): Stats | undefined {
    return Journal.sealedStats(this.core)
  }

  /**
   * Ends the oldest batch after its write is durable; returns what happened in it. `bytes` is
   * the size of the whole state when the write was one (a checkpoint); a log entry leaves it
   * out, and the size moves by what the batch's jobs gained or lost.
   */
  committed(seq: number, commitId: string, bytes?: number): ReadonlyArray<JobEvent> {
    return Journal.committed(this.core, seq, commitId, bytes)
  }

  /**
   * The log entry of the open batch (docs/architecture.md, "The log"), as the parts a store
   * writes in order: the header fields when any changed, each job the batch created as it stands
   * now (its cached bytes, the ones a checkpoint writes), each job it changed as the fields that
   * changed (`patchInto`: a claim or a completion does not write the payload again), and the ids of
   * touched jobs now gone. Read from the undo journal, so it costs the batch, not the queue. Call
   * before `seal`; `skip` is the positions after it that readers pass over.
   */
  entryParts(kind: EntryKind, position: number, commitId: string, skip = 0): Checkpoint.Encoded {
    return LogEntries.entryParts(this.core, kind, position, commitId, skip)
  }

  /**
   * Applies a log entry someone else wrote, as one durable batch (a follower or a takeover
   * replaying the log). Returns what is wrong when the entry does not apply to this state (a
   * patch of a job it does not hold, or one that leaves no valid job): the batch is undone and
   * the entry is corrupt.
   */
  replay(entry: LogEntry): string | undefined {
    return LogEntries.replay(this.core, entry)
  }

  // ---------------------------------------------------------------- encoding

  /** queue.json as of position `seq`, as UTF-8. Only jobs changed since their last encode are stringified. */
  encode(seq: number, commitId: string): Uint8Array {
    const { parts, length } = Checkpoint.partsInto(this.core, [], seq, commitId)
    return Buffer.concat(parts, length)
  }

  /**
   * `encode` as the parts a store writes in order: the header, each job's cached bytes, the
   * closing bracket — a checkpoint never builds one string or buffer of the whole queue. Jobs'
   * bytes are immutable (a changed job gets new ones), so the parts stay a consistent snapshot
   * while later commits change the state: a checkpoint is written from them in the background.
   */
  encodeParts(seq: number, commitId: string): Checkpoint.Encoded {
    return Checkpoint.partsInto(this.core, [], seq, commitId)
  }

  /** `encode` as text, for tests. */
  toJson(seq: number, commitId: string): string {
    const { length, parts } = Checkpoint.partsInto(this.core, [], seq, commitId)
    return Buffer.concat(parts, length).toString("utf8")
  }

  /** `toJson` without the lease secrets: the operator's view of the state (`/state`, `State`). */
  publicJson(seq: number, commitId: string): string {
    const { length, parts } = Checkpoint.partsInto(this.core, [], seq, commitId, false)
    return Buffer.concat(parts, length).toString("utf8")
  }

  // ---------------------------------------------------------------- leadership

  /** A new leader takes the queue: a new epoch, and every running lease gets a full TTL of grace. */
  takeover(leader: Leader, now: number): void {
    Rules.takeover(this.core, leader, now)
  }

  /** The leader steps down cleanly: followers may take over without waiting for the TTL. */
  release(): void {
    Rules.releaseLeadership(this.core)
  }

  // ---------------------------------------------------------------- time and commands

  /** Lease expiry, delayed and retry promotion, and retention, as of `now`. Runs first in every batch. */
  tick(now: number): void {
    Time.tick(this.core, now)
  }

  /**
   * Applies one command under its own savepoint, and encodes every job it put. A command that is
   * refused, throws (a value `JSON.stringify` cannot write, nested too deep for the stack) or
   * would store a job that `Job` refuses is undone alone and answered with its error: nothing
   * one command carries can fail the commit of the others (docs/architecture.md, "Hostile
   * input"). `secrets` gives each lease a claim grants its secret.
   */
  apply<C extends Command>(command: C, now: number, secrets: SecretSource): Either.Either<ResultOf<C>, OsqueueError> {
    return Commands.apply(this.core, command, now, secrets)
  }

  // ---------------------------------------------------------------- reads

  /**
   * Each limit, with its scope's running jobs and (with a rate) its starts in the window ending
   * at `now`; without `now`, the starts remembered (those in the window as of the scope's latest
   * claim), so that stats stay a function of the state alone.
   */
  limitStatus(now?: number): ReadonlyArray<LimitStatus> {
    return ClaimLimits.limitStatus(this.core, now)
  }

  get(id: string): Job | undefined {
    return this.core.jobs.entries.get(id as JobId)?.job
  }

  list(query: ListQuery): JobPage {
    return Reads.list(this.core, query)
  }

  /** Jobs of each type in each state: one pass over every job (the dashboard's per-type table, every few seconds). */
  countsByType(): Map<string, Record<JobState, number>> {
    return Reads.countsByType(this.core)
  }

  stats(): Stats {
    return Reads.stats(this.core)
  }

  /** True when a claim could return a job at `now` (not paused, something queued, within the limits on claims). */
  hasClaimable(types: ReadonlyArray<string> | undefined, now: number): boolean {
    return Reads.hasClaimable(this.core, types, now)
  }

  /**
   * The workers holding leases: how many running jobs each holds, and its latest claim or
   * heartbeat (the latest start of one of its leases; a takeover's grace restarts them too).
   */
  workers(): ReadonlyArray<{ readonly id: string; readonly jobs: number; readonly lastSeenAt: number }> {
    return Reads.workers(this.core)
  }

  /** Every schedule, by id. */
  listSchedules(): ReadonlyArray<Schedule> {
    return Schedules.listSchedules(this.core)
  }

  /**
   * When, after `now`, the next delayed or retrying job becomes claimable, a lease expires, a
   * schedule runs, or a rate limit that holds queued jobs back lets one more start (its window
   * lets go of a start): a long-poll claim waits until then, as no commit may come to wake it.
   */
  nextWakeup(now: number): number | undefined {
    return Reads.nextWakeup(this.core, now)
  }
}
