/** What every view gets: the connection, the model, and the page's ways to report and move. */
import type { ClientError, OsqueueClientShape } from "@osqueue/client"
import type { Roles } from "@osqueue/types"
import type { Effect } from "effect"
import type { Connection } from "./connection.js"
import type { Model } from "./model.js"

export interface App {
  readonly connection: Connection
  readonly model: Model
  /** A short message in the corner (and to screen readers). */
  readonly toast: (message: string, kind?: "ok" | "error") => void
  /**
   * Runs a client operation for a button or form: its error is shown as a toast with its tag
   * ("InvalidTransition: …"); resolves undefined then.
   */
  readonly act: <A>(f: (client: OsqueueClientShape) => Effect.Effect<A, ClientError>) => Promise<A | undefined>
  /** Whether the token's role may run `operation` (true while the role is unknown): controls it may not use are not shown. */
  readonly may: (operation: Roles.Operation) => boolean
}

export interface View {
  readonly element: HTMLElement
  /** Shown with the route's parameters (`#/jobs/job-3` → ["job-3"]) and query. */
  readonly show: (params: ReadonlyArray<string>, query: URLSearchParams) => void
  readonly hide?: () => void
}

/** "Tag: message" for a tagged error, the message for anything else. */
export const describeError = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    const message = "message" in error && typeof error.message === "string" && error.message !== ""
      ? error.message
      : JSON.stringify(error)
    return `${String(error._tag)}: ${message}`
  }
  return error instanceof Error ? error.message : String(error)
}
