/**
 * The workers the broker has seen within a lease TTL (`Workers`): each one's id, the running jobs
 * it holds, and when it last claimed, heartbeat or polled. Heartbeats are not events, so while
 * the view is shown it reads the list when jobs change (at most once a second) and every 5 s.
 */
import type { WorkerInfo } from "@osqueue/types"
import type { App, View } from "../app.js"
import { dateTime, h, relative, replace } from "../dom.js"
import { polled } from "./polled.js"

export const workersView = (app: App): View => {
  const body = h("tbody")
  const summary = h("p", { class: "muted", "aria-live": "polite" })
  const element = h(
    "section",
    { "aria-labelledby": "workers-title" },
    h("h2", { id: "workers-title" }, "Workers"),
    h(
      "p",
      { class: "muted" },
      "Workers seen in the last lease TTL: those holding jobs, and idle ones waiting for work on this broker (a broker that took over meets them at their next claim)."
    ),
    summary,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "workers" },
        h("thead", {}, h("tr", {}, ["Worker", "Jobs held", "Last seen"].map((c) => h("th", { scope: "col" }, c)))),
        body
      )
    )
  )
  const render = (workers: ReadonlyArray<WorkerInfo>) => {
    const now = Date.now()
    summary.textContent = workers.length === 0
      ? ""
      : `${workers.length} worker${workers.length === 1 ? "" : "s"}, holding ${
        workers.reduce((n, w) => n + w.jobs, 0)
      } job(s)`
    replace(
      body,
      workers.length === 0
        ? h("tr", {}, h("td", { colspan: 3, class: "empty" }, "No worker seen in the last lease TTL."))
        : workers.map((worker) =>
          h(
            "tr",
            { "data-worker-id": worker.id },
            h("td", { class: "mono" }, worker.id),
            h("td", { class: "num" }, worker.jobs),
            h("td", { title: dateTime(worker.lastSeenAt) }, relative(worker.lastSeenAt, now))
          )
        )
    )
  }

  const list = polled(app, (c) => c.workers, render)

  return { element, show: list.show, hide: list.hide }
}
