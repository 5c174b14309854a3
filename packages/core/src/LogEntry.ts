/**
 * One entry of the planned commit log (docs/architecture.md, "The log"): what one batch changed,
 * written create-only at `log/<position>`. Not yet on any broker's commit path.
 */
import { Leader, Paused, StoredJob, Totals } from "@osqueue/types"
import * as Schema from "effect/Schema"

/** The entry format this code writes and reads; any other is refused. */
export const logFormat = 1

/** Positions are safe integers: 16 digits keep every key in position order under `list`. */
export const logKey = (position: number): string => `log/${String(position).padStart(16, "0")}`

/** The header fields as they stand after the batch (written whole: they are a few bytes). */
export const LogHeader = Schema.Struct({
  epoch: Schema.Int,
  leader: Schema.NullOr(Leader),
  nextJobSeq: Schema.Int,
  paused: Paused,
  totals: Totals
})
export type LogHeader = typeof LogHeader.Type

export const LogEntry = Schema.Struct({
  format: Schema.Literal(logFormat),
  kind: Schema.Literal("batch", "epoch", "release"),
  position: Schema.Int,
  epoch: Schema.Int,
  /** `leaderId:position`: an append whose outcome is unknown is resolved by reading it back. */
  commitId: Schema.String,
  /** Present when the batch changed the header. */
  header: Schema.optionalWith(LogHeader, { exact: true }),
  /** Every job the batch created or changed, as it stands after the batch. */
  put: Schema.Array(StoredJob),
  /** Ids of the jobs that left the hot state. */
  removed: Schema.Array(Schema.String)
})
export type LogEntry = typeof LogEntry.Type
