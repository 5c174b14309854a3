/**
 * A long-poll claim's broker CPU without a socket, where a shared machine's noise hides it in
 * `ops.ts --wait-ms`'s figures: one process with the real engine (memory store) and the broker's
 * `Operations` over it, ready jobs enqueued, then claims with `waitMs` (as `pnpm bench`'s plain
 * workers send them), 16 in flight, each started as the edge starts one: by callback
 * (`Operations.claimWith`) where the build has it, else as an effect on a fiber of its own
 * (`Runtime.runCallback` of `Operations.claim`, the edge before it). The process's CPU per claim
 * holds the commit that answers it, the same in both. `--compare DIR` runs another checkout's
 * build (DIR: its root, built) beside this one, alternating them, each round in a fresh process.
 * `--empty` claims from an empty queue instead, each with a wait of 2 ms: held, then answered
 * `[]` by its timer, as a plain worker's claims are while its queue is empty.
 *
 *   pnpm --filter @osqueue/bench exec tsx longpoll.ts [--claims N] [--rounds R] [--compare DIR] [--empty]
 */
import { execFileSync } from "node:child_process"
import { loadavg } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { median, resultOf } from "./stats.js"

const { values } = parseArgs({
  options: {
    claims: { type: "string", default: "20000" },
    rounds: { type: "string", default: "4" },
    compare: { type: "string" },
    checkout: { type: "string" },
    empty: { type: "boolean", default: false }
  }
})
const empty = values.empty
const claims = Number(values.claims)
const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "../..")

/** Claims in flight at once, as `ops.ts`'s 16 connections each keep one. */
const inFlight = 16

interface ClaimOperations {
  readonly pause: (request: { readonly type: string }) => unknown
  readonly enqueueMany: (request: { readonly jobs: ReadonlyArray<unknown> }) => unknown
  readonly claim: (request: unknown) => unknown
  readonly claimWith?: (request: unknown, respond: (exit: unknown) => void) => () => void
}

/** CPU µs per long-poll claim with `checkout`'s build, `count` claims after a warm-up. */
const measure = async (checkout: string): Promise<{ readonly us: number; readonly how: string }> => {
  const from = (path: string) => import(join(checkout, path))
  const { Context, Effect, Exit, Layer, Logger, LogLevel, Runtime, Scope } = await from(
    "packages/broker/node_modules/effect/dist/esm/index.js"
  ) as typeof import("effect")
  const { Queues } = await from("packages/broker/dist/index.js") as typeof import("@osqueue/broker")
  const { MemoryStore } = await from("packages/storage/dist/index.js") as typeof import("@osqueue/storage")
  const { EngineConfig } = await from("packages/core/dist/index.js") as typeof import("@osqueue/core")
  const layer = Queues.single.pipe(
    Layer.provide(Queues.layerEngine),
    Layer.provide(MemoryStore.layer),
    Layer.provide(EngineConfig.layer({ advertisedUrl: "http://127.0.0.1:1" })),
    Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
  )
  const context = await Effect.runPromise(Layer.buildWithScope(layer, Effect.runSync(Scope.make())))
  const operations = Context.get(context, Queues.Queues).all[0]!.operations as unknown as ClaimOperations
  const run = (effect: unknown) => Effect.runPromise(Effect.either(effect as import("effect").Effect.Effect<unknown>))
  // Lead first: a submit before the takeover is refused.
  while ((await run(operations.pause({ type: "warm-up" })))._tag === "Left") {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const runCallback = Runtime.runCallback(await Effect.runPromise(Effect.runtime<never>()))
  const claimWith = operations.claimWith
  const start = claimWith ??
    ((request: unknown, respond: (exit: unknown) => void) =>
      runCallback(operations.claim(request) as import("effect").Effect.Effect<unknown>, { onExit: respond }))

  const round = async (count: number) => {
    for (let i = 0; i < (empty ? 0 : count); i += 500) {
      const jobs = Array.from({ length: Math.min(500, count - i) }, () => ({ type: "ops", payload: { n: i } }))
      await run(operations.enqueueMany({ jobs }))
    }
    const before = process.cpuUsage()
    await new Promise<void>((resolve, reject) => {
      let started = 0
      let answered = 0
      const one = (worker: number) => {
        started++
        start({ workerId: `w${worker}`, max: 1, waitMs: empty ? 2 : 1_000 }, (exit) => {
          const claimed = exit as import("effect").Exit.Exit<ReadonlyArray<unknown>, unknown>
          if (!Exit.isSuccess(claimed) || claimed.value.length !== (empty ? 0 : 1)) {
            return reject(new Error(`a claim was answered ${JSON.stringify(claimed)}`))
          }
          if (++answered === count) return resolve()
          if (started < count) one(worker)
        })
      }
      for (let worker = 0; worker < inFlight; worker++) one(worker)
    })
    const used = process.cpuUsage(before)
    return (used.user + used.system) / count
  }
  await round(Math.min(claims, 4_000))
  return { us: await round(claims), how: claimWith === undefined ? "an effect on a fiber" : "by callback" }
}

if (values.checkout !== undefined) {
  const { how, us } = await measure(values.checkout)
  process.stdout.write(`result ${us} ${how}\n`)
  process.exit(0)
}

const inProcess = async (checkout: string) => {
  const line = await resultOf(fileURLToPath(import.meta.url), [
    "--checkout",
    checkout,
    "--claims",
    String(claims),
    ...(empty ? ["--empty"] : [])
  ])
  const space = line.indexOf(" ")
  return { us: Number(line.slice(0, space)), how: line.slice(space + 1) }
}

process.stdout.write("building the workspace (tsc -b)\n")
execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-b"], { stdio: "inherit", cwd: root })
process.stdout.write(
  `${claims} long-poll claims a round${empty ? ", each held on an empty queue" : ""}, load average ${
    loadavg().map((n) => n.toFixed(1)).join(" ")
  }\n`
)
const checkouts = values.compare === undefined ? [root] : [root, values.compare]
const figures = new Map<string, Array<number>>(checkouts.map((checkout) => [checkout, []]))
for (let round = 0; round < Number(values.rounds); round++) {
  // Each goes first in every other round.
  for (const checkout of round % 2 === 0 ? checkouts : [...checkouts].reverse()) {
    const { how, us } = await inProcess(checkout)
    figures.get(checkout)!.push(us)
    process.stdout.write(`${checkout === root ? "this checkout" : checkout}: ${us.toFixed(1)} µs per claim (${how})\n`)
  }
}
for (const [checkout, us] of figures) {
  process.stdout.write(
    `${checkout === root ? "this checkout" : checkout}: median ${median(us).toFixed(1)} µs per claim\n`
  )
}
if (values.compare !== undefined) {
  process.stdout.write(
    `this checkout / compared: ${(median(figures.get(root)!) / median(figures.get(values.compare)!)).toFixed(2)}\n`
  )
}
process.stdout.write(`load average at the end ${loadavg().map((n) => n.toFixed(1)).join(" ")}\n`)
