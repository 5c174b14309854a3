/**
 * Rough throughput of one broker on the file store, client in the same process:
 * enqueue, then claim+complete, over REST (fetch) and over RPC-WS, with N concurrent callers.
 * `pnpm exec tsx --conditions=source packages/broker/bench/throughput.ts [jobs] [concurrency]`
 */
import { NodeSocket } from "@effect/platform-node"
import { RpcClient, RpcSerialization } from "@effect/rpc"
import { Broker, rpcPaths } from "@osqueue/broker"
import { FileStore } from "@osqueue/storage"
import { EnqueueOptions, OsqueueRpcs } from "@osqueue/types"
import { Console, Effect, Layer, Logger, LogLevel } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const jobs = Number(process.argv[2] ?? 2000)
const concurrency = Number(process.argv[3] ?? 64)
const port = 18_700 + Math.floor(Math.random() * 200)
const base = `http://127.0.0.1:${port}`
const dir = mkdtempSync(join(tmpdir(), "osqueue-bench-"))

const post = async (path: string, body: unknown) => {
  const response = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  if (!response.ok) throw new Error(`${response.status} ${await response.text()}`)
  return response.json()
}

const timed = <A, E, R>(label: string, n: number, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = performance.now()
    yield* effect
    const seconds = (performance.now() - start) / 1000
    yield* Console.log(`${label.padEnd(34)} ${n} in ${seconds.toFixed(2)} s = ${Math.round(n / seconds)}/s`)
  })

const indices = Array.from({ length: jobs }, (_, i) => i)

const program = Effect.gen(function*() {
  yield* Effect.sleep("500 millis")
  yield* timed("REST enqueue", jobs, Effect.forEach(indices, (i) => Effect.promise(() => post("/v1/jobs", { type: "rest", payload: i })), { concurrency }))
  yield* timed("REST claim+complete", jobs, Effect.forEach(indices, () =>
    Effect.promise(async () => {
      const [claimed] = await post("/v1/jobs/claim", { workerId: "w", types: ["rest"] }) as Array<{ job: { id: string }; token: string }>
      await post(`/v1/jobs/${claimed!.job.id}/complete`, { token: claimed!.token })
    }), { concurrency }))

  const protocol = yield* Layer.build(RpcClient.layerProtocolSocket().pipe(Layer.provide([
    NodeSocket.layerWebSocket(`ws://127.0.0.1:${port}${rpcPaths.websocket}`),
    RpcSerialization.layerJson
  ])))
  const ws = yield* RpcClient.make(OsqueueRpcs).pipe(Effect.provide(protocol))
  yield* timed("RPC-WS enqueue", jobs, Effect.forEach(indices, (i) => ws.Enqueue(new EnqueueOptions({ type: "ws", payload: i })), { concurrency }))
  yield* timed("RPC-WS claim+complete", jobs, Effect.forEach(indices, () =>
    Effect.flatMap(ws.Claim({ workerId: "w", types: ["ws"] }), ([claimed]) => ws.Complete({ token: claimed!.token })), { concurrency }))
})

const BrokerLive = Broker.serve({ port, host: "127.0.0.1" }).pipe(
  Layer.provideMerge(Broker.engine({ advertisedUrl: base })),
  Layer.provide(FileStore.layer({ directory: dir })),
  Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
)

program.pipe(
  Effect.scoped,
  Effect.provide(BrokerLive),
  Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true }))),
  Effect.runPromise
).then(() => process.exit(0), (e) => {
  process.stderr.write(`${String(e)}\n`)
  process.exit(1)
})
