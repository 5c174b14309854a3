/**
 * The client's CPU per call over RPC over WebSocket, layer by layer, against a fresh `osqueue
 * broker` (memory store): C callers, each with one call in flight, each call an `EnqueueMany` of
 * one job answered with its id. Three clients, alternating round after round in this one process:
 *
 * - `frames`: the request's JSON text sent as a frame and the answer's frame read back, on a
 *   minimal WebSocket client of its own per caller (`socket.ts`); no RPC library. What any
 *   client spends on the socket and the JSON: the floor.
 * - `rpc`: `@effect/rpc`'s client over the client's WebSocket protocol (`Protocols`), as
 *   `@osqueue/client` makes it, called directly.
 * - `client`: `@osqueue/client` (`OsqueueClient.layerWebSocket`, `enqueueManyIds`): the RPC client
 *   under the router (leader discovery, retries, a deadline per attempt) and the operations.
 *
 * What each layer adds to a call is the difference of two rows (docs/performance.md, "The
 * client's CPU per call, layer by layer").
 *
 *   pnpm --filter @osqueue/bench exec tsx clientcall.ts [--calls N] [--callers C] [--rounds R]
 */
import { OsqueueClient, Protocols } from "@osqueue/client"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scope from "effect/Scope"
import { rmSync } from "node:fs"
import { loadavg } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { startBroker } from "./broker.js"
import { SocketConnection } from "./socket.js"

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "20000" },
    callers: { type: "string", default: "16" },
    rounds: { type: "string", default: "3" }
  }
})
const calls = Number(values.calls)
const callers = Number(values.callers)
const rounds = Number(values.rounds)
const root = join(dirname(fileURLToPath(import.meta.url)), "../..")

const job = () => ({ type: "call", payload: { t: Date.now(), pad: "x".repeat(200) } })

/**
 * CPU µs of this process per call, and calls a second, over about `n` calls: `loops(each)` makes
 * `each` calls from each of the `callers` loops.
 */
const timed = async (n: number, loops: (each: number) => Promise<unknown>) => {
  const each = Math.ceil(n / callers)
  const made = each * callers
  const before = process.cpuUsage()
  const started = performance.now()
  await loops(each)
  const used = process.cpuUsage(before)
  return { cpuUs: (used.user + used.system) / made, rate: made / ((performance.now() - started) / 1000) }
}

type Client = (n: number) => Promise<{ readonly cpuUs: number; readonly rate: number }>

const frames = async (url: string): Promise<Client> => {
  const sockets = await Promise.all(
    Array.from({ length: callers }, () => SocketConnection.open(new URL(Protocols.webSocketUrl(url))))
  )
  const next = sockets.map(() => 0)
  const call = (caller: number) => {
    const id = String(++next[caller]!)
    const request = JSON.stringify({
      _tag: "Request",
      id,
      tag: "EnqueueMany",
      payload: { jobs: [job()] },
      headers: [["prefer", "return=minimal"]]
    })
    return sockets[caller]!.request(request, (message) => {
      const answer = JSON.parse(message) as { readonly _tag: string; readonly requestId?: string }
      return answer._tag === "Exit" && answer.requestId === id
    })
  }
  return (n) =>
    timed(n, (each) =>
      Promise.all(sockets.map(async (_, caller) => {
        for (let i = 0; i < each; i++) await call(caller)
      })))
}

/** The scope the clients' connections live in, for the whole run. */
const scope = Effect.runSync(Scope.make())

/**
 * `make`'s calls, each caller's loop a fiber (as an Effect app calls), on a runtime kept for the
 * whole run.
 */
const fromEffect = async <R>(
  layer: Layer.Layer<R>,
  make: Effect.Effect<() => Effect.Effect<unknown, unknown>, never, R | Scope.Scope>
): Promise<Client> => {
  const runtime = ManagedRuntime.make(layer)
  const one = await runtime.runPromise(Effect.provideService(make, Scope.Scope, scope))
  const loop = (each: number) =>
    Effect.gen(function*() {
      for (let i = 0; i < each; i++) yield* one()
    })
  return (n) =>
    timed(n, (each) =>
      runtime.runPromise(
        Effect.forEach(Array.from({ length: callers }), () => loop(each), { concurrency: "unbounded", discard: true })
      ))
}

const rpc = (url: string) =>
  fromEffect(
    Protocols.webSocketProtocol(url),
    Effect.map(Protocols.makeRpcClient, (client) => () =>
      client.EnqueueMany({ jobs: [job()] }, { headers: { prefer: "return=minimal" } }))
  )

const client = (url: string) =>
  fromEffect(
    OsqueueClient.layerWebSocket({ urls: [url] }),
    Effect.map(OsqueueClient, (osqueue) => () => osqueue.enqueueManyIds([job()]))
  )

const broker = await startBroker({ checkout: root, store: "memory" })
try {
  const clients: Array<[string, Client]> = [
    ["frames", await frames(broker.url)],
    ["rpc", await rpc(broker.url)],
    ["client", await client(broker.url)]
  ]
  console.log(
    `${calls} calls a round, ${callers} callers, load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}`
  )
  for (const [, run] of clients) await run(Math.min(calls, 2_000)) // warm-up
  const best = new Map<string, { cpuUs: number; rate: number }>()
  for (let round = 1; round <= rounds; round++) {
    for (const [name, run] of clients) {
      const result = await run(calls)
      console.log(
        `round ${round} ${name.padEnd(7)} ${result.cpuUs.toFixed(0)} µs/call  ${result.rate.toFixed(0)} calls/s`
      )
      const kept = best.get(name)
      if (kept === undefined || result.cpuUs < kept.cpuUs) best.set(name, result)
    }
  }
  console.log("\nclient CPU per call (the best of the rounds)")
  for (const [name, { cpuUs, rate }] of best) {
    console.log(`${name.padEnd(7)} ${cpuUs.toFixed(0)} µs  ${rate.toFixed(0)} calls/s`)
  }
} finally {
  broker.child.kill("SIGKILL")
  rmSync(broker.dir, { recursive: true, force: true })
}
process.exit(0)
