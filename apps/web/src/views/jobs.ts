/**
 * The jobs table: filter by state, type and text, paging by `seq` cursor, bulk actions on ticked
 * rows (bulkActions.ts), and purge by state and type. It reloads when the `watch` stream says
 * jobs changed.
 */
import type { Job, JobPage, JobState, ListQuery } from "@osqueue/types"
import { jobStates, maxSearchLength } from "@osqueue/types"
import { type App, describeError, type View } from "../app.js"
import { timeZone } from "../config.js"
import { confirmAction } from "../confirm.js"
import { badge, dateTime, duration, field, h, relative, replace } from "../dom.js"
import { throttle } from "../signal.js"
import { type BulkAction, bulkActions, deletable, jobsCount, someIds } from "./bulkActions.js"
import { jobActions, jobLink, stateLabel } from "./job.js"

const isState = (value: string | null): value is JobState => jobStates.some((state) => state === value)

/** The worker that holds the job, or that last ran it. */
const workerOf = (job: Job): string => job.lease?.workerId ?? job.history.at(-1)?.workerId ?? ""

/** How long the job ran (its last attempt): finished − started, or so far while it runs. */
const tookOf = (job: Job, now: number): string =>
  job.startedAt === undefined
    ? ""
    : job.finishedAt !== undefined && job.finishedAt >= job.startedAt
    ? duration(job.finishedAt - job.startedAt)
    : job.state === "running"
    ? `${duration(now - job.startedAt)} so far`
    : ""

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
