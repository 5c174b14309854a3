/**
 * `queue.json`: the whole queue in one object. The broker decodes it with this schema and
 * refuses a `format` it does not know (never guesses). Fencing fields (DESIGN.md §3.3):
 * `epoch` is bumped on every takeover, `seq` on every commit, `commitId` names the commit
 * (leader id + seq) so an ambiguous write can be recognised when read back.
 */
import * as Schema from "effect/Schema"
import { Job, Paused } from "./Job.js"

export const currentFormat = 1

export const Leader = Schema.Struct({
  /** Fresh per process: two processes never share one. */
  id: Schema.String,
  /** Where clients reach it; never the bind address. */
  url: Schema.String,
  /** The leader's clock when it took over. */
  since: Schema.Int,
  /** True once the leader handed over cleanly (a follower may take over at once). */
  released: Schema.optionalWith(Schema.Boolean, { exact: true })
})
export type Leader = typeof Leader.Type

export const Totals = Schema.Struct({
  enqueued: Schema.Int,
  completed: Schema.Int,
  dead: Schema.Int
})
export type Totals = typeof Totals.Type

export const QueueFile = Schema.Struct({
  format: Schema.Literal(currentFormat),
  epoch: Schema.Int,
  seq: Schema.Int,
  commitId: Schema.String,
  leader: Schema.NullOr(Leader),
  /** The `seq` the next enqueued job gets. */
  nextJobSeq: Schema.Int,
  paused: Paused,
  totals: Totals,
  jobs: Schema.Array(Job)
})
export type QueueFile = typeof QueueFile.Type

/** Only the header: enough to check the format before decoding every job. */
export const FormatHeader = Schema.Struct({ format: Schema.Number })
