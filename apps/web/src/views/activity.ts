/** The live log of the `watch` stream: job events as they commit, and leader changes. */
import { JobEventKind } from "@osqueue/types"
import type { App, View } from "../app.js"
import { badge, clock, field, h, replace } from "../dom.js"
import type { Activity } from "../model.js"
import { timeZone } from "../config.js"
import { throttle } from "../signal.js"
import { jobLink } from "./jobs.js"

const kindClass: Record<string, string> = {
  enqueued: "queued",
  claimed: "running",
  completed: "completed",
  failed: "failed-waiting-retry",
  retrying: "failed-waiting-retry",
  expired: "failed-waiting-retry",
  released: "queued",
  dead: "dead",
  cancelled: "cancelled",
  redriven: "queued"
}

/** One entry as a table row (the activity view) or a list item (the overview's feed). */
export const activityRow = (entry: Activity, tag: "tr" | "li"): HTMLElement => {
  const cell = tag === "tr" ? "td" : "span"
  if (entry._tag === "Leader") {
    const { leader } = entry
    return h(
      tag,
      { class: "leader-event" },
      h(cell, { class: "mono" }, clock(entry.at)),
      h(cell, {}, badge("leader", "leader")),
      h(cell, { colspan: tag === "tr" ? 5 : undefined }, leader.leaderUrl === null
        ? `no leader known (epoch ${leader.epoch})`
        : `${leader.leaderUrl} leads, epoch ${leader.epoch}`)
    )
  }
  const { event } = entry
  return h(
    tag,
    { "data-kind": event.kind, "data-job-id": event.jobId },
    h(cell, { class: "mono" }, clock(event.at)),
    h(cell, {}, badge(event.kind, kindClass[event.kind])),
    h(cell, {}, jobLink(event.jobId)),
    h(cell, {}, event.type),
    tag === "tr" ? h(cell, { class: "num" }, event.attempt > 0 ? `#${event.attempt}` : "") : null,
    h(cell, { class: "mono" }, event.workerId ?? ""),
    h(cell, { class: "error-text" }, event.error ?? "")
  )
}

export const activityView = (app: App): View => {
  const kind = h("select", { name: "kind" }, h("option", { value: "" }, "every event"), JobEventKind.literals.map((k) => h("option", { value: k }, k)), h("option", { value: "leader" }, "leader changes"))
  const search = h("input", { type: "search", name: "search", placeholder: "job id, type or worker", autocomplete: "off" })
  const paused = h("input", { type: "checkbox", name: "paused" })
  const body = h("tbody")
  const count = h("p", { class: "muted", "aria-live": "off" })
  const element = h(
    "section",
    { "aria-labelledby": "activity-title" },
    h("h2", { id: "activity-title" }, "Activity"),
    h(
      "form",
      { class: "toolbar", onsubmit: (e: Event) => e.preventDefault() },
      field("Show", kind),
      field("Find", search),
      h("label", { class: "check" }, paused, " Freeze the log"),
      h("button", { type: "button", onclick: () => app.model.clearActivity() }, "Clear")
    ),
    count,
    h("div", { class: "table-wrap" }, h("table", { class: "activity" }, h("thead", {}, h("tr", {}, ["Time", "Event", "Job", "Type", "Attempt", "Worker", "Error"].map((c) => h("th", { scope: "col" }, c)))), body))
  )
  let visible = false

  const matches = (entry: Activity): boolean => {
    if (kind.value === "leader") return entry._tag === "Leader"
    if (kind.value !== "" && (entry._tag !== "Job" || entry.event.kind !== kind.value)) return false
    const needle = search.value.trim().toLowerCase()
    if (needle === "") return true
    if (entry._tag === "Leader") return false
    const { event } = entry
    return [event.jobId, event.type, event.workerId ?? ""].some((text) => text.toLowerCase().includes(needle))
  }

  const render = () => {
    if (!visible || paused.checked) return
    const entries = app.model.activity.value
    const shown = entries.filter(matches).slice(0, 300)
    count.textContent = `${entries.length} events since this page opened; the newest first${shown.length < entries.length ? `, ${shown.length} shown` : ""}.`
    replace(
      body,
      shown.length === 0
        ? h("tr", {}, h("td", { colspan: 7, class: "empty" }, entries.length === 0 ? "Waiting for events: enqueue, claim or finish a job and it shows here." : "No event matches."))
        : shown.map((entry) => activityRow(entry, "tr"))
    )
  }
  const rerender = throttle(200, render)
  for (const control of [kind, search, paused]) control.addEventListener("input", render)
  app.model.activity.subscribe(rerender)
  timeZone.subscribe(rerender)

  return {
    element,
    show: () => {
      visible = true
      render()
    },
    hide: () => {
      visible = false
    }
  }
}
