/**
 * The checkpoint (queue.json) both ways: the state written as the parts a store writes in order
 * (the header, each job's cached bytes, the closing bracket), and a state made from a decoded
 * file, keeping each job's bytes as its cache.
 */
import { currentFormat, firstLogFormat, type QueueFile } from "@osqueue/types"
import type { Limits } from "../QueueState.js"
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
 * The state a checkpoint holds. `jobBytes`: each job's bytes as the file held them
 * (`Cas.Decoded`), kept as its cached bytes when the file is of the current format: no re-encode
 * of every job for the next checkpoint.
 */
export const load = (
  file: QueueFile,
  bytes: number,
  limits: Limits,
  jobBytes?: ReadonlyArray<Uint8Array>
): StateCore => {
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
  // Jobs are written alike from the first log format on.
  const kept = file.format >= firstLogFormat ? jobBytes : undefined
  file.jobs.forEach((job, i) => {
    const entry = Entry.of(job, ++core.stamps, kept?.[i])
    core.jobs.install(job.id, undefined, entry)
    if (kept !== undefined) entry.encoded()
  })
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
  parts.length = core.jobs.entries.size + 2
  parts[0] = Buffer.from(`${header.slice(0, -1)},"jobs":[`)
  let length = parts[0].length + jobsEnd.length
  let i = 1
  for (const entry of core.jobs.entries.values()) {
    const json = secrets ? entry.encoded() : entry.encodedPublic()
    // The first job goes without its leading comma.
    parts[i] = i === 1 ? json.subarray(1) : json
    length += parts[i++]!.length
  }
  parts[i] = jobsEnd
  return { parts, length }
}
