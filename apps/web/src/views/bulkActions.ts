/**
 * What can be done to several ticked jobs at once (cancel, redrive, delete), the states each
 * applies to, and the words a dialog or toast uses for them.
 */
import type { OsqueueClientShape } from "@osqueue/client"
import type { JobState } from "@osqueue/types"
import { jobStates } from "@osqueue/types"

/** Every state but running: a running job's worker holds a lease, which a cancel revokes first. */
export const deletable: ReadonlyArray<JobState> = jobStates.filter((state) => state !== "running")

/** "3 jobs", "1 job". */
export const jobsCount = (n: number) => `${n.toLocaleString()} job${n === 1 ? "" : "s"}`

/** Up to five ids, then how many more: what a dialog names. */
export const someIds = (
  ids: ReadonlyArray<string>
) => (ids.length <= 5 ? ids.join(", ") : `${ids.slice(0, 5).join(", ")} and ${ids.length - 5} more`)

export interface BulkAction {
  readonly label: string
  readonly operation: "Cancel" | "Retry" | "Delete"
  /** What the toast says of the jobs it went through for. */
  readonly done: string
  readonly states: ReadonlyArray<JobState>
  readonly run: (client: OsqueueClientShape, id: string) => ReturnType<OsqueueClientShape["get"]>
  /** Asked first: it cannot be undone. */
  readonly confirm?: true
}

/** What can be done to several selected jobs at once, and the states each applies to. */
export const bulkActions: ReadonlyArray<BulkAction> = [
  {
    label: "Cancel",
    operation: "Cancel",
    done: "cancelled",
    states: ["queued", "delayed", "running", "failed-waiting-retry", "waiting-children"],
    run: (c, id) => c.cancel(id)
  },
  {
    label: "Redrive",
    operation: "Retry",
    done: "redriven",
    states: ["dead", "cancelled", "failed-waiting-retry"],
    run: (c, id) => c.retry(id)
  },
  {
    label: "Delete",
    operation: "Delete",
    done: "deleted",
    states: deletable,
    run: (c, id) => c.delete(id),
    confirm: true
  }
]
