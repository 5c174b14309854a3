/**
 * The undo journal and its frames (docs/architecture.md, "Appends in flight"): each batch records
 * how to undo what it changed, so that a batch whose write fails is rolled back without copying
 * the state. A sealed batch stays undoable until its write is durable, with the open batch on
 * top of it; a failed append voids what was sent behind it too.
 */
import type { JobEvent, JobId, Schedule, Stats } from "@osqueue/types"
import type { Entry } from "./entry.js"
import { stats } from "./reads.js"
import { scheduleSize } from "./schedules.js"
import type { Meta, Scope, StateCore } from "./stateCore.js"

export type Undo =
  | { readonly id: JobId; readonly prev: Entry | undefined }
  | { readonly meta: Meta }
  | { readonly schedule: string; readonly prev: Schedule | undefined }
  | { readonly starts: Scope; readonly prev: ReadonlyArray<number> | undefined }

/** What the open batch did to a scope's start times, in order: the log entry is made from it. */
export type StartsStep = { readonly scope: Scope; readonly added: number } | {
  readonly scope: Scope
  readonly dropped: true
}

/** A change of a job (not of the header, a schedule or a scope's starts). */
export const isJobUndo = (undo: Undo): undo is { readonly id: JobId; readonly prev: Entry | undefined } => "id" in undo

/** One batch not yet durable: how to undo it, what happened in it, and (once encoded) what it adds. */
export interface Frame {
  readonly journal: Array<Undo>
  readonly events: Array<JobEvent>
  sealed: { readonly growth: number; readonly stats: Stats } | undefined
}

export interface Savepoint {
  readonly journal: number
  readonly events: number
  readonly pendingBytes: number
  readonly startsSteps: number
}

/**
 * Starts recording undo information for a batch: a new frame on top of the sealed ones still
 * in flight (docs/architecture.md, "Appends in flight"). A frame still open is dropped (its
 * changes stay, unrecorded), as a new batch always did.
 */
export const begin = (core: StateCore): void => {
  const top = core.frames[core.frames.length - 1]
  if (top !== undefined && top.sealed === undefined) core.frames.pop()
  const journal: Array<Undo> = []
  core.frames.push({ journal, events: [], sealed: undefined })
  core.journal = journal
  core.events = core.frames[core.frames.length - 1]!.events
  // The batches in flight below count against the size cap as if durable.
  core.pendingBytes = inFlightGrowth(core)
  core.startsSteps = []
}

export const savepoint = (core: StateCore): Savepoint => {
  return {
    journal: core.journal?.length ?? 0,
    events: core.events.length,
    pendingBytes: core.pendingBytes,
    startsSteps: core.startsSteps.length
  }
}

/** Undoes the open batch's changes since the savepoint (since its start when omitted). */
export const rollback = (core: StateCore, to?: Savepoint): void => {
  const journal = core.journal
  if (journal === undefined) return
  undoTo(core, journal, to?.journal ?? 0)
  core.events.length = to?.events ?? 0
  core.pendingBytes = to?.pendingBytes ?? inFlightGrowth(core)
  core.startsSteps.length = to?.startsSteps ?? 0
}

/** Undoes the open batch and drops it (it was never sent). */
export const abandon = (core: StateCore): void => {
  rollback(core)
  if (core.frames[core.frames.length - 1]?.sealed === undefined) core.frames.pop()
  core.journal = undefined
  core.events = []
}

/** Undoes every batch not yet durable, the newest first: a failed append voids what was sent behind it. */
export const rollbackAll = (core: StateCore): void => {
  for (let frame = core.frames.pop(); frame !== undefined; frame = core.frames.pop()) undoTo(core, frame.journal, 0)
  core.journal = undefined
  core.events = []
  core.pendingBytes = 0
  core.startsSteps = []
}

const undoTo = (core: StateCore, journal: Array<Undo>, to: number): void => {
  while (journal.length > to) {
    const undo = journal.pop()!
    if ("meta" in undo) {
      core.meta = undo.meta
    } else if ("schedule" in undo) {
      core.installSchedule(undo.schedule, undo.prev)
    } else if ("starts" in undo) {
      core.installStarts(undo.starts, undo.prev)
    } else {
      const prev = undo.prev
      core.jobs.install(
        undo.id,
        core.jobs.entries.get(undo.id),
        prev === undefined ? undefined : prev.restamped(++core.stamps)
      )
    }
  }
}

/**
 * Ends the open batch once its entry is encoded: what it changed is fixed now, though a
 * batch sent behind it may change the same jobs before it is durable. `position` is the last
 * one it accounts for.
 */
export const seal = (core: StateCore, position: number): void => {
  const frame = core.frames[core.frames.length - 1]
  if (frame === undefined || frame.sealed !== undefined) return
  const growth = journalGrowth(core, frame.journal)
  const stateBytes = core.bytes + inFlightGrowth(core) + growth
  frame.sealed = { growth, stats: stats(core, position, stateBytes) }
  core.journal = undefined
  core.events = []
}

/** The counts as they will stand once the batches in flight are durable: the newest sealed frame's. */
export const sealedStats = (core: StateCore): Stats | undefined => {
  return core.frames[core.frames.length - 1]?.sealed?.stats
}

/**
 * Ends the oldest batch after its write is durable; returns what happened in it. `bytes` is
 * the size of the whole state when the write was one (a checkpoint); a log entry leaves it
 * out, and the size moves by what the batch's jobs gained or lost.
 */
export const committed = (core: StateCore, seq: number, commitId: string, bytes?: number): ReadonlyArray<JobEvent> => {
  if (core.frames[0]?.sealed === undefined) seal(core, seq)
  const frame = core.frames.shift()
  core.bytes = bytes ?? core.bytes + (frame?.sealed?.growth ?? 0)
  core.seq = seq
  core.commitId = commitId
  if (core.frames.length === 0) core.pendingBytes = 0
  return frame?.events ?? []
}

/** What the sealed batches not yet durable add to the encoded state. */
const inFlightGrowth = (core: StateCore): number => {
  let growth = 0
  for (const frame of core.frames) growth += frame.sealed?.growth ?? 0
  return growth
}

/** How many bytes the jobs `journal` touched add to the encoded state (negative when it shrank). */
const journalGrowth = (core: StateCore, journal: ReadonlyArray<Undo>): number => {
  const before = new Map<JobId, Entry | undefined>()
  const schedulesBefore = new Map<string, Schedule | undefined>()
  for (const undo of journal) {
    if (isJobUndo(undo)) {
      if (!before.has(undo.id)) before.set(undo.id, undo.prev)
    } else if ("schedule" in undo && !schedulesBefore.has(undo.schedule)) schedulesBefore.set(undo.schedule, undo.prev)
  }
  let growth = 0
  for (const [id, prev] of before) growth += (core.jobs.entries.get(id)?.size ?? 0) - (prev?.size ?? 0)
  for (const [id, prev] of schedulesBefore) {
    growth += scheduleSize(core.schedules.get(id)?.schedule) - scheduleSize(prev)
  }
  return growth
}
