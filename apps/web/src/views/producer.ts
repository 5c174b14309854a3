/**
 * The producer panel: enqueue jobs of a type with a JSON payload and options, once, several at
 * a time (one commit), or every N ms until stopped.
 */
import type { EnqueueSettings, JobInput } from "@osqueue/client"
import { type Job, maxAttemptsLimit, maxPriority } from "@osqueue/types"
import type { App, View } from "../app.js"
import { badge, clock, field, h, replace } from "../dom.js"
import { jobLink, stateLabel } from "./job.js"

/** Bad input in the form: which field, and what to do. */
class FormError extends Error {
  constructor(readonly input: HTMLElement, message: string) {
    super(message)
  }
}

const integer = (input: HTMLInputElement, name: string, range: { min: number; max: number }): number | undefined => {
  const text = input.value.trim()
  if (text === "") return undefined
  const value = Number(text)
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new FormError(input, `${name} must be a whole number from ${range.min} to ${range.max}, not "${text}".`)
  }
  return value
}

export const producerView = (app: App): View => {
  const type = h("input", { name: "type", value: "email", list: "job-types", required: true, autocomplete: "off" })
  const payload = h("textarea", { name: "payload", rows: 5, spellcheck: false }, "{ \"to\": \"someone@example.com\" }")
  const priority = h("input", { name: "priority", type: "number", step: 1, placeholder: "0", inputmode: "numeric" })
  const delay = h("input", { name: "delayMs", type: "number", min: 0, step: 100, placeholder: "0" })
  const attempts = h("input", { name: "maxAttempts", type: "number", min: 1, max: 1000, placeholder: "broker default" })
  const key = h("input", { name: "idempotencyKey", placeholder: "none", autocomplete: "off" })
  const count = h("input", { name: "count", type: "number", min: 1, max: 1000, value: 1 })
  const every = h("input", { name: "everyMs", type: "number", min: 50, step: 50, value: 1000 })
  const autoButton = h("button", { type: "button", "aria-pressed": "false" }, "Start auto-submit")
  const problem = h("p", { class: "error-text", role: "alert" })
  const autoStatus = h("p", { class: "muted", "aria-live": "polite" })
  const submitted = h("ul", { class: "feed" }, h("li", { class: "empty" }, "Nothing submitted from this page yet."))
  const form = h(
    "form",
    { class: "form-grid", novalidate: true },
    field("Job type", type),
    field("Payload (JSON)", payload, "A worker in this page fails jobs whose payload has \"fail\": true."),
    field("Priority", priority, "Lower runs first."),
    field("Delay (ms)", delay),
    field("Max attempts", attempts),
    field("Idempotency key", key, "Enqueueing a key that exists returns that job."),
    field("How many", count, "Submitted together, in one commit."),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary" }, "Submit"), problem)
  )
  const element = h(
    "section",
    { "aria-labelledby": "producer-title" },
    h("h2", { id: "producer-title" }, "Producer"),
    h(
      "div",
      { class: "columns" },
      h("div", { class: "panel" }, form),
      h(
        "div",
        { class: "panel" },
        h("h3", {}, "Auto-submit"),
        h("div", { class: "toolbar" }, field("Every (ms)", every), autoButton),
        autoStatus,
        h("h3", {}, "Submitted"),
        submitted
      )
    )
  )

  const inputs = (): ReadonlyArray<JobInput> => {
    for (const input of [type, payload, priority, delay, attempts, key, count]) input.removeAttribute("aria-invalid")
    const jobType = type.value.trim()
    if (jobType === "") throw new FormError(type, "Give the job a type (workers claim by type).")
    let body: unknown
    if (payload.value.trim() !== "") {
      try {
        body = JSON.parse(payload.value)
      } catch (error) {
        throw new FormError(payload, `The payload is not valid JSON: ${(error as Error).message}`)
      }
    }
    const n = integer(count, "How many", { min: 1, max: 1000 }) ?? 1
    const idempotencyKey = key.value.trim()
    if (idempotencyKey !== "" && n > 1) {
      throw new FormError(key, "An idempotency key names one job: submit one at a time, or clear the key.")
    }
    const p = integer(priority, "Priority", { min: -maxPriority, max: maxPriority })
    const d = integer(delay, "Delay", { min: 0, max: Number.MAX_SAFE_INTEGER })
    const m = integer(attempts, "Max attempts", { min: 1, max: maxAttemptsLimit })
    const settings: EnqueueSettings = {
      ...(p === undefined ? {} : { priority: p }),
      ...(d === undefined ? {} : { delayMs: d }),
      ...(m === undefined ? {} : { maxAttempts: m }),
      ...(idempotencyKey === "" ? {} : { idempotencyKey })
    }
    return Array.from(
      { length: n },
      () => ({ ...settings, type: jobType, ...(body === undefined ? {} : { payload: body }) })
    )
  }

  const recent: Array<Job> = []
  const showSubmitted = (jobs: ReadonlyArray<Job>) => {
    recent.unshift(...jobs.slice().reverse())
    recent.length = Math.min(recent.length, 12)
    replace(
      submitted,
      recent.map((job) =>
        h(
          "li",
          {},
          h("span", { class: "mono" }, clock(job.createdAt)),
          " ",
          jobLink(job.id),
          " ",
          job.type,
          " ",
          badge(stateLabel[job.state], job.state)
        )
      )
    )
  }

  /** Reads the form and enqueues; answers false when the form or the broker refused. */
  const submit = async (): Promise<boolean> => {
    let jobs: ReadonlyArray<JobInput>
    try {
      jobs = inputs()
      problem.textContent = ""
    } catch (error) {
      if (!(error instanceof FormError)) throw error
      problem.textContent = error.message
      error.input.setAttribute("aria-invalid", "true")
      error.input.focus()
      return false
    }
    const created = await app.act((c) => c.enqueueMany(jobs))
    if (created === undefined) return false
    showSubmitted(created)
    return true
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault()
    void submit().then((ok) => ok && app.toast("Submitted", "ok"))
  })

  let timer: ReturnType<typeof setInterval> | undefined
  let sent = 0
  let failed = 0
  const stopAuto = () => {
    clearInterval(timer)
    timer = undefined
    autoButton.textContent = "Start auto-submit"
    autoButton.setAttribute("aria-pressed", "false")
  }
  autoButton.addEventListener("click", () => {
    if (timer !== undefined) return stopAuto()
    let ms: number
    try {
      ms = integer(every, "Every", { min: 50, max: 3_600_000 }) ?? 1000
    } catch (error) {
      problem.textContent = (error as Error).message
      return
    }
    sent = 0
    failed = 0
    autoButton.textContent = "Stop auto-submit"
    autoButton.setAttribute("aria-pressed", "true")
    timer = setInterval(() => {
      void submit().then((ok) => {
        if (ok) sent++
        else failed++
        autoStatus.textContent = `Auto-submit: ${sent} sent, ${failed} refused.`
        // A form that does not validate would fail every time: stop and say why.
        if (!ok && problem.textContent !== "") stopAuto()
      })
    }, ms)
  })

  return { element, show: () => undefined }
}
