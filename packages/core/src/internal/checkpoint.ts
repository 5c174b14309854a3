/**
 * The checkpoint (queue.json) both ways: the state written as the parts a store writes in order
 * (the header, each job's cached bytes, the closing bracket), and a state made from a decoded
 * file, keeping each job's bytes as its cache.
 */
import { currentFormat, type QueueFile } from "@osqueue/types"
import type { Limits } from "../QueueState.js"
import type { KeptJobs } from "../StoredJobs.js"
import { Entry } from "./entry.js"
import { listSchedules } from "./schedules.js"
import { StateCore } from "./stateCore.js"

/** An object's bytes as the parts a store writes in order (`ObjectStore.Body`), and their total. */
export interface Encoded {
  readonly parts: ReadonlyArray<Uint8Array>
  readonly length: number
}

const jobsEnd = Buffer.from("]}")

/**
 * The state a checkpoint holds: its jobs from `file.jobs`, or from `kept` (`Cas.Decoded`), as
 * the bytes the file held and the fields the indexes need — no re-encode of every job for the
 * next checkpoint, and no object of a job nobody has read yet.
 */
export const load = (file: QueueFile, bytes: number, limits: Limits, kept?: KeptJobs): StateCore => {
  const core = new StateCore(
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
  for (const { at, type } of file.starts ?? []) core.starts.set(type, at)
  for (const job of file.jobs) core.jobs.install(job.id, undefined, Entry.of(job, ++core.stamps))
  if (kept !== undefined) core.putKept(kept)
  for (const schedule of file.schedules ?? []) core.installSchedule(schedule.id, schedule)
  core.bytes = bytes
  return core
}

export const partsInto = (
  core: StateCore,
  parts: Array<Uint8Array>,
  seq: number,
  commitId: string,
  secrets = true
): Encoded => {
  const { epoch, leader, limits, nextJobSeq, paused, totals } = core.meta
  // By id: the same bytes whichever order the schedules were set in (a replica's, a leader's).
  const schedules = core.schedules.size === 0 ? undefined : listSchedules(core)
  const starts = [...core.starts].map(([type, at]) => (type === undefined ? { at } : { type, at }))
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
  parts.push(Buffer.from(`${header.slice(0, -1)},"jobs":[`))
  let length = parts[0]!.length + jobsEnd.length
  // Jobs whose bytes follow one another in one buffer go as one part.
  let buffer: ArrayBufferLike | undefined
  let at = 0
  let end = 0
  const flush = () => {
    if (buffer === undefined) return
    parts.push(Buffer.from(buffer, at, end - at))
    length += end - at
  }
  for (const entry of core.jobs.entries.values()) {
    if (!secrets && entry.state === "running") {
      flush()
      buffer = undefined
      const json = entry.encodedPublic()
      // The first job goes without its leading comma.
      const part = parts.length === 1 ? json.subarray(1) : json
      parts.push(part)
      length += part.length
      continue
    }
    entry.encodeInPlace()
    if (entry.bytesIn === buffer && entry.bytesAt === end) {
      end = entry.bytesEnd
      continue
    }
    flush()
    buffer = entry.bytesIn
    // The first job goes without its leading comma.
    at = parts.length === 1 ? entry.bytesAt + 1 : entry.bytesAt
    end = entry.bytesEnd
  }
  flush()
  parts.push(jobsEnd)
  return { parts, length }
}
