/** Listing jobs: the query (`list`: filters, order, search, paging) and the page it answers. */
import * as Schema from "effect/Schema"
import { JobState } from "./Job.js"
import { JobOnWire } from "./JobOnWire.js"

/** Most jobs one page of `list` holds. */
export const maxPageSize = 1_000

/** Longest text a `list` search looks for. */
export const maxSearchLength = 200

/** Enqueue order, oldest first (`asc`, the default) or newest first (`desc`). */
export const ListOrder = Schema.Literal("asc", "desc")

export const ListSearch = Schema.String.pipe(
  Schema.minLength(1, { message: () => "a search must not be empty: leave it out to list every job" }),
  Schema.maxLength(maxSearchLength, { message: () => `a search has at most ${maxSearchLength} characters` })
)

export const ListQuery = Schema.Struct({
  state: Schema.optionalWith(JobState, { exact: true }),
  type: Schema.optionalWith(Schema.String, { exact: true }),
  /** Return the jobs past this `seq` in the order asked (from the previous page's `next`). */
  after: Schema.optionalWith(Schema.Int, { exact: true }),
  limit: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, maxPageSize)), { exact: true }),
  order: Schema.optionalWith(ListOrder, { exact: true }),
  /** Only jobs whose id, payload or last error contains this text (case-sensitive; payloads as JSON). */
  search: Schema.optionalWith(ListSearch, { exact: true })
})
export type ListQuery = typeof ListQuery.Type

export const JobPage = Schema.Struct({
  jobs: Schema.Array(JobOnWire),
  /** Pass as `after` for the next page; absent on the last page. */
  next: Schema.optionalWith(Schema.Int, { exact: true })
})
export type JobPage = typeof JobPage.Type
