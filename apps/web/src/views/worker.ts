/**
 * A real `@osqueue/worker` pool running in this page, over its own client connection: it
 * claims the chosen types, works for a while reporting progress, and fails jobs on demand
 * (a failure rate, or any job whose payload has `"fail": true`) to exercise retries and the
 * dead-letter list. Stopping drains: running jobs get a few seconds, then are released.
 */
import { type JobContext, NonRetryable, Worker } from "@osqueue/worker"
import { Duration, Effect, Exit, Fiber, ManagedRuntime } from "effect"
import { type App, describeError, type View } from "../app.js"
import { badge, clock, field, h, replace } from "../dom.js"
import { jobLink } from "./job.js"

interface Running {
  readonly type: string
  readonly attempt: number
  percent: number
}

interface Settings {
  readonly workMs: number
  readonly failRate: number
  readonly final: boolean
}

const askedToFail = (payload: unknown): boolean =>
  typeof payload === "object" && payload !== null && "fail" in payload && payload.fail === true

export const workerView = (app: App): View => {
  const types = h("input", { name: "types", value: "email, thumbnail, report", autocomplete: "off" })
  const concurrency = h("input", { name: "concurrency", type: "number", min: 1, max: 64, value: 2 })
  const workMs = h("input", { name: "workMs", type: "number", min: 0, step: 100, value: 1000 })
  const failRate = h("input", { name: "failRate", type: "number", min: 0, max: 100, value: 0 })
  const final = h("input", { name: "final", type: "checkbox" })
  const toggle = h("button", { type: "submit", class: "primary" }, "Start worker")
  const problem = h("p", { class: "error-text", role: "alert" })
  const status = h("p", { class: "worker-status", "aria-live": "polite" }, "Stopped.")
  const running = h("ul", { class: "running" })
  const finished = h("ul", { class: "feed" })
  const form = h(
    "form",
    { class: "form-grid", novalidate: true },
    field("Job types", types, "Comma-separated; the pool claims only these."),
    field("Concurrency", concurrency, "Most jobs in hand at once."),
    field("Work time (ms)", workMs, "Each job takes this long, reporting progress five times."),
    field("Failure rate (%)", failRate, "Jobs whose payload has \"fail\": true always fail."),
    h("label", { class: "check" }, final, " Failures are final (straight to the dead-letter list)"),
    h("div", { class: "form-actions" }, toggle, problem)
  )
  const element = h(
    "section",
    { "aria-labelledby": "worker-title" },
    h("h2", { id: "worker-title" }, "Worker in this page"),
    h(
      "div",
      { class: "columns" },
      h("div", { class: "panel" }, form),
      h("div", { class: "panel" }, status, h("h3", {}, "In hand"), running, h("h3", {}, "Handled"), finished)
    )
  )

  const inHand = new Map<string, Running>()
  const outcomes: Array<HTMLElement> = []
  let handled = 0
  let failures = 0
  let settings: Settings = { workMs: 1000, failRate: 0, final: false }
  let stop: (() => Promise<void>) | undefined
  const workerId = `browser-${crypto.randomUUID().slice(0, 8)}`

  const render = () => {
    status.textContent = stop === undefined
      ? "Stopped."
      : `Running as ${workerId}: ${inHand.size} in hand, ${handled} handled, ${failures} of them failed.`
    replace(
      running,
      inHand.size === 0
        ? h("li", { class: "empty" }, stop === undefined ? "Start the worker to claim jobs." : "Waiting for jobs…")
        : [...inHand].map(([id, job]) =>
          h(
            "li",
            { "data-job-id": id },
            jobLink(id),
            ` ${job.type}, attempt ${job.attempt} `,
            h("progress", { max: 100, value: job.percent, "aria-label": `${id} progress` }),
            ` ${job.percent}%`
          )
        )
    )
    replace(finished, outcomes.length === 0 ? h("li", { class: "empty" }, "Nothing yet.") : outcomes)
  }

  const record = (id: string, outcome: "completed" | "failed", detail: string) => {
    handled++
    if (outcome === "failed") failures++
    outcomes.unshift(
      h(
        "li",
        { "data-job-id": id },
        h("span", { class: "mono" }, clock(Date.now())),
        " ",
        jobLink(id),
        " ",
        badge(outcome === "failed" ? "failed" : "done", outcome === "failed" ? "dead" : "completed"),
        " ",
        detail
      )
    )
    outcomes.length = Math.min(outcomes.length, 15)
  }

  const handle = (payload: unknown, ctx: JobContext) =>
    Effect.gen(function*() {
      const id = ctx.job.id
      const job: Running = { type: ctx.job.type, attempt: ctx.attempt, percent: 0 }
      inHand.set(id, job)
      render()
      const steps = 5
      for (let step = 1; step <= steps; step++) {
        yield* Effect.sleep(Duration.millis(settings.workMs / steps))
        job.percent = (step * 100) / steps
        render()
        if (step < steps) yield* ctx.progress({ percent: job.percent })
      }
      if (askedToFail(payload) || Math.random() * 100 < settings.failRate) {
        const message = askedToFail(payload)
          ? "failed on purpose: the payload has \"fail\": true"
          : `simulated failure (${settings.failRate}% of jobs fail)`
        record(id, "failed", message)
        return yield* settings.final ? Effect.fail(new NonRetryable({ message })) : Effect.fail(new Error(message))
      }
      record(id, "completed", `in ${settings.workMs} ms`)
      return { tookMs: settings.workMs, by: workerId }
    }).pipe(Effect.ensuring(Effect.sync(() => {
      inHand.delete(ctx.job.id)
      render()
    })))

  const read = (): { types: ReadonlyArray<string>; concurrency: number; settings: Settings } => {
    const list = types.value.split(",").map((t) => t.trim()).filter((t) => t !== "")
    if (list.length === 0) throw new Error("Name at least one job type to claim.")
    const n = Number(concurrency.value)
    if (!Number.isInteger(n) || n < 1 || n > 64) {
      throw new Error(`Concurrency must be a whole number from 1 to 64, not "${concurrency.value}".`)
    }
    const ms = Number(workMs.value)
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`Work time must be 0 ms or more, not "${workMs.value}".`)
    const rate = Number(failRate.value)
    if (!Number.isFinite(rate) || rate < 0 || rate > 100) {
      throw new Error(`The failure rate is a percentage from 0 to 100, not "${failRate.value}".`)
    }
    return { types: list, concurrency: n, settings: { workMs: ms, failRate: rate, final: final.checked } }
  }

  const start = () => {
    const options = read()
    settings = options.settings
    const handlers = Object.fromEntries(options.types.map((type) => [type, handle]))
    const runtime = ManagedRuntime.make(app.connection.layer())
    const fiber = runtime.runFork(
      Effect.scoped(Effect.flatMap(
        // No prefetch: a page can be closed at any time, and jobs held in line here would wait
        // for their leases to expire; "in hand" then also means "running", as the form says.
        Worker.make({
          handlers,
          concurrency: options.concurrency,
          prefetch: 0,
          workerId,
          pollWaitMs: 2_000,
          shutdownTimeout: "3 seconds"
        }),
        (worker) => worker.join
      ))
    )
    fiber.addObserver((exit) => {
      if (Exit.isFailure(exit) && !Exit.isInterrupted(exit)) {
        problem.textContent = `The worker stopped: ${
          describeError(exit.cause._tag === "Fail" ? exit.cause.error : exit.cause)
        }`
        void stopWorker()
      }
    })
    stop = async () => {
      await runtime.runPromise(Fiber.interrupt(fiber))
      await runtime.dispose()
    }
    for (const input of [types, concurrency]) input.disabled = true
    toggle.textContent = "Stop worker"
  }

  const stopWorker = async () => {
    const stopping = stop
    stop = undefined
    toggle.disabled = true
    toggle.textContent = "Stopping…"
    await stopping?.()
    for (const input of [types, concurrency]) input.disabled = false
    toggle.disabled = false
    toggle.textContent = "Start worker"
    render()
  }

  // Work time and failures apply at once, also to a running pool.
  for (const input of [workMs, failRate, final]) {
    input.addEventListener("change", () => {
      try {
        settings = read().settings
        problem.textContent = ""
      } catch (error) {
        problem.textContent = (error as Error).message
      }
    })
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault()
    if (stop !== undefined) return void stopWorker()
    try {
      problem.textContent = ""
      start()
      render()
    } catch (error) {
      problem.textContent = (error as Error).message
    }
  })
  render()

  return { element, show: () => undefined }
}
