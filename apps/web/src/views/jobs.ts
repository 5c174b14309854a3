/**
 * The jobs table (filter by state and type, paging by `seq` cursor, bulk actions on ticked rows,
 * purge by state and type) and a job's detail page, with the actions its state allows (and, on
 * the page, delete and a new priority). Both reload when the `watch` stream says jobs changed.
 */
import type { OsqueueClientShape } from "@osqueue/client"
import type { Attempt, Job, JobPage, JobState, ListQuery } from "@osqueue/types"
import { jobStates, maxSearchLength, Priority } from "@osqueue/types"
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

const isState = (value: string | null): value is JobState => jobStates.some((state) => state === value)

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
        "Cancel the job (a running one loses its lease)",
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

/** Every state but running: a running job's worker holds a lease, which a cancel revokes first. */
const deletable: ReadonlyArray<JobState> = jobStates.filter((state) => state !== "running")

/** "3 jobs", "1 job". */
const jobsCount = (n: number) => `${n.toLocaleString()} job${n === 1 ? "" : "s"}`

/** Up to five ids, then how many more: what a dialog names. */
const someIds = (
  ids: ReadonlyArray<string>
) => (ids.length <= 5 ? ids.join(", ") : `${ids.slice(0, 5).join(", ")} and ${ids.length - 5} more`)

/** The worker that holds the job, or that last ran it. */
const workerOf = (job: Job): string => job.lease?.workerId ?? job.history.at(-1)?.workerId ?? ""

export const jobLink = (id: string): HTMLAnchorElement => h("a", { href: `#/jobs/${encodeURIComponent(id)}` }, id)

/** How long the job ran (its last attempt): finished − started, or so far while it runs. */
const tookOf = (job: Job, now: number): string =>
  job.startedAt === undefined
    ? ""
    : job.finishedAt !== undefined && job.finishedAt >= job.startedAt
    ? duration(job.finishedAt - job.startedAt)
    : job.state === "running"
    ? `${duration(now - job.startedAt)} so far`
    : ""

interface BulkAction {
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
const bulkActions: ReadonlyArray<BulkAction> = [
  {
    label: "Cancel",
    operation: "Cancel",
    done: "cancelled",
    states: ["queued", "delayed", "running", "failed-waiting-retry"],
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

/** The states a purge may empty (not running: cancel those first). */
const purgeable = deletable

export const jobsView = (app: App): View => {
  const state = h(
    "select",
    { name: "state" },
    h("option", { value: "" }, "any state"),
    jobStates.map((s) => h("option", { value: s }, stateLabel[s]))
  )
  const type = h("input", { name: "type", list: "job-types", placeholder: "any type", autocomplete: "off", size: 12 })
  const search = h("input", {
    type: "search",
    name: "search",
    placeholder: "id, payload or error",
    autocomplete: "off",
    size: 16,
    maxlength: maxSearchLength
  })
  const order = h(
    "select",
    { name: "order" },
    h("option", { value: "desc" }, "newest first"),
    h("option", { value: "asc" }, "oldest first")
  )
  const limit = h("select", { name: "limit" }, [25, 50, 100].map((n) => h("option", { value: n }, String(n))))
  const types = h("datalist", { id: "job-types" })
  const redriveAll = h("button", { type: "button", onclick: () => void redrive() }, "Redrive all dead")
  const goTo = h("input", { name: "id", placeholder: "job-42", autocomplete: "off", size: 10 })
  const open = h(
    "form",
    {
      class: "toolbar go-to",
      onsubmit: (event: Event) => {
        event.preventDefault()
        const id = goTo.value.trim()
        if (id !== "") window.location.hash = `#/jobs/${encodeURIComponent(id)}`
      }
    },
    field("Open a job by id", goTo),
    h("button", { type: "submit" }, "Open")
  )
  const body = h("tbody")
  const summary = h("p", { class: "muted", "aria-live": "polite" })
  const previous = h("button", { type: "button", onclick: () => page(cursors.pop()) }, "← Previous")
  const next = h("button", { type: "button" }, "Next →")
  const selectAll = h("input", { type: "checkbox", "aria-label": "Select every job on this page" })
  const selection = h("span", { class: "muted" })
  const bulkButtons = bulkActions.map((action) =>
    h(
      "button",
      { type: "button", class: "small", "data-bulk": action.label, onclick: () => void bulk(action) },
      `${action.label} selected`
    )
  )
  const bulkBar = h("div", { class: "toolbar bulk" }, selection, bulkButtons)
  const purgeState = h(
    "select",
    { name: "purge-state" },
    purgeable.map((s) => h("option", { value: s, selected: s === "dead" }, stateLabel[s]))
  )
  const purgeType = h("input", {
    name: "purge-type",
    list: "job-types",
    placeholder: "every type",
    autocomplete: "off",
    size: 12
  })
  const purgeForm = h(
    "form",
    {
      class: "toolbar purge",
      onsubmit: (e: Event) => {
        e.preventDefault()
        void purge()
      }
    },
    field("Purge", purgeState),
    field("of type", purgeType),
    h("button", { type: "submit", class: "danger" }, "Purge…")
  )
  const table = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "jobs" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, selectAll),
          ["Job", "Type", "State", "Priority", "Attempts", "Worker", "Created", "Runs", "Finished", "Took", ""].map((
            c
          ) => h("th", { scope: "col" }, c))
        )
      ),
      body
    )
  )
  const element = h(
    "section",
    { "aria-labelledby": "jobs-title" },
    h("div", { class: "heading" }, h("h2", { id: "jobs-title" }, "Jobs"), open),
    h(
      "form",
      {
        class: "toolbar",
        onsubmit: (e: Event) => {
          e.preventDefault()
          filter()
        }
      },
      field("State", state),
      field("Type", type),
      field("Search", search),
      field("Order", order),
      types,
      field("Per page", limit),
      h("button", { type: "submit" }, "Filter"),
      redriveAll
    ),
    summary,
    bulkBar,
    table,
    h("nav", { class: "pager", "aria-label": "Pages" }, previous, next),
    purgeForm
  )

  let visible = false
  let after: number | undefined
  const cursors: Array<number | undefined> = []
  let current: JobPage | undefined
  /** The jobs ticked on this page (kept across reloads while they are listed). */
  const selected = new Set<string>()

  const query = (): ListQuery => ({
    ...(isState(state.value) ? { state: state.value } : {}),
    ...(type.value.trim() === "" ? {} : { type: type.value.trim() }),
    ...(search.value === "" ? {} : { search: search.value }),
    order: order.value === "asc" ? "asc" : "desc",
    ...(after === undefined ? {} : { after }),
    limit: Number(limit.value)
  })

  const selectedJobs = () => (current?.jobs ?? []).filter((job) => selected.has(job.id))

  const renderSelection = () => {
    const jobs = selectedJobs()
    selection.textContent = jobs.length === 0 ? "Tick jobs to act on several at once." : `${jobs.length} selected:`
    bulkActions.forEach((action, i) => {
      const button = bulkButtons[i]!
      const applicable = jobs.filter((job) => action.states.includes(job.state)).length
      button.hidden = !app.may(action.operation)
      button.disabled = applicable === 0
      button.textContent = `${action.label} ${applicable === 0 ? "selected" : applicable}`
    })
    const listed = current?.jobs.length ?? 0
    selectAll.checked = listed > 0 && jobs.length === listed
    selectAll.indeterminate = jobs.length > 0 && jobs.length < listed
    bulkBar.hidden = !bulkActions.some((action) => app.may(action.operation))
  }

  const render = () => {
    const jobs = current?.jobs ?? []
    const now = Date.now()
    for (const id of [...selected]) if (!jobs.some((job) => job.id === id)) selected.delete(id)
    if (jobs.length === 0) {
      const filtered = state.value !== "" || type.value.trim() !== "" || search.value !== ""
      replace(
        body,
        h(
          "tr",
          {},
          h(
            "td",
            { colspan: 12, class: "empty" },
            filtered
              ? "No jobs match these filters."
              : ["No jobs in the hot state yet. Submit some from the ", h("a", { href: "#/produce" }, "Producer"), "."]
          )
        )
      )
    } else {
      replace(
        body,
        jobs.map((job) =>
          h(
            "tr",
            { "data-job-id": job.id, "data-state": job.state },
            h(
              "td",
              {},
              h("input", {
                type: "checkbox",
                "aria-label": `Select ${job.id}`,
                checked: selected.has(job.id),
                onchange: (event: Event) => {
                  if ((event.currentTarget as HTMLInputElement).checked) selected.add(job.id)
                  else selected.delete(job.id)
                  renderSelection()
                }
              })
            ),
            h("td", {}, jobLink(job.id)),
            h("td", {}, job.type),
            h("td", {}, badge(stateLabel[job.state], job.state)),
            h("td", { class: "num" }, job.priority),
            h("td", { class: "num" }, `${job.attempts}/${job.maxAttempts}`),
            h("td", { class: "mono" }, workerOf(job)),
            h("td", { title: dateTime(job.createdAt) }, relative(job.createdAt, now)),
            h(
              "td",
              { title: dateTime(job.runAt) },
              job.state === "delayed" || job.state === "failed-waiting-retry" ? relative(job.runAt, now) : ""
            ),
            h(
              "td",
              { title: job.finishedAt === undefined ? "" : dateTime(job.finishedAt) },
              job.finishedAt === undefined ? "" : relative(job.finishedAt, now)
            ),
            h("td", { class: "num" }, tookOf(job, now)),
            h("td", { class: "actions" }, jobActions(app, job, () => void load()))
          )
        )
      )
    }
    summary.textContent = jobs.length === 0
      ? ""
      : `${jobs.length} job${jobs.length === 1 ? "" : "s"} on this page, ${
        order.value === "asc" ? "oldest" : "newest"
      } first`
    previous.disabled = cursors.length === 0
    next.disabled = current?.next === undefined
    const dead = app.model.stats.value?.counts.dead ?? 0
    redriveAll.disabled = dead === 0
    redriveAll.textContent = type.value.trim() === ""
      ? `Redrive all dead (${dead})`
      : `Redrive dead ${type.value.trim()} jobs`
    renderSelection()
  }

  selectAll.addEventListener("change", () => {
    for (const job of current?.jobs ?? []) {
      if (selectAll.checked) selected.add(job.id)
      else selected.delete(job.id)
    }
    render()
  })

  /**
   * Runs the action on each selected job it applies to (one request each, a few at a time), then
   * says how it went; a delete asks first, naming the jobs.
   */
  const bulk = async (action: BulkAction) => {
    const jobs = selectedJobs().filter((job) => action.states.includes(job.state))
    if (jobs.length === 0) return
    if (action.confirm === true) {
      const ids = jobs.map((job) => job.id)
      const sure = await confirmAction({
        title: `${action.label} ${jobsCount(jobs.length)}?`,
        body: [`${someIds(ids)} will be removed from the queue for good, with their payloads, results and history.`],
        confirm: `${action.label} ${jobsCount(jobs.length)}`
      })
      if (!sure) return
    }
    let done = 0
    const failures: Array<string> = []
    const queue = [...jobs]
    await Promise.all(Array.from({ length: Math.min(8, queue.length) }, async () => {
      for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
        try {
          const id = job.id
          await app.connection.run((c) => action.run(c, id))
          done++
        } catch (error) {
          failures.push(`${job.id}: ${describeError(error)}`)
        }
      }
    }))
    selected.clear()
    if (done > 0) app.toast(`${jobsCount(done)} ${action.done}`, "ok")
    if (failures.length > 0) {
      app.toast(
        `${failures.length} not ${action.done}: ${failures.slice(0, 3).join("; ")}${failures.length > 3 ? "; …" : ""}`,
        "error"
      )
    }
    void load()
  }

  /**
   * How many jobs a purge would remove, as the broker counts them now: the live counts for every
   * type; for one type, its jobs listed when they fit one page, else the per-type count of the
   * broker's latest sample (at most 5 s old). Undefined when neither is known.
   */
  const purgeCount = async (
    target: JobState,
    only: string | undefined
  ): Promise<{ count: number; exact: boolean } | undefined> => {
    if (only === undefined) {
      const stats = await app.act((c) => c.stats)
      return stats === undefined ? undefined : { count: stats.counts[target], exact: true }
    }
    const listed = await app.act((c) => c.list({ state: target, type: only, limit: 1_000 }))
    if (listed === undefined) return undefined
    if (listed.next === undefined) return { count: listed.jobs.length, exact: true }
    const sampled = app.model.samples.value.at(-1)?.byType[only]?.counts[target]
    return sampled === undefined ? undefined : { count: Math.max(sampled, listed.jobs.length), exact: false }
  }

  /** Asks, naming the count, then removes every job in the chosen state (and type) for good. */
  const purge = async () => {
    const target = purgeable.find((s) => s === purgeState.value)
    if (target === undefined) return
    const only = purgeType.value.trim() === "" ? undefined : purgeType.value.trim()
    const counted = await purgeCount(target, only)
    if (counted === undefined) return
    const what = `${stateLabel[target]} job${counted.count === 1 ? "" : "s"}${
      only === undefined ? "" : ` of type ${only}`
    }`
    if (counted.count === 0) return app.toast(`No ${what} to purge`, "ok")
    const sure = await confirmAction({
      title: `Purge ${counted.exact ? "" : "about "}${counted.count.toLocaleString()} ${what}?`,
      body: [
        `Every ${stateLabel[target]} job${
          only === undefined ? "" : ` of type ${only}`
        } is removed from the queue for good, with its payload, result and history: ${counted.exact ? "" : "about "}${
          jobsCount(counted.count)
        } now.`,
        "Jobs that reach this state before the purge runs go too; the answer says how many went."
      ],
      confirm: `Purge ${counted.exact ? "" : "about "}${jobsCount(counted.count)}`
    })
    if (!sure) return
    const removed = await app.act((c) => c.purge(target, only))
    if (removed !== undefined) app.toast(`${jobsCount(removed)} purged (${what})`, "ok")
    // A purge's jobs leave without events: the list reloads itself.
    void load()
  }

  const load = async () => {
    const result = await app.act((c) => c.list(query()))
    if (result !== undefined) current = result
    // Keep the keyboard where it was: on the same job's row when it is still listed.
    const focused = document.activeElement instanceof HTMLElement && body.contains(document.activeElement)
      ? document.activeElement.closest("tr")?.dataset["jobId"]
      : undefined
    render()
    if (focused !== undefined) body.querySelector<HTMLElement>(`tr[data-job-id="${CSS.escape(focused)}"] a`)?.focus()
  }
  // A refresh replaces the rows: while a row's button has the keyboard focus it waits, so a
  // busy queue does not pull the focus away; it runs when the focus leaves the table.
  let waiting = false
  // At most once a second: on a busy queue every commit names jobs.
  const reload = throttle(1_000, () => {
    if (!visible) return
    if (body.contains(document.activeElement)) waiting = true
    else void load()
  })
  body.addEventListener("focusout", (event) => {
    if (waiting && !body.contains(event.relatedTarget as Node | null)) {
      waiting = false
      void load()
    }
  })

  const page = (cursor: number | undefined) => {
    after = cursor
    void load()
  }
  next.addEventListener("click", () => {
    if (current?.next === undefined) return
    cursors.push(after)
    page(current.next)
  })

  const filter = () => {
    const params = new URLSearchParams()
    if (state.value !== "") params.set("state", state.value)
    if (type.value.trim() !== "") params.set("type", type.value.trim())
    if (search.value !== "") params.set("search", search.value)
    if (order.value === "asc") params.set("order", "asc")
    window.location.hash = `#/jobs${params.size > 0 ? `?${params}` : ""}`
  }

  const redrive = async () => {
    const only = type.value.trim()
    const count = await app.act((c) => c.retryDead(only === "" ? undefined : only))
    if (count !== undefined) app.toast(`${count} dead job${count === 1 ? "" : "s"} back in the queue`, "ok")
    reload()
  }

  app.connection.role.subscribe(() => {
    redriveAll.hidden = !app.may("RetryDead")
    purgeForm.hidden = !app.may("Purge")
    renderSelection()
  })
  app.model.changed.subscribe(() => reload())
  app.model.types.subscribe((known) => replace(types, known.map((t) => h("option", { value: t }))))
  app.model.stats.subscribe(() => visible && render())
  timeZone.subscribe(() => visible && render())

  return {
    element,
    show: (_params, q) => {
      visible = true
      state.value = isState(q.get("state")) ? q.get("state")! : ""
      type.value = q.get("type") ?? ""
      search.value = q.get("search") ?? ""
      order.value = q.get("order") === "asc" ? "asc" : "desc"
      after = undefined
      cursors.length = 0
      void load()
    },
    hide: () => {
      visible = false
    }
  }
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
const reprioritizable: ReadonlyArray<JobState> = ["queued", "delayed", "failed-waiting-retry"]

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
