/**
 * The WebSocket mixed run's load in one process or in two: 16 producers of single enqueues
 * (`enqueue`) and a `@osqueue/worker` pool of concurrency 16 (a no-op handler) against a fresh
 * `osqueue broker` on the file store, as `pnpm bench --transport ws --phases mixed` runs them
 * (there both in one load process), or the producers and the pool each in a process of its own,
 * as deployments run them. The two shapes alternate, pair after pair, each on a broker of its
 * own after an untimed warm-up of 5,000 jobs. Printed per run: jobs/s from the first process's
 * start to the last one's end, and the broker's and the load processes' CPU a job (from
 * `/proc` and `process.cpuUsage`).
 *
 * What it answers: whether the load process's event loop, which runs both sides of the mixed
 * run, is what bounds its rate (docs/performance.md, "A commit cycle of the WebSocket mixed
 * run, traced").
 *
 *   pnpm --filter @osqueue/bench exec tsx processes.ts [--jobs N] [--pairs P]
 */
import { OsqueueClient } from "@osqueue/client"
import { Worker } from "@osqueue/worker"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import { rmSync } from "node:fs"
import { loadavg } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { startBroker } from "./broker.js"
import { cpuMs, now, resultOf } from "./stats.js"

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "30000" },
    pairs: { type: "string", default: "3" },
    role: { type: "string" },
    url: { type: "string" },
    type: { type: "string" }
  }
})

type Role = "producers" | "pool" | "both"

interface RunResult {
  readonly started: number
  readonly ended: number
  readonly cpuUs: number
}

const producers = 16
const concurrency = 16
const pad = "x".repeat(200)

/** One load process: its role's part of `jobs` jobs of `type`, then `result <json>`. */
const load = (role: Role, url: string, jobs: number, type: string) =>
  Effect.gen(function*() {
    const client = yield* OsqueueClient
    const done = yield* Deferred.make<void>()
    let completed = 0
    let left = jobs
    const started = now()
    const before = process.cpuUsage()
    yield* Effect.scoped(Effect.gen(function*() {
      if (role !== "producers") {
        yield* Worker.make({
          handlers: {
            [type]: () =>
              Effect.sync(() => {
                if (++completed === jobs) Deferred.unsafeDone(done, Effect.void)
              })
          },
          concurrency,
          pollWaitMs: 1_000
        })
      }
      if (role !== "pool") {
        yield* Effect.forEach(Array.from({ length: producers }), () =>
          Effect.gen(function*() {
            while (left-- > 0) yield* client.enqueue(type, { t: now(), pad })
          }), { concurrency: "unbounded", discard: true })
      }
      if (role !== "producers") yield* Deferred.await(done)
    }))
    const used = process.cpuUsage(before)
    const result: RunResult = { started, ended: now(), cpuUs: used.user + used.system }
    process.stdout.write(`result ${JSON.stringify(result)}\n`)
  }).pipe(
    Effect.provide(OsqueueClient.layerWebSocket({ urls: url, requestTimeout: "60 seconds" })),
    // The pool logs its start and stop: not part of what is measured.
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.none))
  )

const here = dirname(fileURLToPath(import.meta.url))

const spawnLoad = async (role: Role, url: string, jobs: number, type: string): Promise<RunResult> =>
  JSON.parse(
    await resultOf(fileURLToPath(import.meta.url), [
      "--role",
      role,
      "--url",
      url,
      "--jobs",
      String(jobs),
      "--type",
      type
    ])
  ) as RunResult

const run = async (shape: "one process" | "two processes", jobs: number) => {
  const broker = await startBroker({ checkout: join(here, "../.."), store: "file" })
  try {
    await spawnLoad("both", broker.url, 5_000, "warm-up")
    const brokerBefore = cpuMs(broker.child.pid!)
    const results = shape === "one process"
      ? [await spawnLoad("both", broker.url, jobs, "mixed")]
      : await Promise.all([
        spawnLoad("pool", broker.url, jobs, "mixed"),
        spawnLoad("producers", broker.url, jobs, "mixed")
      ])
    const brokerUs = (cpuMs(broker.child.pid!) - brokerBefore) * 1000
    const seconds = (Math.max(...results.map((r) => r.ended)) - Math.min(...results.map((r) => r.started))) / 1000
    const loadUs = results.reduce((sum, r) => sum + r.cpuUs, 0)
    process.stdout.write(
      `${shape.padEnd(14)} ${Math.round(jobs / seconds).toLocaleString("en-US").padStart(6)} jobs/s  ` +
        `broker ${Math.round(brokerUs / jobs)} µs/job  load ${Math.round(loadUs / jobs)} µs/job  ` +
        `(load average ${loadavg()[0]!.toFixed(1)})\n`
    )
  } finally {
    broker.child.kill("SIGKILL")
    rmSync(broker.dir, { recursive: true, force: true })
  }
}

if (values.role !== undefined) {
  await Effect.runPromise(load(values.role as Role, values.url!, Number(values.jobs), values.type!))
  process.exit(0)
} else {
  const jobs = Number(values.jobs)
  for (let pair = 0; pair < Number(values.pairs); pair++) {
    const shapes = ["one process", "two processes"] as const
    // Each pair in the other order from the last: the machine's speed drifts.
    for (const shape of pair % 2 === 0 ? shapes : [...shapes].reverse()) await run(shape, jobs)
  }
}
