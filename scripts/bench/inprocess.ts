/**
 * The client's own CPU per job without a broker or a socket, where a shared machine's noise
 * hides it in `client.ts`'s figures: the `@osqueue/worker` pool (concurrency 16, its default
 * prefetch, a no-op handler) over a client whose claims answer at once with ready-made jobs and
 * whose completions succeed at once, and 16 producers of single enqueues through the client's
 * operations and their coalescing over a broker that answers each batch at once. Everything past
 * the client's own code (RPC, JSON, the socket) is left out: those cost the same per batch
 * whatever the pool and the producers do. `--compare DIR` runs another checkout's build (DIR:
 * its root, built) beside this one, alternating them round after round, each in a fresh process.
 *
 *   pnpm --filter @osqueue/bench exec tsx inprocess.ts [--jobs N] [--rounds R] [--compare DIR]
 *   pnpm --filter @osqueue/bench exec tsx inprocess.ts --wire [--checkout DIR]
 *
 * `--wire` prints instead what the RPC client does per job on the wire, one item of a batch of 16
 * at a time: its checks and encodes of `EnqueueMany` and `CompleteMany` requests, and the JSON
 * and `Exit` decodes of the answers to `EnqueueMany`, `Claim` and `CompleteMany` (each answer's
 * job whole, payload included), and of a `CompleteMany` answered minimally (each job's id), with
 * this checkout's build or DIR's.
 *
 * A process started with `--part pool|enqueue --checkout DIR` runs one measure with DIR's build
 * (so that DIR needs no copy of this script) and prints `result <µs/job>`.
 */
import type * as EffectNs from "effect/Effect"
import type * as SchemaNs from "effect/Schema"
import type * as Scope from "effect/Scope"
import { loadavg } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { median, resultOf } from "./stats.js"

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "20000" },
    rounds: { type: "string", default: "4" },
    compare: { type: "string" },
    part: { type: "string" },
    wire: { type: "boolean", default: false },
    checkout: { type: "string" }
  }
})
const jobs = Number(values.jobs)
const parts = ["pool", "enqueue"] as const
type Part = typeof parts[number]

/** A job as a claim answers it: 200 bytes of payload, as `load.ts` sends. */
const claimedJob = (i: number) => ({
  job: {
    id: `job-${i}`,
    type: "bench",
    payload: { t: 0, pad: "x".repeat(200) },
    state: "running",
    priority: 0,
    attempts: 1,
    maxAttempts: 3,
    claims: 1,
    backoff: { _tag: "fixed", delayMs: 1000 },
    seq: i,
    createdAt: 0,
    runAt: 0,
    startedAt: 0,
    lease: { workerId: "bench", epoch: 1, expiresAt: Date.now() + 30_000, ttlMs: 30_000 },
    history: []
  },
  token: `job-${i}/1/1`
})

const measure = async (part: Part, checkout: string): Promise<number> => {
  // The checkout's own build, and the effect its packages use (one instance of it).
  const from = (path: string) => import(join(checkout, path))
  const { Deferred, Effect, Logger } = await from(
    "packages/worker/node_modules/effect/dist/esm/index.js"
  ) as typeof import("effect")
  const { OsqueueClient } = await from("packages/client/dist/index.js") as typeof import("@osqueue/client")
  // Not exported by the package: the operations over a router, which every transport ends in.
  const Operations = await from("packages/client/dist/Operations.js") as {
    readonly make: (router: unknown) => EffectNs.Effect<
      { readonly enqueue: (type: string, payload: unknown) => EffectNs.Effect<unknown, unknown> },
      never,
      Scope.Scope
    >
  }
  const { Worker } = await from("packages/worker/dist/index.js") as typeof import("@osqueue/worker")
  // The pool logs its start and stop at Info: not part of what is measured.
  const nothingLogged = Logger.replace(Logger.defaultLogger, Logger.none)
  const perJob = (before: NodeJS.CpuUsage) => {
    const used = process.cpuUsage(before)
    return (used.user + used.system) / jobs
  }
  if (part === "pool") {
    let claimed = 0
    let completed = 0
    const program = Effect.gen(function*() {
      const done = yield* Deferred.make<void>()
      const completion = Effect.sync(() => {
        if (++completed === jobs) Deferred.unsafeDone(done, Effect.void)
      })
      // Only what a pool calls; each claim answers in the next turn, as a socket would.
      const client = {
        queue: undefined,
        claim: (request: { readonly max?: number }) =>
          Effect.async<ReadonlyArray<ReturnType<typeof claimedJob>>>((resume) => {
            setImmediate(() => {
              const n = Math.min(request.max ?? 1, jobs - claimed)
              resume(Effect.succeed(Array.from({ length: n }, () => claimedJob(claimed++))))
            })
          }),
        complete: () => completion,
        // What the pool completes with (a build before it calls `complete`).
        completeId: () => completion,
        heartbeat: () => Effect.succeed({}),
        release: () => Effect.void,
        fail: () => Effect.void
      } as unknown as typeof OsqueueClient.Service
      return yield* Effect.scoped(Effect.gen(function*() {
        const before = process.cpuUsage()
        yield* Worker.make({ handlers: { bench: () => Effect.void }, concurrency: 16, pollWaitMs: 1_000 })
        yield* Deferred.await(done)
        return perJob(before)
      })).pipe(Effect.provideService(OsqueueClient, client))
    })
    return Effect.runPromise(program.pipe(Effect.provide(nothingLogged)))
  }
  let seq = 0
  const job = (options: { readonly type: string; readonly payload?: unknown }) => ({
    ...claimedJob(seq++).job,
    type: options.type,
    payload: options.payload,
    state: "queued"
  })
  // The broker's side of the two calls the producers make: each batch answered in the next turn.
  const api = {
    url: "in-process",
    Enqueue: (options: { readonly type: string }) => Effect.succeed(job(options)),
    EnqueueMany: (request: { readonly jobs: ReadonlyArray<{ readonly type: string }> }) =>
      Effect.async((resume) => {
        setImmediate(() => resume(Effect.succeed(request.jobs.map(job))))
      })
  }
  const router = {
    current: Effect.succeed(api.url),
    call: (_operation: string, f: (a: typeof api) => unknown) => f(api),
    stream: () => Effect.dieMessage("not used")
  }
  const pad = "x".repeat(200)
  const program = Effect.scoped(Effect.gen(function*() {
    const operations = yield* Operations.make(router)
    let left = jobs
    const before = process.cpuUsage()
    yield* Effect.forEach(Array.from({ length: 16 }), () =>
      Effect.gen(function*() {
        while (left-- > 0) yield* operations.enqueue("bench", { t: Date.now(), pad })
      }), { concurrency: "unbounded", discard: true })
    return perJob(before)
  }))
  return Effect.runPromise(program)
}

const root = join(dirname(fileURLToPath(import.meta.url)), "../..")

/** Per item, µs: the RPC client's schema and JSON work on the messages of a pool and its producers. */
const wire = async (checkout: string) => {
  // The client's own @effect/rpc (not a dependency of the bench), and the effect it uses.
  const from = (path: string) => import(join(checkout, path))
  const Rpc = await from("packages/client/node_modules/@effect/rpc/dist/esm/Rpc.js") as {
    readonly exitSchema: (rpc: unknown) => SchemaNs.Schema<unknown, unknown>
  }
  const { OsqueueRpcs } = await from("packages/types/dist/index.js") as typeof import("@osqueue/types")
  const { Effect, Schema } = await from(
    "packages/client/node_modules/effect/dist/esm/index.js"
  ) as typeof import("effect")
  const n = 16
  const rounds = 2_000
  const time = (name: string, f: () => unknown) => {
    for (let i = 0; i < 200; i++) f()
    const before = process.cpuUsage()
    for (let i = 0; i < rounds; i++) f()
    const used = process.cpuUsage(before)
    process.stdout.write(
      `${name.padEnd(44)} ${((used.user + used.system) / rounds / n).toFixed(2).padStart(6)} µs/item\n`
    )
  }
  const rpc = (tag: string) =>
    OsqueueRpcs.requests.get(tag as never)! as unknown as {
      readonly payloadSchema: SchemaNs.Struct<SchemaNs.Struct.Fields> & SchemaNs.Schema<unknown, unknown>
    }
  const exitOf = (tag: string, value: unknown) => {
    const decode = Schema.decodeUnknown(Rpc.exitSchema(rpc(tag)))
    const text = JSON.stringify({ _tag: "Exit", requestId: "1", exit: { _tag: "Success", value } })
    return { text, decode: () => Effect.runSync(decode((JSON.parse(text) as { exit: unknown }).exit)) }
  }
  const requests = (tag: string, payload: unknown) => {
    const schema = rpc(tag).payloadSchema
    // A guarded request (`guarded`: a `Schema.declare`) has no `make`: the RPC client skips it.
    if ("make" in schema) time(`${tag} request: payloadSchema.make`, () => schema.make(payload as never))
    time(`${tag} request: encode`, () => Effect.runSync(Schema.encode(schema)(payload as never)))
    time(`${tag} request: JSON`, () => JSON.stringify({ _tag: "Request", id: "1", tag, payload, headers: [] }))
  }
  const pad = "x".repeat(200)
  const jobs = Array.from({ length: n }, (_, i) => ({
    ...claimedJob(i).job,
    state: "completed",
    finishedAt: 0,
    idempotencyKey: crypto.randomUUID(),
    history: [{ attempt: 1, workerId: "bench", startedAt: 0, endedAt: 0, outcome: "completed" }]
  }))
  requests("EnqueueMany", {
    jobs: jobs.map(() => ({ type: "bench", payload: { t: 0, pad }, idempotencyKey: crypto.randomUUID() }))
  })
  requests("CompleteMany", { items: jobs.map((_, i) => ({ token: claimedJob(i).token })) })
  for (
    const [tag, value] of [
      ["EnqueueMany", jobs.map((job) => ({ ...job, state: "queued" }))],
      ["Claim", jobs.map((_, i) => claimedJob(i))],
      ["CompleteMany", jobs.map((job) => ({ _tag: "Right", right: job }))]
    ] as const
  ) {
    const exit = exitOf(tag, value)
    time(`${tag} answer: JSON.parse`, () => JSON.parse(exit.text))
    time(`${tag} answer: JSON.parse + Exit decode`, exit.decode)
  }
  const ids = exitOf("CompleteMany", jobs.map((job) => ({ _tag: "Right", right: job.id })))
  time("CompleteMany answer of ids: JSON.parse", () => JSON.parse(ids.text))
  try {
    time("CompleteMany answer of ids: JSON.parse + Exit decode", ids.decode)
  } catch {
    process.stdout.write("CompleteMany answer of ids: refused by this build's schema\n")
  }
}

if (values.wire) {
  await wire(values.checkout ?? root)
  process.exit(0)
}

if (values.part !== undefined) {
  process.stdout.write(`result ${await measure(values.part as Part, values.checkout ?? root)}\n`)
  process.exit(0)
}

const runPart = async (checkout: string, part: Part) =>
  Number(
    await resultOf(fileURLToPath(import.meta.url), ["--part", part, "--checkout", checkout, "--jobs", String(jobs)])
  )

const builds = [
  { name: "this", checkout: root },
  ...(values.compare ? [{ name: "compare", checkout: values.compare }] : [])
]
const results = new Map<string, Array<number>>()
for (let round = 1; round <= Number(values.rounds); round++) {
  for (const build of round % 2 === 1 ? builds : [...builds].reverse()) {
    for (const part of parts) {
      const us = await runPart(build.checkout, part)
      results.set(`${build.name} ${part}`, [...(results.get(`${build.name} ${part}`) ?? []), us])
      process.stdout.write(
        `round ${round} ${build.name.padEnd(7)} ${part.padEnd(7)} ${us.toFixed(1).padStart(6)} µs/job  load ${
          loadavg()[0]!.toFixed(1)
        }\n`
      )
    }
  }
}
process.stdout.write("\nmedians of the rounds: client CPU µs/job\n")
for (const [key, us] of results) process.stdout.write(`${key.padEnd(16)} ${median(us).toFixed(1)}\n`)
