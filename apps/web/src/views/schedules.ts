/**
 * The queue's schedules (`ListSchedules`; docs/architecture.md, "Schedules"): each one's id, the
 * job it enqueues, its rule (a cron expression in its time zone, or an interval), its next run
 * and its last run (a link to that job). Runs are job events, so while the view is shown it reads
 * the list when jobs change (at most once a second) and every 5 s. A role that may remove
 * schedules gets a button per row, which asks first.
 */
import type { Schedule } from "@osqueue/types"
import type { App, View } from "../app.js"
import { confirmAction } from "../confirm.js"
import { dateTime, h, relative, replace } from "../dom.js"
import { polled } from "./polled.js"

/** When it runs, as set: `0 3 * * *` (Europe/Paris), or every 1 min. */
const ruleOf = (schedule: Schedule): string => {
  if (schedule.cron !== undefined) return `${schedule.cron} (${schedule.timezone ?? "UTC"})`
  const ms = schedule.everyMs ?? 0
  return ms % 3_600_000 === 0
    ? `every ${ms / 3_600_000} h`
    : ms % 60_000 === 0
    ? `every ${ms / 60_000} min`
    : ms % 1_000 === 0
    ? `every ${ms / 1_000} s`
    : `every ${ms} ms`
}

const at = (time: number | undefined, now: number): HTMLElement =>
  time === undefined
    ? h("td", { class: "muted" }, "—")
    : h("td", { title: dateTime(time) }, `${dateTime(time)} (${relative(time, now)})`)

export const schedulesView = (app: App): View => {
  const body = h("tbody")
  const summary = h("p", { class: "muted", "aria-live": "polite" })
  const columns = ["Schedule", "Job type", "Runs", "Next run", "Last run", "Missed slots", ""]
  const element = h(
    "section",
    { "aria-labelledby": "schedules-title" },
    h("h2", { id: "schedules-title" }, "Schedules"),
    h(
      "p",
      { class: "muted" },
      "Jobs the leader enqueues at each slot of a cron expression or every interval, inside its commits: a failover neither loses nor repeats a slot. Set them with ",
      h("code", {}, "osqueue schedule set"),
      " or the client's ",
      h("code", {}, "upsertSchedule"),
      "."
    ),
    summary,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "schedules" },
        h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
        body
      )
    )
  )
  const remove = async (schedule: Schedule) => {
    const sure = await confirmAction({
      title: `Remove schedule ${schedule.id}?`,
      body: [`It enqueues no more ${schedule.job.type} jobs (${ruleOf(schedule)}). Jobs it already enqueued stay.`],
      confirm: `Remove ${schedule.id}`,
      cancel: "Keep it"
    })
    if (!sure) return
    const removed = await app.act((c) => c.removeSchedule(schedule.id))
    if (removed === undefined) return
    app.toast(`Schedule ${removed.id} removed`, "ok")
    void list.load()
  }

  const render = (schedules: ReadonlyArray<Schedule>) => {
    const now = Date.now()
    const removable = app.may("RemoveSchedule")
    summary.textContent = schedules.length === 0
      ? ""
      : `${schedules.length} schedule${schedules.length === 1 ? "" : "s"}`
    replace(
      body,
      schedules.length === 0
        ? h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, "No schedules."))
        : schedules.map((schedule) =>
          h(
            "tr",
            { "data-schedule-id": schedule.id },
            h("td", { class: "mono" }, schedule.id),
            h("td", {}, schedule.job.type),
            h("td", { class: "mono" }, ruleOf(schedule)),
            at(schedule.nextAt, now),
            schedule.lastRun === undefined
              ? h("td", { class: "muted" }, "—")
              : h(
                "td",
                { title: dateTime(schedule.lastRun.at) },
                `${dateTime(schedule.lastRun.slot)} `,
                h("a", { href: `#/jobs/${encodeURIComponent(schedule.lastRun.jobId)}` }, schedule.lastRun.jobId)
              ),
            h("td", {}, schedule.missed === "catch-up" ? "one catch-up run" : "skipped"),
            h(
              "td",
              {},
              removable
                ? h("button", { type: "button", class: "small danger", onclick: () => void remove(schedule) }, "Remove")
                : null
            )
          )
        )
    )
  }

  const list = polled(app, (c) => c.listSchedules, render)

  return { element, show: list.show, hide: list.hide }
}
