/**
 * One entry of the commit log (docs/architecture.md, "The log"): what one commit changed,
 * created once at `log/<position>`. A batch of commands, a takeover (`epoch`) and a clean
 * handoff (`release`) are all entries; replaying them in order onto the checkpoint they follow
 * gives the state.
 */
import { Leader, Paused, StateCorrupt, StoredJob, Totals } from "@osqueue/types"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/** The entry format this code writes and reads; any other is refused. */
export const entryFormat = 1

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
  totals: Totals
})
export type LogHeader = typeof LogHeader.Type

export const EntryKind = Schema.Literal("batch", "epoch", "release")
export type EntryKind = typeof EntryKind.Type

export const LogEntry = Schema.Struct({
  format: Schema.Literal(entryFormat),
  kind: EntryKind,
  position: Schema.Int,
  epoch: Schema.Int,
  /** `leaderId:position:attempt`: an append whose outcome is unknown is recognised by reading it back. */
  commitId: Schema.String,
  /** Present when the commit changed the header. */
  header: Schema.optionalWith(LogHeader, { exact: true }),
  /** Every job the commit created or changed, as it stands after the commit. */
  put: Schema.Array(StoredJob),
  /** Ids of the jobs that left the state. */
  removed: Schema.Array(Schema.String)
})
export type LogEntry = typeof LogEntry.Type

const decodeEntry = Schema.decodeUnknownEither(LogEntry)
const textDecoder = new TextDecoder()

/** Decodes the entry stored at `key`; anything else is `StateCorrupt` naming the key. */
export const decode = (key: string, bytes: Uint8Array): Either.Either<LogEntry, StateCorrupt> => {
  let json: unknown
  try {
    json = JSON.parse(textDecoder.decode(bytes))
  } catch (e) {
    return Either.left(new StateCorrupt({ key, reason: `not JSON (${(e as Error).message})` }))
  }
  return decodeEntry(json).pipe(
    Either.mapLeft((error) => new StateCorrupt({ key, reason: ParseResult.TreeFormatter.formatErrorSync(error) })),
    Either.filterOrLeft(
      (entry) => key === logKey(entry.position),
      (entry) => new StateCorrupt({ key, reason: `it says it is entry ${entry.position}` })
    )
  )
}
