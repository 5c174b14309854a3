/**
 * Counts by state, charts over the last five minutes (throughput, depth, commits), the leader,
 * and the queued jobs by type with a pause switch per type. All from the `watch` stream's
 * stats, one sample a second.
 */
import type { JobState, Stats } from "@osqueue/types"
import type { App, View } from "../app.js"
import { lineChart, rate } from "../chart.js"
import { timeZone } from "../config.js"
import { badge, dateTime, h, relative, replace } from "../dom.js"
import type { Sample } from "../model.js"
import { activityRow } from "./activity.js"
import { stateLabel } from "./jobs.js"

const cards: ReadonlyArray<{ readonly state: JobState; readonly note: string }> = [
  { state: "queued", note: "ready to claim" },
  { state: "delayed", note: "waiting for their run time" },
  { state: "running", note: "leased by a worker" },
  { state: "failed-waiting-retry", note: "failed, waiting their backoff" },
  { state: "dead", note: "dead-letter list" },
  { state: "completed", note: "in the retention window" },
  { state: "cancelled", note: "in the retention window" }
]

export const overviewView = (app: App): View => {
  const counts = h("div", { class: "cards" })
  const charts = h("div", { class: "charts" })
  const leader = h("dl", { class: "facts" })
  const types = h("tbody")
  const recent = h("ul", { class: "feed" })
  const element = h(
    "section",
    { "aria-labelledby": "overview-title" },
    h("h2", { id: "overview-title", class: "visually-hidden" }, "Overview"),
    counts,
    charts,
    h(
      "div",
      { class: "columns" },
      h("section", { class: "panel", "aria-labelledby": "leader-title" }, h("h3", { id: "leader-title" }, "Brokers"), leader),
      h(
        "section",
        { class: "panel", "aria-labelledby": "types-title" },
        h("h3", { id: "types-title" }, "Queued by type"),
        h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Type"), h("th", { scope: "col", class: "num" }, "Queued"), h("th", { scope: "col" }, "Claiming"))), types))
      ),
      h(
        "section",
        { class: "panel", "aria-labelledby": "recent-title" },
        h("h3", { id: "recent-title" }, "Latest activity ", h("a", { href: "#/activity", class: "small-link" }, "all")),
        recent
      )
    )
  )

  const renderCounts = (stats: Stats | undefined) =>
    replace(
      counts,
      cards.map(({ state, note }) =>
        h(
          "a",
          { class: `card card-${state}`, href: `#/jobs?state=${state}`, "data-count": state },
          h("span", { class: "card-label" }, stateLabel[state]),
          h("strong", { class: "card-value" }, stats === undefined ? "–" : stats.counts[state].toLocaleString()),
          h("small", {}, note)
        )
      )
    )

  const renderCharts = (samples: ReadonlyArray<Sample>) => {
    const commits = rate(samples, (s) => s.stats.seq)
    const events = rate(samples, (s) => s.events)
    replace(
      charts,
      lineChart("Throughput", "jobs/s", [
        { label: "enqueued", name: "enqueued", values: rate(samples, (s) => s.stats.enqueuedTotal) },
        { label: "completed", name: "completed", values: rate(samples, (s) => s.stats.completedTotal) },
        { label: "dead", name: "dead", values: rate(samples, (s) => s.stats.deadTotal) }
      ]),
      lineChart("Queue depth", "jobs", [
        { label: "queued", name: "queued", values: samples.map((s) => s.stats.counts.queued) },
        { label: "running", name: "running", values: samples.map((s) => s.stats.counts.running) },
        { label: "waiting", name: "delayed", values: samples.map((s) => s.stats.counts.delayed + s.stats.counts["failed-waiting-retry"]) }
      ]),
      lineChart("Commits", "/s", [
        { label: "commits/s", name: "commits", values: commits },
        // Job changes per commit: how much each conditional write carried (idle renewals carry none).
        { label: "job events per commit", name: "batch", values: commits.map((c, i) => (c > 0 ? (events[i] ?? 0) / c : 0)) }
      ])
    )
  }

  const renderLeader = () => {
    const info = app.connection.leader.value
    const broker = app.connection.broker.value
    const stats = app.model.stats.value
    const status = app.connection.status.value
    if (info === undefined || broker === undefined) return replace(leader, h("dd", { class: "muted" }, "Not connected yet."))
    const row = (label: string, ...value: Array<string | Node>) => [h("dt", {}, label), h("dd", {}, value)]
    replace(
      leader,
      row("Leader", info.leaderUrl === null ? h("span", { class: "error-text" }, "none known (an election is under way)") : info.leaderUrl),
      row("Epoch", String(info.epoch)),
      row("Leading since", info.since === null ? "–" : `${dateTime(info.since)} (${relative(info.since)})`),
      row("This page's broker", broker.self, " ", badge(broker.role)),
      row("Commit seq", stats === undefined ? "–" : stats.seq.toLocaleString()),
      row("All time", stats === undefined ? "–" : `${stats.enqueuedTotal.toLocaleString()} enqueued, ${stats.completedTotal.toLocaleString()} completed, ${stats.deadTotal.toLocaleString()} dead-lettered`),
      row("queue.json", stats === undefined ? "–" : `${(stats.stateBytes / 1024).toFixed(1)} KiB`),
      row("Transport", status._tag === "Connected" ? (status.transport === "ws" ? "RPC over WebSocket" : "RPC over HTTP") : status._tag)
    )
  }

  const renderTypes = (stats: Stats | undefined) => {
    const known = [...new Set([...app.model.types.value, ...Object.keys(stats?.queuedByType ?? {}), ...(stats?.paused.types ?? [])])].sort()
    if (known.length === 0) return replace(types, h("tr", {}, h("td", { colspan: 3, class: "empty" }, "No job types seen yet.")))
    replace(
      types,
      known.map((type) => {
        const paused = stats?.paused.all === true || (stats?.paused.types.includes(type) ?? false)
        const toggle = h("button", {
          type: "button",
          class: "small",
          "aria-pressed": String(paused),
          disabled: stats?.paused.all === true,
          title: stats?.paused.all === true ? "Every type is paused: resume all from the header" : "",
          onclick: () => void app.act((c) => (paused ? c.resume(type) : c.pause(type))).then((p) => p && app.toast(`${type} ${paused ? "resumed" : "paused"}`, "ok"))
        }, paused ? "Resume" : "Pause")
        return h(
          "tr",
          { "data-type": type },
          h("td", {}, h("a", { href: `#/jobs?type=${encodeURIComponent(type)}` }, type)),
          h("td", { class: "num" }, (stats?.queuedByType[type] ?? 0).toLocaleString()),
          h("td", {}, paused ? badge("paused", "dead") : badge("on", "completed"), " ", app.may(paused ? "Resume" : "Pause") ? toggle : null)
        )
      })
    )
  }

  // Drawn only while shown (the page keeps every view): shown again, it draws what is current.
  let visible = false
  const renderAll = () => {
    if (!visible) return
    const stats = app.model.stats.value
    renderCounts(stats)
    renderTypes(stats)
    renderLeader()
    renderCharts(app.model.samples.value)
    renderFeed()
  }
  const renderFeed = () => {
    const entries = app.model.activity.value
    replace(recent, entries.length === 0 ? h("li", { class: "empty" }, "Nothing has happened since this page opened.") : entries.slice(0, 8).map((entry) => activityRow(entry, "li")))
  }
  const whenVisible = (f: () => void) => () => visible && f()
  app.model.stats.subscribe(whenVisible(() => {
    const stats = app.model.stats.value
    renderCounts(stats)
    renderTypes(stats)
    renderLeader()
  }))
  app.model.samples.subscribe(whenVisible(() => renderCharts(app.model.samples.value)))
  app.connection.leader.subscribe(whenVisible(renderLeader))
  app.connection.broker.subscribe(whenVisible(renderLeader))
  app.connection.status.subscribe(whenVisible(renderLeader))
  timeZone.subscribe(whenVisible(renderAll))
  app.model.activity.subscribe(whenVisible(renderFeed))

  return {
    element,
    show: () => {
      visible = true
      renderAll()
    },
    hide: () => {
      visible = false
    }
  }
}
