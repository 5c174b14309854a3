/**
 * The live log of the `watch` stream: job events as they commit, and leader changes. The page
 * keeps the last 1,000; the table is virtual (rows of one height, only those in view and a few
 * around them are in the DOM), so a busy queue costs the page the same as a quiet one.
 */
import { JobEventKind } from "@osqueue/types"
import type { App, View } from "../app.js"
import { timeZone } from "../config.js"
import { badge, clock, duration, field, h, replace } from "../dom.js"
import type { Activity } from "../model.js"
import { throttle } from "../signal.js"
import { jobLink } from "./job.js"

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

/** How long a claimed job had waited, or a completed one ran: both ride on their events. */
const took = (event: { readonly waitedMs?: number; readonly ranMs?: number }): string =>
  event.waitedMs !== undefined
    ? `waited ${duration(event.waitedMs)}`
    : event.ranMs !== undefined
    ? `ran ${duration(event.ranMs)}`
    : ""

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
      h(
        cell,
        { colspan: tag === "tr" ? 6 : undefined },
        leader.leaderUrl === null
          ? `no leader known (epoch ${leader.epoch})`
          : `${leader.leaderUrl} leads, epoch ${leader.epoch}`
      )
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
    tag === "tr" ? h(cell, { class: "num" }, took(event)) : null,
    h(cell, { class: "error-text" }, event.error ?? "")
  )
}

/** Rows drawn above and below the visible ones, so a fast scroll shows no gap. */
const overscan = 10

export const activityView = (app: App): View => {
  const kind = h(
    "select",
    { name: "kind" },
    h("option", { value: "" }, "every event"),
    JobEventKind.literals.map((k) => h("option", { value: k }, k)),
    h("option", { value: "leader" }, "leader changes")
  )
  const search = h("input", {
    type: "search",
    name: "search",
    placeholder: "job id, type or worker",
    autocomplete: "off"
  })
  const paused = h("input", { type: "checkbox", name: "paused" })
  const body = h("tbody")
  const count = h("p", { class: "muted", "aria-live": "off" })
  const scroller = h(
    "div",
    { class: "table-wrap activity-scroll" },
    h(
      "table",
      { class: "activity" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Time", "Event", "Job", "Type", "Attempt", "Worker", "Took", "Error"].map((c) =>
            h("th", { scope: "col" }, c)
          )
        )
      ),
      body
    )
  )
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
    scroller
  )
  let visible = false
  /** The entries that match the filters, newest first, as last drawn. */
  let shown: ReadonlyArray<Activity> = []
  let rowHeight = 0

  const matches = (entry: Activity): boolean => {
    if (kind.value === "leader") return entry._tag === "Leader"
    if (kind.value !== "" && (entry._tag !== "Job" || entry.event.kind !== kind.value)) return false
    const needle = search.value.trim().toLowerCase()
    if (needle === "") return true
    if (entry._tag === "Leader") return false
    const { event } = entry
    return [event.jobId, event.type, event.workerId ?? ""].some((text) => text.toLowerCase().includes(needle))
  }

  const spacer = (rows: number) =>
    rows <= 0
      ? null
      : h(
        "tr",
        { class: "spacer", "aria-hidden": "true" },
        h("td", { colspan: 8, style: `height: ${rows * (rowHeight || 32)}px` })
      )

  /** Draws the rows in view (and `overscan` around them) between two spacers as tall as the rest. */
  const draw = () => {
    if (shown.length === 0) return
    const height = rowHeight || 32
    const first = Math.max(0, Math.floor(scroller.scrollTop / height) - overscan)
    const last = Math.min(shown.length, Math.ceil((scroller.scrollTop + scroller.clientHeight) / height) + overscan)
    replace(
      body,
      spacer(first),
      shown.slice(first, last).map((entry) => activityRow(entry, "tr")),
      spacer(shown.length - last)
    )
    if (rowHeight === 0) {
      // Measured once, from a drawn row: every row has one height (no wrapping in the log).
      rowHeight = body.querySelector<HTMLElement>("tr:not(.spacer)")?.offsetHeight ?? 0
      if (rowHeight > 0) draw()
    }
  }

  const render = () => {
    if (!visible || paused.checked) return
    const entries = app.model.activity.value
    const before = shown[0]
    shown = entries.filter(matches)
    count.textContent = `${entries.length} events since this page opened (the last 1,000 are kept); the newest first${
      shown.length < entries.length ? `, ${shown.length} match` : ""
    }.`
    if (shown.length === 0) {
      replace(
        body,
        h(
          "tr",
          {},
          h(
            "td",
            { colspan: 8, class: "empty" },
            entries.length === 0
              ? "Waiting for events: enqueue, claim or finish a job and it shows here."
              : "No event matches."
          )
        )
      )
      return
    }
    // Scrolled down to read: new rows arrive above, so the rows being read stay where they are.
    const added = before === undefined ? 0 : shown.indexOf(before)
    if (scroller.scrollTop > 0 && added > 0) scroller.scrollTop += added * rowHeight
    draw()
  }
  const rerender = throttle(500, render)
  let frame: number | undefined
  scroller.addEventListener("scroll", () => {
    frame ??= requestAnimationFrame(() => {
      frame = undefined
      draw()
    })
  })
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
