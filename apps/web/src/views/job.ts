/**
 * A job: its state's label, a link to it, the actions its state and the token's role allow, and
 * its detail page (the job's fields, attempts and progress; delete and a new priority there).
 * The page reloads when the `watch` stream says jobs changed.
 */
import type { Attempt, Job, JobState } from "@osqueue/types"
import { Priority } from "@osqueue/types"
import * as Schema from "effect/Schema"
import { type App, describeError, type View } from "../app.js"
import { timeZone } from "../config.js"
import { confirmAction } from "../confirm.js"
import { badge, dateTime, duration, field, h, json, relative, replace } from "../dom.js"
import { throttle } from "../signal.js"

export const stateLabel: Record<JobState, string> = {
  queued: "queued",
  delayed: "delayed",
  running: "running",
  "failed-waiting-retry": "retry-waiting",
  dead: "dead",
  completed: "completed",
  cancelled: "cancelled",
  "waiting-children": "waiting-children"
}

export const jobLink = (id: string): HTMLAnchorElement => h("a", { href: `#/jobs/${encodeURIComponent(id)}` }, id)

/** The buttons a job's state and the token's role allow (the broker enforces the same rules). */
export const jobActions = (app: App, job: Job, after: () => void): Array<HTMLButtonElement> => {
  const button = (label: string, title: string, run: () => Promise<unknown>) =>
    h("button", {
      type: "button",
      class: "small",
      title,
      "aria-label": `${label} ${job.id}`,
      onclick: async (event: Event) => {
        const target = event.currentTarget as HTMLButtonElement
        target.disabled = true
        const done = await run()
        target.disabled = false
        if (done !== undefined) after()
      }
    }, label)
  const actions: Array<HTMLButtonElement> = []
  if (app.may("Cancel") && job.state !== "completed" && job.state !== "dead" && job.state !== "cancelled") {
    actions.push(
      button(
        "Cancel",
        job.children === undefined
          ? "Cancel the job (a running one loses its lease)"
          : "Cancel the job and its unfinished children (running ones lose their leases)",
        () => app.act((c) => c.cancel(job.id)).then((j) => j && app.toast(`${j.id} cancelled`, "ok"))
      )
    )
  }
  if (app.may("Retry") && job.state === "dead") {
    actions.push(
      button(
        "Redrive",
        "Back to the queue from the dead-letter list, with fresh attempts",
        () => app.act((c) => c.retry(job.id)).then((j) => j && app.toast(`${j.id} redriven`, "ok"))
      )
    )
  }
  if (app.may("Retry") && job.state === "cancelled") {
    actions.push(
      button(
        "Requeue",
        "Back to the queue, with fresh attempts",
        () => app.act((c) => c.retry(job.id)).then((j) => j && app.toast(`${j.id} requeued`, "ok"))
      )
    )
  }
  if (app.may("Retry") && job.state === "failed-waiting-retry") {
    actions.push(
      button(
        "Retry now",
        "Skip the rest of the backoff",
        () => app.act((c) => c.retry(job.id)).then((j) => j && app.toast(`${j.id} queued again`, "ok"))
      )
    )
  }
  if (app.may("Promote") && job.state === "delayed") {
    actions.push(
      button(
        "Run now",
        "Make it claimable now instead of at its time",
        () => app.act((c) => c.promote(job.id)).then((j) => j && app.toast(`${j.id} runs now`, "ok"))
      )
    )
  }
  return actions
}

/**
 * A running job's progress as a bar (for `{ percent }`); a finished job keeps the last progress
 * a heartbeat brought, which is history, not how far it got: shown as text, never as a bar.
 */
const progressOf = (job: Job): HTMLElement => {
  const { progress } = job
  const percent =
    typeof progress === "object" && progress !== null && "percent" in progress && typeof progress.percent === "number"
      ? progress.percent
      : undefined
  if (job.state !== "running") {
    const last = percent === undefined ? JSON.stringify(progress) : `${percent}%`
    return h(
      "span",
      { class: "muted", "data-progress": "last" },
      `last reported ${last} while it ran (not updated since)`
    )
  }
  return percent === undefined
    ? h("pre", {}, json(progress))
    : h("span", {}, h("progress", { max: 100, value: percent }), ` ${percent}%`)
}

/**
 * A job's attempts with where it was put back in the queue by hand: a redrive or requeue starts
 * attempts from 1 again, so an attempt numbered no higher than the one before it (which was not
 * released: a release gives its attempt back) follows one. The job keeps its last few attempts
 * only, so earlier redrives may be out of sight.
 */
export type HistoryRow = { readonly _tag: "Attempt"; readonly attempt: Attempt } | { readonly _tag: "Redriven" }

export const historyRows = (history: ReadonlyArray<Attempt>): Array<HistoryRow> =>
  history.flatMap((attempt, i): Array<HistoryRow> => {
    const before = history[i - 1]
    const redriven = before !== undefined && before.outcome !== "released" && attempt.attempt <= before.attempt
    return redriven ? [{ _tag: "Redriven" }, { _tag: "Attempt", attempt }] : [{ _tag: "Attempt", attempt }]
  })

const times = (n: number) => (n === 1 ? "once" : `${n} times`)

/** A job that has not started has a priority to change. */
const reprioritizable: ReadonlyArray<JobState> = ["queued", "delayed", "failed-waiting-retry", "waiting-children"]

/**
 * A flow's parent's children (docs/flows.md): each a link, with how it ended as the parent keeps
 * it (its result or error), or that it has not ended yet.
 */
const childrenSection = (job: Job) => {
  const children = job.children ?? []
  if (children.length === 0) return null
  const ended = children.filter((id) => job.childResults?.[id] !== undefined).length
  const endOf = (id: string) => {
    const end = job.childResults?.[id]
    if (end === undefined) return [h("td", {}, h("span", { class: "muted" }, "not ended yet")), h("td", {}, "")]
    const detail = end.state === "completed"
      ? end.resultOmitted === true
        ? h("span", { class: "muted" }, "result too large to keep in the parent: see the child")
        : end.result === undefined
        ? ""
        : h("pre", {}, json(end.result))
      : end.error ?? ""
    return [h("td", {}, badge(end.state, end.state === "deleted" ? "cancelled" : end.state)), h("td", {}, detail)]
  }
  return [
    h("h3", {}, "Children"),
    h(
      "p",
      { class: "muted" },
      `${ended} of ${children.length} ended. `,
      job.onChildFailure === "ignore"
        ? "A child that fails is left out: the job runs with the others' results."
        : "A child that fails sends this job to the dead-letter list."
    ),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "children" },
        h("thead", {}, h("tr", {}, ["Child", "Ended", "Result or error"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, children.map((id) => h("tr", {}, h("td", {}, jobLink(id)), ...endOf(id))))
      )
    )
  ]
}

const decodePriority = Schema.decodeUnknownEither(Priority)

export const jobView = (app: App): View => {
  const content = h("div")
  const element = h(
    "section",
    { "aria-labelledby": "job-title" },
    h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")),
    content
  )
  let id: string | undefined

  /** Asks, then removes the job for good and goes back to the list. */
  const remove = async (job: Job) => {
    const sure = await confirmAction({
      title: `Delete ${job.id}?`,
      body: [
        `${job.id} (${job.type}, ${
          stateLabel[job.state]
        }) is removed from the queue for good, with its payload, result and history.`
      ],
      confirm: `Delete ${job.id}`,
      cancel: "Keep it"
    })
    if (!sure) return
    const deleted = await app.act((c) => c.delete(job.id))
    if (deleted === undefined) return
    app.toast(`${deleted.id} deleted`, "ok")
    window.location.hash = "#/jobs"
  }

  /** A new priority for a job that has not started: checked here as the broker would, then set. */
  const priorityForm = (job: Job) => {
    const input = h("input", {
      type: "number",
      name: "priority",
      value: job.priority,
      step: 1,
      size: 8,
      required: true,
      title: "Lower runs first"
    })
    return h(
      "form",
      {
        class: "priority-form",
        onsubmit: async (event: Event) => {
          event.preventDefault()
          const decoded = decodePriority(input.valueAsNumber)
          if (decoded._tag === "Left") {
            input.setAttribute("aria-invalid", "true")
            return app.toast("A priority is a whole number from -1,000,000 to 1,000,000 (lower runs first)", "error")
          }
          input.removeAttribute("aria-invalid")
          const changed = await app.act((c) => c.setPriority(job.id, decoded.right))
          if (changed === undefined) return
          app.toast(`${changed.id} has priority ${changed.priority}`, "ok")
          void load()
        }
      },
      field("New priority", input),
      h("button", { type: "submit", class: "small" }, "Set priority")
    )
  }

  /** The page's own controls, after those the list rows have too. */
  const pageControls = (job: Job): Array<HTMLElement> => [
    ...(app.may("SetPriority") && reprioritizable.includes(job.state) ? [priorityForm(job)] : []),
    ...(app.may("Delete") && job.state !== "running"
      ? [
        h("button", {
          type: "button",
          class: "small danger",
          "aria-label": `Delete ${job.id}`,
          title: "Remove the job for good",
          onclick: () => void remove(job)
        }, "Delete")
      ]
      : [])
  ]

  const render = (job: Job) => {
    const row = (label: string, value: string | Node | undefined) =>
      value === undefined || value === "" ? null : [h("dt", {}, label), h("dd", {}, value)]
    const time = (at: number | undefined) => (at === undefined ? undefined : `${dateTime(at)} (${relative(at)})`)
    const rows = historyRows(job.history)
    const redrives = rows.filter((r) => r._tag === "Redriven").length
    // The last error of a job that went on (redriven, then completed) is an earlier attempt's.
    const errorIsCurrent = job.state === "dead" || job.state === "failed-waiting-retry"
    replace(
      content,
      h("h2", { id: "job-title" }, job.id, " ", badge(stateLabel[job.state], job.state)),
      h("div", { class: "toolbar job-controls" }, jobActions(app, job, () => void load()), pageControls(job)),
      h(
        "dl",
        { class: "facts" },
        row("Type", job.type),
        row("Priority", String(job.priority)),
        row(
          "Attempts",
          redrives === 0
            ? `${job.attempts} of ${job.maxAttempts} (claimed ${times(job.claims)})`
            : `${job.attempts} of ${job.maxAttempts} since it was put back in the queue by hand (redriven ${
              times(redrives)
            }; claimed ${times(job.claims)} in all)`
        ),
        row("Queue position", `seq ${job.seq}`),
        row("Created", time(job.createdAt)),
        row(
          job.state === "delayed" || job.state === "failed-waiting-retry" ? "Runs at" : "Runnable since",
          time(job.runAt)
        ),
        row("Started", time(job.startedAt)),
        row("Finished", time(job.finishedAt)),
        row(
          "Took",
          job.startedAt === undefined || job.finishedAt === undefined
            ? undefined
            : duration(job.finishedAt - job.startedAt)
        ),
        row("Idempotency key", job.idempotencyKey),
        row("Parent", job.parentId === undefined ? undefined : jobLink(job.parentId)),
        row(
          "Lease",
          job.lease === undefined
            ? undefined
            : `${job.lease.workerId}, expires ${relative(job.lease.expiresAt)} (epoch ${job.lease.epoch})`
        ),
        row(
          "Backoff",
          job.backoff._tag === "fixed"
            ? `fixed ${job.backoff.delayMs} ms`
            : `exponential from ${job.backoff.baseMs} ms to ${job.backoff.maxMs} ms, jitter ${job.backoff.jitter}`
        ),
        row("Progress", job.progress === undefined ? undefined : progressOf(job))
      ),
      job.lastError === undefined
        ? null
        : errorIsCurrent
        ? [h("h3", {}, "Last error"), h("pre", { class: "error-text" }, job.lastError)]
        : [
          h("h3", {}, "Earlier error"),
          h("p", { class: "muted" }, `From an earlier attempt: the job is ${stateLabel[job.state]} now.`),
          h("pre", { class: "earlier-error" }, job.lastError)
        ],
      h("h3", {}, "Payload"),
      h("pre", {}, json(job.payload)),
      job.result === undefined ? null : [h("h3", {}, "Result"), h("pre", {}, json(job.result))],
      childrenSection(job),
      h("h3", {}, "Attempts"),
      job.history.length === 0
        ? h("p", { class: "muted" }, "Not run yet.")
        : h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "history" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["#", "Worker", "Started", "Ended", "Outcome", "Error"].map((c) => h("th", { scope: "col" }, c))
              )
            ),
            h(
              "tbody",
              {},
              rows.map((r) =>
                r._tag === "Redriven"
                  ? h(
                    "tr",
                    { class: "redriven" },
                    h(
                      "td",
                      { colspan: 6 },
                      badge("redriven", "redriven"),
                      " put back in the queue by hand, with fresh attempts"
                    )
                  )
                  : h(
                    "tr",
                    {},
                    h("td", { class: "num" }, r.attempt.attempt),
                    h("td", { class: "mono" }, r.attempt.workerId),
                    h("td", {}, dateTime(r.attempt.startedAt)),
                    h("td", {}, r.attempt.endedAt === undefined ? "" : dateTime(r.attempt.endedAt)),
                    h("td", {}, badge(r.attempt.outcome)),
                    h("td", { class: "error-text" }, r.attempt.error ?? "")
                  )
              )
            )
          )
        )
    )
  }

  let progressTimer: ReturnType<typeof setTimeout> | undefined
  let shownJob: Job | undefined
  const load = async () => {
    if (id === undefined) return
    const wanted = id
    try {
      const job = await app.connection.run((c) => c.get(wanted))
      if (wanted !== id) return
      shownJob = job
      render(job)
      // Progress comes with heartbeats, which are not events: while the job runs, look again.
      clearTimeout(progressTimer)
      if (job.state === "running") progressTimer = setTimeout(reload, 1_000)
    } catch (error) {
      if (wanted !== id) return
      const gone = typeof error === "object" && error !== null && "_tag" in error && error._tag === "JobNotFound"
      replace(
        content,
        h("h2", { id: "job-title" }, wanted),
        h(
          "p",
          { class: gone ? "empty" : "error-text" },
          gone
            ? "This job is not in the queue's hot state: it never existed, or it finished and left the retention window."
            : describeError(error)
        )
      )
    }
  }
  const reload = throttle(300, () => void load())
  app.model.changed.subscribe((ids) => id !== undefined && ids.has(id) && reload())
  timeZone.subscribe(() => shownJob !== undefined && shownJob.id === id && render(shownJob))

  return {
    element,
    show: ([jobId]) => {
      id = jobId === undefined ? undefined : decodeURIComponent(jobId)
      replace(content, h("p", { class: "muted" }, "Loading…"))
      void load()
    },
    hide: () => {
      id = undefined
      clearTimeout(progressTimer)
    }
  }
}
