/**
 * The log entry of a batch both ways (docs/architecture.md, "The log"): made from the open
 * batch's undo journal (so it costs the batch, not the queue), with a changed job written as a
 * patch of the fields that changed; and applied to the state as one durable batch when a
 * follower or a takeover replays the log.
 */
import { fromStoredJob, isJob, Job, type JobId, leftOutWhenStored, type Schedule } from "@osqueue/types"
import {
  entryFormat,
  type EntryKind,
  type JobPatch,
  lastPosition,
  type LogEntry,
  type StartsChange
} from "../LogEntry.js"
import type { Encoded } from "./checkpoint.js"
import type { Entry } from "./entry.js"
import { fieldTexts } from "./jobText.js"
import { begin, committed, isJobUndo, rollbackAll } from "./journal.js"
import type { Scope, StateCore } from "./stateCore.js"

/**
 * The log entry of the open batch (docs/architecture.md, "The log"), as the parts a store
 * writes in order: the header fields when any changed, each job the batch created as it stands
 * now (its cached bytes, the ones a checkpoint writes), each job it changed as the fields that
 * changed (`patchInto`: a claim or a completion does not write the payload again), and the ids of
 * touched jobs now gone. Read from the undo journal, so it costs the batch, not the queue. Call
 * before `seal`; `skip` is the positions after it that readers pass over.
 */
export const entryParts = (core: StateCore, kind: EntryKind, position: number, commitId: string, skip = 0): Encoded => {
  let headerChanged = false
  // Each touched job, with the entry it had before the batch.
  const touched = new Map<JobId, Entry | undefined>()
  const touchedSchedules = new Set<string>()
  for (const undo of core.journal ?? []) {
    if ("meta" in undo) headerChanged = true
    else if ("schedule" in undo) touchedSchedules.add(undo.schedule)
    else if (isJobUndo(undo) && !touched.has(undo.id)) touched.set(undo.id, undo.prev)
  }
  const removed: Array<JobId> = []
  // The patches' text as pieces, joined once with the rest of the tail.
  const patched: Array<string> = []
  let patches = 0
  const parts: Array<Uint8Array> = [new Uint8Array(0)]
  let length = 0
  for (const [id, prev] of touched) {
    const entry = core.jobs.entries.get(id)
    if (entry === undefined) {
      removed.push(id)
      continue
    }
    if (prev !== undefined) {
      const mark = patched.length
      if (patches > 0) patched.push(",")
      const patch = patchInto(patched, prev, entry)
      // The whole job's bytes are made either way: its size, and the next checkpoint's.
      if (patch !== undefined && patch < entry.encodedLength()) {
        patches++
        continue
      }
      patched.length = mark
    }
    const json = entry.encoded()
    parts.push(parts.length === 1 ? json.subarray(1) : json)
    length += parts[parts.length - 1]!.length
  }
  const head = JSON.stringify({
    format: entryFormat,
    kind,
    position,
    epoch: core.meta.epoch,
    commitId,
    ...(skip > 0 ? { skip } : {}),
    ...(headerChanged ? { header: core.meta } : {})
  })
  parts[0] = Buffer.from(`${head.slice(0, -1)},"put":[`)
  const schedules = touchedSchedules.size > 0
    ? `"schedules":${JSON.stringify(scheduleChanges(core, touchedSchedules))},`
    : ""
  const starts = startsChanges(core)
  const tail = Buffer.from(
    `],${patches > 0 ? `"patched":[${patched.join("")}],` : ""}${schedules}"removed":${JSON.stringify(removed)}${
      starts.length > 0 ? `,"starts":${JSON.stringify(starts)}` : ""
    }}`
  )
  parts.push(tail)
  return { parts, length: length + parts[0].length + tail.length }
}

/** The schedules a batch touched: as they stand now, or gone. */
const scheduleChanges = (
  core: StateCore,
  ids: ReadonlySet<string>
): { put: Array<Schedule>; removed: Array<string> } => {
  const put: Array<Schedule> = []
  const removed: Array<string> = []
  for (const id of ids) {
    const held = core.schedules.get(id)
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
const startsChanges = (core: StateCore): Array<StartsChange> => {
  const added = new Map<Scope, number>()
  for (const step of core.startsSteps) {
    added.set(step.scope, "dropped" in step ? 0 : (added.get(step.scope) ?? 0) + step.added)
  }
  const changes: Array<StartsChange> = []
  for (const [scope, count] of added) {
    const held = core.starts.get(scope) ?? []
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
export const replay = (core: StateCore, entry: LogEntry): string | undefined => {
  begin(core)
  // A header from before the limits on claims (entry format 2) has none.
  if (entry.header !== undefined) core.setMeta({ ...entry.header, limits: entry.header.limits ?? [] })
  for (const job of entry.put) core.put(job)
  if (entry.kept !== undefined) core.putKept(entry.kept)
  for (const patch of entry.patched ?? []) {
    const prev = core.jobs.entries.get(patch.id as JobId)
    const job = prev === undefined ? undefined : patched(prev.job, patch)
    if (job === undefined) {
      rollbackAll(core)
      return prev === undefined
        ? `it changes job ${JSON.stringify(patch.id)}, which the state does not hold`
        : `its change of job ${JSON.stringify(patch.id)} leaves no valid job`
    }
    core.put(job)
    // Its bytes now, as the leader made them: the state's size, and the next checkpoint's.
    core.jobs.entries.get(job.id)!.encoded()
  }
  for (const id of entry.removed) core.remove(id as JobId)
  for (const schedule of entry.schedules?.put ?? []) core.putSchedule(schedule)
  for (const id of entry.schedules?.removed ?? []) core.removeSchedule(id)
  for (const change of entry.starts ?? []) {
    const held = core.starts.get(change.type) ?? []
    if (change.keep > held.length) {
      rollbackAll(core)
      return `it keeps ${change.keep} start times of ${
        change.type === undefined ? "the queue" : `type ${JSON.stringify(change.type)}`
      }, which holds ${held.length}`
    }
    core.setStarts(change.type, [...held.slice(held.length - change.keep), ...change.at])
  }
  committed(core, lastPosition(entry), entry.commitId)
  return undefined
}

/** The fields a log entry's patch may set or unset: `Job`'s own, in its order. */
const jobFieldList: ReadonlyArray<string> = Object.keys(Job.fields)
const jobFields: ReadonlySet<string> = new Set(jobFieldList)
/** Each field's name as a patch's `set` writes it, first and after another. */
const firstSet = jobFieldList.map((key) => `"${key}":`)
const nextSet = jobFieldList.map((key) => `,"${key}":`)

/**
 * The bytes field `i` of `job` takes in the job's stored JSON (`storedJob`), the comma before it
 * included (no changed field is the first, `id`): `json` is its value's JSON when at hand.
 */
const storedFieldBytes = (job: Record<string, unknown>, i: number, json?: string): number => {
  const key = jobFieldList[i]! as keyof Job
  if (leftOutWhenStored(job as unknown as Job, key)) return 0
  const value = job[key]
  const text = json ?? fieldTexts[i]!(value as never)!
  // A number's JSON is ASCII, its length its bytes: three of the six fields a claim changes are
  // numbers, and each count of UTF-8 bytes is a call into the runtime.
  return nextSet[i]!.length + (typeof value === "number" ? text.length : Buffer.byteLength(text))
}

/**
 * Appends a changed job's patch to `pieces` and returns its length: the fields whose value is
 * not the very one the job had before the batch (jobs are changed by copying, so an untouched
 * payload or history is the same object), and the fields it lost. Nothing when the job's object
 * from before is not at hand.
 *
 * The text is `JSON.stringify({ id, set, unset? })`'s, written field by field in `Job`'s order
 * (the order every job of the state has its fields in: `jobWith`, `fromStoredJob`) as pieces
 * the entry joins once: no `set` object, no walk of both jobs' keys, no string per patch.
 *
 * A job whose bytes wait until needed (`Entry.claimed`) learns its size here: the job's before,
 * and what each changed field adds or takes, from the JSON the patch writes of it.
 */
const patchInto = (pieces: Array<string>, prev: Entry, next: Entry): number | undefined => {
  const before = prev.decodedIfAny as Record<string, unknown> | undefined
  const after = next.decodedIfAny as Record<string, unknown> | undefined
  if (before === undefined || after === undefined) return undefined
  const sizing = next.awaitsSize
  let size = sizing ? prev.size : 0
  const start = pieces.length
  pieces.push(`{"id":${JSON.stringify(after.id)},"set":{`)
  let set = 0
  let unset: string | undefined
  for (let i = 0; i < jobFieldList.length; i++) {
    const key = jobFieldList[i]!
    const value = after[key]
    if (value === undefined) {
      if (before[key] === undefined) continue
      unset = unset === undefined ? `"${key}"` : `${unset},"${key}"`
      if (sizing) size -= storedFieldBytes(before, i)
    } else if (value !== before[key]) {
      // A value JSON leaves out (as `JSON.stringify` of an object leaves its key out).
      const json = fieldTexts[i]!(value as never)
      if (json !== undefined) pieces.push(set++ === 0 ? firstSet[i]! : nextSet[i]!, json)
      if (sizing) size += (json === undefined ? 0 : storedFieldBytes(after, i, json)) - storedFieldBytes(before, i)
    }
  }
  if (sizing) next.measured(size)
  pieces.push(unset === undefined ? "}}" : `},"unset":[${unset}]}`)
  let length = 0
  for (let i = start; i < pieces.length; i++) length += pieces[i]!.length
  return length
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
