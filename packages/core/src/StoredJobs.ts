/**
 * The jobs of a checkpoint or a log entry, each parsed from its own bytes, which the state then
 * keeps as the job's cached bytes (`JsonElements`; docs/architecture.md, "Checkpoints"): no
 * string of the whole document, and no re-encode of every job for its size or the next
 * checkpoint. Checked by the job guard; only a job it refuses goes through the schema, for an
 * error that names the field.
 */
import { fromStoredJob, isJob, type Job, StoredJob } from "@osqueue/types"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
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

/** Decodes each job's bytes (after the caller checked the header): `Left` says what is wrong with the first bad one. */
export const decodeJobs = (jobBytes: ReadonlyArray<Uint8Array>, key: string): Either.Either<Array<Job>, string> => {
  const jobs = new Array<Job>(jobBytes.length)
  for (let i = 0; i < jobs.length; i++) {
    let json: unknown
    try {
      json = JSON.parse(elementText(jobBytes[i]!))
    } catch (e) {
      return Either.left(`[${JSON.stringify(key)}][${i}] is not JSON (${(e as Error).message})`)
    }
    const job = Predicate.isRecord(json) ? fromStoredJob(json) : undefined
    if (job !== undefined && isJob(job)) {
      jobs[i] = job
      continue
    }
    const checked = decodeStoredJob(json)
    if (Either.isLeft(checked)) {
      return Either.left(`[${JSON.stringify(key)}][${i}]: ${ParseResult.TreeFormatter.formatErrorSync(checked.left)}`)
    }
    jobs[i] = checked.right
  }
  return Either.right(jobs)
}
