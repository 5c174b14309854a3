/**
 * Counts by state (live, every second), charts over the broker's last half hour of 5 s samples
 * (throughput and failure rate, depth, wait and run times, commits), the leader, and a table of
 * every job type: counts in each state, throughput, failures, wait and run times, pause switch,
 * and its limit on claims (docs/architecture.md, "Limits on claims") with what it uses now.
 */
import type { JobState, LimitStatus, Stats, StatsSample } from "@osqueue/types"
import type { App, View } from "../app.js"
import { format, lineChart } from "../chart.js"
import { timeZone } from "../config.js"
import { badge, dateTime, duration, h, relative, replace } from "../dom.js"
import { activityRow } from "./activity.js"
import { stateLabel } from "./job.js"

const cards: ReadonlyArray<{ readonly state: JobState; readonly note: string }> = [
  { state: "queued", note: "ready to claim" },
  { state: "delayed", note: "waiting for their run time" },
  { state: "waiting-children", note: "flows' parents, waiting for their children" },
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
      "section",
      { class: "panel types-panel", "aria-labelledby": "types-title" },
      h(
        "h3",
        { id: "types-title" },
        "By type ",
        h(
          "small",
          { class: "muted" },
          "counts now; throughput and failures over the last minute; wait and run times in the latest 5 s with any"
        )
      ),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "types" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, "Type"),
              cards.map(({ state }) => h("th", { scope: "col", class: "num" }, stateLabel[state])),
              ["done/s", "failed", "wait p50 / p95", "run p50 / p95"].map((c) =>
                h("th", { scope: "col", class: "num" }, c)
              ),
              h("th", { scope: "col" }, "Claiming")
            )
          ),
          types
        )
      )
    ),
    h(
      "div",
      { class: "columns" },
      h(
        "section",
        { class: "panel", "aria-labelledby": "leader-title" },
        h("h3", { id: "leader-title" }, "Brokers"),
        leader
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

  const renderCharts = (samples: ReadonlyArray<StatsSample>) => {
    const times = samples.map((s) => s.at)
    const perSecond = (count: (s: StatsSample) => number) =>
      samples.map((s) => (s.intervalMs > 0 ? count(s) / (s.intervalMs / 1000) : 0))
    const ms = (pick: (s: StatsSample) => number | null) => samples.map(pick)
    replace(
      charts,
      samples.length === 0 ?
        h("p", { class: "muted empty" }, "Charts appear with the broker's first sample (every 5 s).") :
        [
          lineChart("Throughput", times, [
            { label: "enqueued", name: "enqueued", values: perSecond((s) => s.enqueued) },
            { label: "completed", name: "completed", values: perSecond((s) => s.completed) },
            { label: "dead", name: "dead", values: perSecond((s) => s.dead) },
            // Failed attempts among those that ended: a share, on its own axis.
            {
              label: "failure rate",
              name: "failure",
              right: true,
              values: samples.map((
                s
              ) => (s.completed + s.failed > 0 ? (100 * s.failed) / (s.completed + s.failed) : null))
            }
          ], { left: { unit: "jobs/s" }, right: { unit: "% failed" } }),
          lineChart("Queue depth", times, [
            { label: "queued", name: "queued", values: samples.map((s) => s.counts.queued) },
            { label: "running", name: "running", values: samples.map((s) => s.counts.running) },
            {
              label: "waiting",
              name: "delayed",
              values: samples.map((s) => s.counts.delayed + s.counts["failed-waiting-retry"])
            }
          ], { left: { unit: "jobs" } }),
          lineChart("Wait and run times", times, [
            { label: "wait p50", name: "wait", values: ms((s) => s.wait.p50) },
            { label: "wait p95", name: "wait-p95", values: ms((s) => s.wait.p95) },
            { label: "run p50", name: "run", values: ms((s) => s.run.p50) },
            { label: "run p95", name: "run-p95", values: ms((s) => s.run.p95) }
          ], { left: { unit: "ms" } }),
          lineChart("Commits", times, [
            { label: "commits", name: "commits", values: perSecond((s) => s.commits) },
            // Job changes per commit: how much each conditional write carried (idle renewals carry none).
            {
              label: "job events per commit",
              name: "batch",
              right: true,
              values: samples.map((s) => (s.commits > 0 ? s.events / s.commits : null))
            }
          ], { left: { unit: "/s" }, right: { unit: "events per commit" } })
        ]
    )
  }

  const renderLeader = () => {
    const info = app.connection.leader.value
    const broker = app.connection.broker.value
    const stats = app.model.stats.value
    const status = app.connection.status.value
    if (info === undefined || broker === undefined) {
      return replace(leader, h("dd", { class: "muted" }, "Not connected yet."))
    }
    const row = (label: string, ...value: Array<string | Node>) => [h("dt", {}, label), h("dd", {}, value)]
    const queueLimit = stats?.limits?.find((limit) => limit.type === undefined)
    replace(
      leader,
      row(
        "Leader",
        info.leaderUrl === null
          ? h("span", { class: "error-text" }, "none known (an election is under way)")
          : info.leaderUrl
      ),
      row("Epoch", String(info.epoch)),
      row("Leading since", info.since === null ? "–" : `${dateTime(info.since)} (${relative(info.since)})`),
      row("This page's broker", broker.self, " ", badge(broker.role)),
      row("Commit seq", stats === undefined ? "–" : stats.seq.toLocaleString()),
      row(
        "All time",
        stats === undefined
          ? "–"
          : `${stats.enqueuedTotal.toLocaleString()} enqueued, ${stats.completedTotal.toLocaleString()} completed, ${stats.deadTotal.toLocaleString()} dead-lettered`
      ),
      row("queue.json", stats === undefined ? "–" : `${(stats.stateBytes / 1024).toFixed(1)} KiB`),
      row("Queue's limit on claims", queueLimit === undefined ? "none" : limitText(queueLimit)),
      row(
        "Transport",
        status._tag === "Connected" ? (status.transport === "ws" ? "RPC over WebSocket" : "RPC over HTTP") : status._tag
      )
    )
  }

  /** A limit on claims and what its scope uses of it now: "running 1/2 · started 3/10 per 1m". */
  const limitText = (limit: LimitStatus): string =>
    [
      ...(limit.concurrency === undefined ? [] : [`running ${limit.running}/${limit.concurrency}`]),
      ...(limit.rate === undefined
        ? []
        : [`started ${limit.startsInWindow ?? 0}/${limit.rate.max} per ${duration(limit.rate.windowMs)}`])
    ].join(" · ")
  const limitBadge = (limit: LimitStatus | undefined) => {
    if (limit === undefined) return null
    const full = (limit.concurrency !== undefined && limit.running >= limit.concurrency) ||
      (limit.rate !== undefined && (limit.startsInWindow ?? 0) >= limit.rate.max)
    return h(
      "span",
      { class: "limit", title: "Limit on claims (osqueue limit set / POST /v1/limits)" },
      " ",
      badge(limitText(limit), full ? "failed-waiting-retry" : "queued")
    )
  }

  const renderTypes = (stats: Stats | undefined) => {
    const samples = app.model.samples.value
    const latest = samples.at(-1)
    const minute = samples.slice(-12).filter((s) => Object.keys(s.byType).length > 0)
    const known = [
      ...new Set([
        ...app.model.types.value,
        ...Object.keys(latest?.byType ?? {}),
        ...Object.keys(stats?.queuedByType ?? {}),
        ...(stats?.paused.types ?? []),
        ...(stats?.limits ?? []).flatMap((l) => (l.type === undefined ? [] : [l.type]))
      ])
    ].sort()
    const columns = cards.length + 6
    if (known.length === 0) {
      return replace(types, h("tr", {}, h("td", { colspan: columns, class: "empty" }, "No job types seen yet.")))
    }
    const seconds = minute.reduce((sum, s) => sum + s.intervalMs, 0) / 1000
    const pair = (p: { p50: number | null; p95: number | null } | undefined) =>
      p === undefined || p.p50 === null ? "–" : `${duration(p.p50)} / ${duration(p.p95 ?? p.p50)}`
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
          onclick: () =>
            void app.act((c) => (paused ? c.resume(type) : c.pause(type))).then((p) =>
              p && app.toast(`${type} ${paused ? "resumed" : "paused"}`, "ok")
            )
        }, paused ? "Resume" : "Pause")
        const now = latest?.byType[type]
        const completed = minute.reduce((sum, s) => sum + (s.byType[type]?.completed ?? 0), 0)
        const failed = minute.reduce((sum, s) => sum + (s.byType[type]?.failed ?? 0), 0)
        const timed = [...minute].reverse()
        const wait = timed.find((s) => s.byType[type]?.wait.p50 !== null && s.byType[type] !== undefined)?.byType[type]
          ?.wait
        const run = timed.find((s) => s.byType[type]?.run.p50 !== null && s.byType[type] !== undefined)?.byType[type]
          ?.run
        return h(
          "tr",
          { "data-type": type },
          h("td", {}, h("a", { href: `#/jobs?type=${encodeURIComponent(type)}` }, type)),
          cards.map(({ state }) => {
            // Queued is live (every second); the other counts come with the 5 s samples.
            const n = state === "queued" ? (stats?.queuedByType[type] ?? 0) : (now?.counts[state] ?? 0)
            return h(
              "td",
              { class: "num", "data-state": state },
              n === 0
                ? h("span", { class: "muted" }, "0")
                : h("a", { href: `#/jobs?type=${encodeURIComponent(type)}&state=${state}` }, n.toLocaleString())
            )
          }),
          h("td", { class: "num" }, seconds > 0 ? format(completed / seconds) : "–"),
          h("td", { class: "num" }, completed + failed > 0 ? `${format((100 * failed) / (completed + failed))}%` : "–"),
          h("td", { class: "num" }, pair(wait)),
          h("td", { class: "num" }, pair(run)),
          h(
            "td",
            {},
            paused ? badge("paused", "dead") : badge("on", "completed"),
            " ",
            app.may(paused ? "Resume" : "Pause") ? toggle : null,
            limitBadge(stats?.limits?.find((l) => l.type === type))
          )
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
    replace(
      recent,
      entries.length === 0
        ? h("li", { class: "empty" }, "Nothing has happened since this page opened.")
        : entries.slice(0, 8).map((entry) => activityRow(entry, "li"))
    )
  }
  const whenVisible = (f: () => void) => () => visible && f()
  app.model.stats.subscribe(whenVisible(() => {
    const stats = app.model.stats.value
    renderCounts(stats)
    renderTypes(stats)
    renderLeader()
  }))
  app.model.samples.subscribe(whenVisible(() => {
    renderCharts(app.model.samples.value)
    renderTypes(app.model.stats.value)
  }))
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
