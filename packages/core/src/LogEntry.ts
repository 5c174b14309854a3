/**
 * One entry of the commit log (docs/architecture.md, "The log"): what one commit changed,
 * created once at `log/<position>`. A batch of commands, a takeover (`epoch`) and a clean
 * handoff (`release`) are all entries; replaying them in order onto the checkpoint they follow
 * gives the state.
 */
import { type Job, Leader, Paused, Schedule, StateCorrupt, StoredJob, StoredLimit, Totals } from "@osqueue/types"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { parseWhole } from "./JsonElements.js"
import { decodeJobs, keepJobs, keptBytes, type KeptJobs, splitJobs } from "./StoredJobs.js"

/**
 * The entry format this code writes. Format 2 adds `patched` (a changed job as the fields that
 * changed); format 3 adds `schedules` (the schedules the commit set or removed) and the limits
 * on claims (the header's `limits`, and `starts`); format 4 adds `skip` (positions after the
 * entry that no reader reads: docs/architecture.md, "Appends in flight"); format 5 may carry
 * jobs of flows (docs/flows.md), whose fields a broker that knew none would drop. Formats 1 to 4
 * are read too. Any other is refused, naming the formats this code reads: a broker that knew no
 * `skip` would replay entries it must not.
 */
export const entryFormat = 5
export const readableEntryFormats = [1, 2, 3, 4, 5] as const

export const logPrefix = "log/"

/** Positions are safe integers: 16 digits keep every key in position order under `list`. */
export const logKey = (position: number): string => `${logPrefix}${String(position).padStart(16, "0")}`

/** The position a log key names, or undefined for a key that is not a log entry's. */
export const positionOf = (key: string): number | undefined => {
  const digits = key.slice(logPrefix.length)
  return key.startsWith(logPrefix) && /^\d{16}$/.test(digits) ? Number(digits) : undefined
}

/** The header fields as they stand after the commit (written whole: they are a few bytes). */
export const LogHeader = Schema.Struct({
  epoch: Schema.Int,
  leader: Schema.NullOr(Leader),
  nextJobSeq: Schema.Int,
  paused: Paused,
  totals: Totals,
  /** The limits on claims (format 3; none when absent). */
  limits: Schema.optionalWith(Schema.Array(StoredLimit), { exact: true })
})
export type LogHeader = typeof LogHeader.Type

export const EntryKind = Schema.Literal("batch", "epoch", "release")
export type EntryKind = typeof EntryKind.Type

/**
 * A job the commit changed, as what changed: the fields set to a new value (compared by
 * reference with the job before the commit, so an unchanged payload is not written again) and
 * the fields it no longer has. Replayed onto the job as the replica holds it.
 */
export const JobPatch = Schema.Struct({
  id: Schema.String,
  set: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  unset: Schema.optionalWith(Schema.Array(Schema.String), { exact: true })
})
export type JobPatch = typeof JobPatch.Type

/**
 * How the commit changed a rate-limited scope's remembered start times (`type` absent: the whole
 * queue): keep the newest `keep` of them, then add `at` (oldest first). Written from what the
 * leader did, so replaying it gives the very times the leader holds, whatever it pruned or
 * forgot (a cleared rate) on the way.
 */
export const StartsChange = Schema.Struct({
  type: Schema.optionalWith(Schema.String, { exact: true }),
  keep: Schema.Int.pipe(Schema.nonNegative()),
  at: Schema.Array(Schema.Int)
})
export type StartsChange = typeof StartsChange.Type

export const LogEntry = Schema.Struct({
  format: Schema.Literal(...readableEntryFormats),
  kind: EntryKind,
  position: Schema.Int,
  epoch: Schema.Int,
  /** `leaderId:position:attempt`: an append whose outcome is unknown is recognised by reading it back. */
  commitId: Schema.String,
  /**
   * The positions right after this one that readers pass over: entries a leader had in flight
   * behind one that failed, or a deposed leader's, which may land but were built on an entry
   * that never did (docs/architecture.md, "Appends in flight"). The next entry read is `position + skip + 1`.
   */
  skip: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 16)), { exact: true }),
  /** Present when the commit changed the header. */
  header: Schema.optionalWith(LogHeader, { exact: true }),
  /** Every job the commit created (or changed, when a patch would not be smaller), as it stands after the commit. */
  put: Schema.Array(StoredJob),
  /** Every other job the commit changed, as its changes. */
  patched: Schema.optionalWith(Schema.Array(JobPatch), { exact: true }),
  /** The schedules the commit set (as they stand after it) or removed (by id). */
  schedules: Schema.optionalWith(Schema.Struct({ put: Schema.Array(Schedule), removed: Schema.Array(Schema.String) }), {
    exact: true
  }),
  /** Ids of the jobs that left the state. */
  removed: Schema.Array(Schema.String),
  /** Each rate-limited scope whose start times the commit changed (format 3). */
  starts: Schema.optionalWith(Schema.Array(StartsChange), { exact: true })
})
export type LogEntry = typeof LogEntry.Type & {
  /**
   * The put jobs as the state keeps them — each one's bytes as the entry holds them and the
   * fields its indexes need (`StoredJobs.KeptJobs`) — when the decode could keep their bytes:
   * `put` is empty then (`putJobs` gives them as objects).
   */
  readonly kept?: KeptJobs
}

const decodeEntry = Schema.decodeUnknownEither(LogEntry)

const corrupt = (key: string, reason: string) => new StateCorrupt({ key, reason })

/** A format this code does not read, named with the ones it does (a newer broker wrote the entry). */
const formatProblem = (key: string, json: unknown): StateCorrupt | undefined => {
  const format = typeof json === "object" && json !== null && "format" in json ? json.format : undefined
  if (typeof format !== "number" || (readableEntryFormats as ReadonlyArray<number>).includes(format)) return undefined
  return corrupt(
    key,
    `entry format ${format} is not known to this broker, which reads formats ${
      readableEntryFormats.slice(0, -1).join(", ")
    } and ${readableEntryFormats.at(-1)}: run a matching osqueue version`
  )
}

/** The whole entry parsed at once: bytes laid out some other way, and the errors' wording. */
const decodeWhole = (key: string, bytes: Uint8Array): Either.Either<LogEntry, StateCorrupt> => {
  const parsed = parseWhole(bytes)
  if (Either.isLeft(parsed)) return Either.left(corrupt(key, parsed.left))
  const json = parsed.right
  const problem = formatProblem(key, json)
  if (problem !== undefined) return Either.left(problem)
  return Either.mapLeft(decodeEntry(json), (error) => corrupt(key, ParseResult.TreeFormatter.formatErrorSync(error)))
}

/** The entry with each put job parsed from its own bytes, which the state keeps (`StoredJobs`). */
const decodeSplit = (key: string, bytes: Uint8Array): Either.Either<LogEntry, StateCorrupt> | undefined => {
  const split = splitJobs(bytes, "put")
  if (split === undefined) return undefined
  const problem = formatProblem(key, split.header)
  if (problem !== undefined) return Either.left(problem)
  const header = decodeEntry(split.header)
  if (Either.isLeft(header)) return Either.left(corrupt(key, ParseResult.TreeFormatter.formatErrorSync(header.left)))
  if (header.right.put.length !== 0) return undefined
  return Either.mapBoth(keepJobs(split.jobBytes, "put"), {
    onLeft: (reason) => corrupt(key, reason),
    onRight: (kept) => ({ ...header.right, kept })
  })
}

/** The jobs an entry put, as objects (decoded from their bytes when the entry keeps them so). */
export const putJobs = (entry: LogEntry): ReadonlyArray<Job> =>
  entry.kept === undefined ? entry.put : Either.getOrThrow(decodeJobs(keptBytes(entry.kept), "put"))

/** The position of the last entry `entry` accounts for: itself, and the ones it skips. */
export const lastPosition = (entry: LogEntry): number => entry.position + (entry.skip ?? 0)

/** Decodes the entry stored at `key`; anything else is `StateCorrupt` naming the key. */
export const decode = (key: string, bytes: Uint8Array): Either.Either<LogEntry, StateCorrupt> =>
  (decodeSplit(key, bytes) ?? decodeWhole(key, bytes)).pipe(
    Either.filterOrLeft(
      (entry) => key === logKey(entry.position),
      (entry) => corrupt(key, `it says it is entry ${entry.position}`)
    )
  )
