/**
 * The jobs of a checkpoint or a log entry, each parsed from its own bytes, which the state then
 * keeps as the job's cached bytes (`JsonElements`; docs/architecture.md, "Checkpoints"): no
 * string of the whole document, and no re-encode of every job for its size or the next
 * checkpoint. Checked by the job guard; only a job it refuses goes through the schema, for an
 * error that names the field.
 */
import { fromStoredJob, isJob, type Job, type JobId, type JobState, StoredJob } from "@osqueue/types"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { isInFlow } from "./internal/entry.js"
import { heapKey, keyHash } from "./internal/jobIndex.js"
import { elementText, splitArray } from "./JsonElements.js"

export interface SplitJobs {
  /** The document with the jobs' array emptied, parsed: for the caller's schema. */
  readonly header: unknown
  /** Each job's bytes, in order, with a comma in front. */
  readonly jobBytes: ReadonlyArray<Uint8Array>
}

const decodeStoredJob = Schema.decodeUnknownEither(StoredJob)

/** Splits the jobs' array under `key` from the document; undefined when the bytes are not laid out so (the caller parses the whole, as before). */
export const splitJobs = (bytes: Uint8Array, key: string): SplitJobs | undefined => {
  const split = splitArray(bytes, key)
  if (split === undefined) return undefined
  try {
    return { header: JSON.parse(split.header), jobBytes: split.elements }
  } catch {
    return undefined
  }
}

/**
 * Checks each job's bytes (after the caller checked the header) and hands each job to `each`
 * as soon as it is read, so that a caller that keeps only some of it leaves the rest for the
 * young generation's collector. What is wrong with the first bad one, else undefined.
 */
export const eachJob = (
  jobBytes: ReadonlyArray<Uint8Array>,
  key: string,
  each: (job: Job, i: number) => void
): string | undefined => {
  for (let i = 0; i < jobBytes.length; i++) {
    let json: unknown
    try {
      json = JSON.parse(elementText(jobBytes[i]!))
    } catch (e) {
      return `[${JSON.stringify(key)}][${i}] is not JSON (${(e as Error).message})`
    }
    const job = Predicate.isRecord(json) ? fromStoredJob(json) : undefined
    if (job !== undefined && isJob(job)) {
      each(job, i)
      continue
    }
    const checked = decodeStoredJob(json)
    if (Either.isLeft(checked)) {
      return `[${JSON.stringify(key)}][${i}]: ${ParseResult.TreeFormatter.formatErrorSync(checked.left)}`
    }
    each(checked.right, i)
  }
  return undefined
}

/** Decodes each job's bytes (after the caller checked the header): `Left` says what is wrong with the first bad one. */
export const decodeJobs = (jobBytes: ReadonlyArray<Uint8Array>, key: string): Either.Either<Array<Job>, string> => {
  const jobs = new Array<Job>(jobBytes.length)
  const problem = eachJob(jobBytes, key, (job, i) => (jobs[i] = job))
  return problem === undefined ? Either.right(jobs) : Either.left(problem)
}

/**
 * Stored jobs as the state keeps them (docs/architecture.md, "Checkpoints"): each one's bytes,
 * and only the fields its indexes need — every job checked whole, but no object of it kept
 * (a running job's excepted, which its entry holds). A takeover of a big queue then leaves
 * nothing of the decoded jobs for the collector to carry.
 */
export interface KeptJobs {
  /** Each job's bytes, with a comma in front: `buffers[i]` from `starts[i]` to `ends[i]`. */
  readonly buffers: ReadonlyArray<ArrayBufferLike>
  readonly starts: Float64Array
  readonly ends: Float64Array
  readonly ids: ReadonlyArray<JobId>
  readonly states: ReadonlyArray<JobState>
  readonly types: ReadonlyArray<string>
  readonly seqs: Float64Array
  /** Each job's key in the heap its state puts it in (`heapKey`). */
  readonly keys: Float64Array
  /** The hash of each job's idempotency key (`keyHash`), NaN for a job without one. */
  readonly keyHashes: Float64Array
  /** 1 for a parent or a child of a flow (`Entry.inFlow`). */
  readonly inFlow: Uint8Array
  /** A running job's object, by its index. */
  readonly running: ReadonlyMap<number, Job>
}

/** `decodeJobs`, keeping of each job only what `KeptJobs` holds. */
export const keepJobs = (jobBytes: ReadonlyArray<Uint8Array>, key: string): Either.Either<KeptJobs, string> => {
  const n = jobBytes.length
  const buffers = new Array<ArrayBufferLike>(n)
  const starts = new Float64Array(n)
  const ends = new Float64Array(n)
  const ids = new Array<JobId>(n)
  const states = new Array<JobState>(n)
  const types = new Array<string>(n)
  const seqs = new Float64Array(n)
  const keys = new Float64Array(n)
  const keyHashes = new Float64Array(n)
  const inFlow = new Uint8Array(n)
  const running = new Map<number, Job>()
  // One string per type, not one per job.
  const typeNames = new Map<string, string>()
  const problem = eachJob(jobBytes, key, (job, i) => {
    const bytes = jobBytes[i]!
    buffers[i] = bytes.buffer
    starts[i] = bytes.byteOffset
    ends[i] = bytes.byteOffset + bytes.byteLength
    ids[i] = job.id
    states[i] = job.state
    let type = typeNames.get(job.type)
    if (type === undefined) typeNames.set(job.type, type = job.type)
    types[i] = type
    seqs[i] = job.seq
    keys[i] = heapKey(job)
    keyHashes[i] = job.idempotencyKey === undefined ? NaN : keyHash(job.idempotencyKey)
    if (isInFlow(job)) inFlow[i] = 1
    if (job.state === "running") running.set(i, job)
  })
  return problem === undefined
    ? Either.right({ buffers, starts, ends, ids, states, types, seqs, keys, keyHashes, inFlow, running })
    : Either.left(problem)
}

/** Each kept job's bytes, as a view of its own. */
export const keptBytes = (kept: KeptJobs): ReadonlyArray<Uint8Array> =>
  kept.buffers.map((buffer, i) => new Uint8Array(buffer, kept.starts[i]!, kept.ends[i]! - kept.starts[i]!))
