/**
 * Broker CPU per operation: single enqueues, then single claims (`max: 1`) of those jobs, then
 * their single completions, each sent by plain clients (one request per operation, no batching,
 * no prefetch, C keep-alive connections with one request in flight each) over REST, RPC over HTTP
 * (one ndjson line per POST) and RPC over WebSocket (one frame per request). The broker is a
 * fresh `osqueue broker` process per transport; its CPU time (user + system, from /proc) over
 * each phase, divided by the phase's operations, is the figure of docs/performance.md's
 * request-path table. Transports alternate `--rounds` times, so that a busy spell of the shared
 * machine falls on all of them rather than on one; the table keeps each figure's best round.
 * Each round's line also gives each phase's `main`: the broker's main thread's CPU over the phase's
 * wall time (its event loop; under `engine-threads`, the engine's thread), near 100% when it bounds
 * the rate.
 *
 *   pnpm --filter @osqueue/bench exec tsx ops.ts [--ops N] [--connections C] [--transport rest,http,ws,floor,floor-http,floor-ws,engine,engine-threads]
 *        [--store memory|file] [--rounds R] [--profile DIR] [--compare DIR] [--node-flags FLAGS] [--wait-ms MS] [--next]
 *        [--watchers N]
 *
 * `--transport floor` runs the REST calls against `floor.ts` instead of a broker: a Node HTTP
 * server that reads, parses and answers each request and does nothing else. Its CPU per call is
 * the floor of any broker on Node's `http` on this machine (parser, socket writes, their garbage);
 * `floor-http` and `floor-ws` the same for RPC over HTTP and over WebSocket (`ws`), each request
 * answered with its `Exit`.
 * `--transport engine` runs them against `floor-engine.ts`: the same server with the engine
 * (memory store) behind it, each turn's calls submitted together; the broker's CPU above it is
 * its edge's (routes, checks, `Operations`, metrics, stats history).
 * `--transport engine-threads` runs the same with the floor's HTTP in a worker thread (`floor-engine.ts
 * --http-thread`): the CPU per call of both threads, and what the engine's thread is spared.
 *
 * `--compare DIR` runs the build of another checkout (DIR: its root, built) beside this one,
 * alternating them (each round's pair in the other order from the last), and prints each figure
 * of this one as a ratio of the other's: of the best rounds, and the median (and range) of each
 * round's pair. On a shared, noisy machine an A/B in one run says more than two runs' absolute
 * figures, and a pair run back to back more than two rounds apart: a spell that slows one build's
 * best round by half (seen here) moves the pairs' median by much less.
 *
 * `--node-flags FLAGS` starts this checkout's brokers (not the compared one's) as `node FLAGS
 * bin.js broker`: with `--compare` pointing at a build of the same code, an A/B of a Node or V8
 * setting alone (`--node-flags=--max-semi-space-size=32`, docs/performance.md). Each run also
 * prints the broker's peak RSS, which such a setting may cost.
 *
 * `--next` adds a fourth phase, `completeAndClaim`: each call completes a claimed job and claims
 * the next (the jobs it needs enqueued and claimed first, not counted), and a column, a job's two
 * calls (enqueue, complete-and-claim), as a plain worker makes them (docs/architecture.md,
 * "Complete and claim"). Broker transports only (`rest`, `http`, `ws`), and a `--compare`
 * checkout that has the call.
 *
 * `--watchers N` keeps N watch streams open on each broker through its phases, as N open
 * dashboards do (RPC over WebSocket, `Watch` with history and stats each second, each message
 * acknowledged): what watching costs the broker per call. Broker transports only, as `--next`.
 *
 * `--wait-ms MS` sends each claim as a long poll (`waitMs`), as `pnpm bench`'s plain workers do: a
 * claim that may wait is not gathered but runs on its own (docs/architecture.md, "The request path").
 *
 * `--profile DIR` runs the broker under `node --cpu-prof` (one `.cpuprofile` per broker in DIR;
 * summarise one with `npx tsx scripts/cpuprofile.ts FILE`).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { rmSync } from "node:fs"
import { loadavg } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { startBroker, waitReady } from "./broker.js"
import { RestConnection } from "./rest.js"
import { SocketConnection } from "./socket.js"
import { fmtShare, freePort, peakRssMb, serverUsage } from "./stats.js"

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "../..")

const { values } = parseArgs({
  options: {
    ops: { type: "string", default: "4000" },
    connections: { type: "string", default: "16" },
    transport: { type: "string", default: "rest,http,ws" },
    store: { type: "string", default: "memory" },
    rounds: { type: "string", default: "1" },
    profile: { type: "string" },
    compare: { type: "string" },
    "node-flags": { type: "string" },
    "wait-ms": { type: "string", default: "0" },
    watchers: { type: "string", default: "0" },
    next: { type: "boolean", default: false }
  }
})
const ops = Number(values.ops)
const connections = Number(values.connections)
const rounds = Number(values.rounds)
const transports = values.transport.split(",") as Array<Transport>
const store = values.store
const profiling = values.profile === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", values.profile]
const nodeFlags = values["node-flags"]?.split(" ").filter((flag) => flag !== "") ?? []

type Transport = "rest" | "http" | "ws" | "floor" | "floor-http" | "floor-ws" | "engine" | "engine-threads"
type Operation = "enqueue" | "claim" | "complete" | "completeAndClaim"
/** A job's three single calls. */
const threeCalls: ReadonlyArray<Operation> = ["enqueue", "claim", "complete"]
const operations: ReadonlyArray<Operation> = values.next ? [...threeCalls, "completeAndClaim"] : threeCalls

interface Broker {
  readonly url: URL
  readonly child: ChildProcess
  readonly stop: () => Promise<void>
}

/** `floor.ts` (or `floor-engine.ts`) on a free port, stopped as a broker is. */
const startFloor = async (script: string, args: ReadonlyArray<string> = []): Promise<Broker> => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = spawn(process.execPath, [...profiling, "--import", "tsx", join(here, script), String(port), ...args], {
    stdio: ["ignore", "ignore", "inherit"]
  })
  await waitReady(child, `${url}/v1/stats`, "the floor server")
  const stop = () =>
    new Promise<void>((resolve) => {
      child.once("exit", () => resolve())
      child.kill(values.profile === undefined ? "SIGKILL" : "SIGTERM")
    })
  return { url: new URL(url), child, stop }
}

const start = async (transport: Transport, checkout: string): Promise<Broker> => {
  if (transport === "floor" || transport === "floor-http" || transport === "floor-ws") return startFloor("floor.ts")
  if (transport === "engine") return startFloor("floor-engine.ts")
  if (transport === "engine-threads") return startFloor("floor-engine.ts", ["--http-thread"])
  const { child, dir, url } = await startBroker({
    checkout,
    store: store as "memory" | "file",
    node: checkout === root ? [...nodeFlags, ...profiling] : profiling
  })
  const stop = () =>
    new Promise<void>((resolve) => {
      child.once("exit", () => resolve())
      // A profiled broker writes its profile only when it exits on its own.
      child.kill(values.profile === undefined ? "SIGKILL" : "SIGTERM")
    }).then(() => rmSync(dir, { recursive: true, force: true }))
  return { url: new URL(url), child, stop }
}

interface Claimed {
  readonly id: string
  readonly token: string
}

/** One connection of a transport: sends one operation and resolves with its answer's value. */
interface Client {
  readonly enqueue: () => Promise<unknown>
  readonly claim: () => Promise<Claimed | undefined>
  readonly complete: (job: Claimed) => Promise<unknown>
  /** Completes `job` and claims the next (`max: 1`, no wait). */
  readonly completeAndClaim: (job: Claimed) => Promise<Claimed | undefined>
  readonly close: () => void
}

const payload = JSON.stringify({ type: "ops", payload: { n: 1, text: "x".repeat(100) } })
const waitMs = Number(values["wait-ms"])
const claimBody = (worker: string) => JSON.stringify({ workerId: worker, max: 1, ...(waitMs > 0 ? { waitMs } : {}) })
const completeAndClaimBody = (job: Claimed, worker: string) => JSON.stringify({ token: job.token, workerId: worker })

type AnswerClaimed = Array<{ readonly job: { readonly id: string }; readonly token: string }>
const firstOf = (claimed: AnswerClaimed): Claimed | undefined => {
  const [first] = claimed
  return first && { id: first.job.id, token: first.token }
}

const check = (ok: boolean, what: string, answer: string) => {
  if (!ok) throw new Error(`${what} failed: ${answer.slice(0, 300)}`)
}

const restClient = (url: URL, worker: string): Client => {
  const connection = new RestConnection(url)
  return {
    enqueue: async () => {
      const { status, body } = await connection.post("/v1/jobs", payload)
      check(status === 201, "enqueue", body)
    },
    claim: async () => {
      const { status, body } = await connection.post("/v1/jobs/claim", claimBody(worker))
      check(status === 200, "claim", body)
      return firstOf(JSON.parse(body) as AnswerClaimed)
    },
    complete: async (job) => {
      const { status, body } = await connection.post(
        `/v1/jobs/${job.id}/complete`,
        JSON.stringify({ token: job.token })
      )
      check(status === 200, "complete", body)
    },
    completeAndClaim: async (job) => {
      const { status, body } = await connection.post(
        `/v1/jobs/${job.id}/complete-and-claim`,
        completeAndClaimBody(job, worker)
      )
      check(status === 200, "complete-and-claim", body)
      return firstOf(JSON.parse(body) as AnswerClaimed)
    },
    close: () => connection.close()
  }
}

interface Exit {
  readonly _tag: "Exit"
  readonly exit: { readonly _tag: "Success" | "Failure"; readonly value?: unknown; readonly cause?: unknown }
}

const rpcClient = (worker: string, send: (line: string) => Promise<string>, close: () => void): Client => {
  let id = 0
  const call = async (tag: string, body: string) => {
    const answer = await send(`{"_tag":"Request","id":"${++id}","tag":"${tag}","payload":${body},"headers":[]}`)
    const exit = JSON.parse(answer.split("\n")[0]!) as Exit
    check(exit._tag === "Exit" && exit.exit._tag === "Success", tag, answer)
    return exit.exit.value
  }
  return {
    enqueue: () => call("Enqueue", payload),
    claim: async () => firstOf((await call("Claim", claimBody(worker))) as AnswerClaimed),
    complete: (job) => call("Complete", JSON.stringify({ token: job.token })),
    completeAndClaim: async (job) =>
      firstOf((await call("CompleteAndClaim", completeAndClaimBody(job, worker))) as AnswerClaimed),
    close
  }
}

/** A WebSocket to the RPC endpoint of the broker (or floor) at `url`. */
const openRpcSocket = (url: URL) => SocketConnection.open(new URL("/rpc/ws", url.href.replace("http", "ws")))

const connect = async (transport: Transport, url: URL, worker: string): Promise<Client> => {
  switch (transport) {
    case "rest":
    case "floor":
    case "engine":
    case "engine-threads":
      return restClient(url, worker)
    case "floor-http":
    case "http": {
      const connection = new RestConnection(url)
      return rpcClient(worker, async (line) => {
        const { status, body } = await connection.post("/rpc", line, "application/ndjson")
        check(status === 200, "RPC over HTTP", body)
        return body
      }, () => connection.close())
    }
    case "floor-ws":
    case "ws": {
      const socket = await openRpcSocket(url)
      return rpcClient(
        worker,
        (line) => socket.request(line, (message) => message.startsWith(`{"_tag":"Exit"`)),
        () => socket.close()
      )
    }
  }
}

/** A watch stream open on the broker at `url`, each message acknowledged as it comes, until the socket closes. */
const watch = async (url: URL): Promise<SocketConnection> => {
  const socket = await openRpcSocket(url)
  const isChunk = (message: string) => message.startsWith(`{"_tag":"Chunk"`)
  const request =
    `{"_tag":"Request","id":"1","tag":"Watch","payload":{"history":true,"statsEveryMs":1000},"headers":[]}`
  void (async () => {
    await socket.request(request, isChunk)
    for (;;) await socket.request(`{"_tag":"Ack","requestId":"1"}`, isChunk)
  })()
  return socket
}

/** Runs `count` calls of `one` spread over the clients, one in flight per client. */
const spread = (clients: ReadonlyArray<Client>, count: number, one: (client: Client, n: number) => Promise<void>) => {
  let next = 0
  return Promise.all(clients.map(async (client) => {
    for (let n = next++; n < count; n = next++) await one(client, n)
  }))
}

/** A phase's broker CPU per call (all its threads), its main thread's share of the wall time, and the rate. */
type Figures = Partial<Record<Operation, { readonly cpuUs: number; readonly busy: number; readonly rate: number }>> & {
  /** The broker's peak RSS over the run, warm-up included, in MB. */
  readonly rssMb: number
}

/** A claim that must find a job: every phase claims jobs it enqueued itself. */
const claimOne = async (client: Client): Promise<Claimed> => {
  const job = await client.claim()
  if (job === undefined) throw new Error("a claim found no job")
  return job
}

/** Enqueues, claims and completes `count` jobs; the broker's CPU and the rate of each phase. */
const phases = async (broker: Broker, clients: ReadonlyArray<Client>, count: number): Promise<Figures> => {
  const claimed: Array<Claimed> = []
  const measure = async (run: () => Promise<unknown>) => {
    const usage = serverUsage(broker.child.pid!)
    const started = performance.now()
    await run()
    const seconds = (performance.now() - started) / 1000
    const { serverBusy, serverCpuUs } = usage(count, seconds)
    return { cpuUs: serverCpuUs, busy: serverBusy, rate: count / seconds }
  }
  const enqueue = await measure(() => spread(clients, count, async (client) => void (await client.enqueue())))
  const claim = await measure(() => spread(clients, count, async (client) => void claimed.push(await claimOne(client))))
  const complete = await measure(() =>
    spread(clients, count, async (client, n) => void (await client.complete(claimed[n]!)))
  )
  if (!values.next) return { enqueue, claim, complete, rssMb: peakRssMb(broker.child.pid!) }
  // Jobs in hand and jobs queued behind them, not counted; then each call completes one and claims one.
  const held: Array<Claimed> = []
  await spread(clients, 2 * count, async (client) => void (await client.enqueue()))
  await spread(clients, count, async (client) => void held.push(await claimOne(client)))
  const completeAndClaim = await measure(() =>
    spread(clients, count, async (client, n) => {
      if ((await client.completeAndClaim(held[n]!)) === undefined) throw new Error("a completion claimed no job")
    })
  )
  return { enqueue, claim, complete, completeAndClaim, rssMb: peakRssMb(broker.child.pid!) }
}

const measureTransport = async (transport: Transport, checkout: string): Promise<Figures> => {
  const broker = await start(transport, checkout)
  try {
    const clients = await Promise.all(
      Array.from({ length: connections }, (_, i) => connect(transport, broker.url, `w${i}`))
    )
    const watchers = await Promise.all(Array.from({ length: Number(values.watchers) }, () => watch(broker.url)))
    // Warm-up: the JIT compiles the request path before anything is counted.
    await phases(broker, clients, Math.min(ops, 2_000))
    const figures = await phases(broker, clients, ops)
    clients.forEach((client) => client.close())
    watchers.forEach((watcher) => watcher.close())
    return figures
  } finally {
    await broker.stop()
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US")

const main = async () => {
  const notBrokers = transports.filter((t) => t !== "rest" && t !== "http" && t !== "ws")
  if ((values.next || values.watchers !== "0") && notBrokers.length > 0) {
    throw new Error(
      `--next and --watchers run on the broker's transports alone (rest, http, ws), not ${notBrokers.join(", ")}`
    )
  }
  process.stdout.write(`building the workspace (tsc -b)\n`)
  execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-b"], { stdio: "inherit", cwd: root })
  const load = loadavg().map((n) => n.toFixed(1)).join(" ")
  process.stdout.write(
    `${ops} operations per phase, ${connections} connections, ${store} store, load average ${load}\n`
  )
  const checkouts = values.compare === undefined ? [root] : [root, values.compare]
  const results = new Map<string, Array<Figures>>()
  const key = (transport: Transport, checkout: string) => `${transport}${checkout === root ? "" : " (compared)"}`
  for (let round = 0; round < rounds; round++) {
    for (const transport of transports) {
      // Each pair in the other order from the last: neither build always runs first.
      for (const checkout of round % 2 === 0 ? checkouts : [...checkouts].reverse()) {
        const figures = await measureTransport(transport, checkout)
        results.set(key(transport, checkout), [...(results.get(key(transport, checkout)) ?? []), figures])
        process.stdout.write(
          `${key(transport, checkout).padEnd(15)} ` +
            operations.map((op) =>
              `${op} ${fmt(figures[op]!.cpuUs)} µs (${fmt(figures[op]!.rate)}/s, main ${fmtShare(figures[op]!.busy)})`
            ).join("  ") +
            `  peak RSS ${fmt(figures.rssMb)} MB\n`
        )
      }
    }
  }
  // The least CPU and the best rate of the rounds: another process on the machine only ever adds
  // to a figure (cache misses, switches), never takes from it.
  const cpu = (label: string, op: Operation) => Math.min(...results.get(label)!.map((f) => f[op]!.cpuUs))
  const rate = (label: string, op: Operation) => Math.max(...results.get(label)!.map((f) => f[op]!.rate))
  const job = (label: string) => threeCalls.reduce((sum, op) => sum + cpu(label, op), 0)
  /** A plain worker's job with `--next`: its enqueue and its complete-and-claim. */
  const jobOfTwo = (label: string) =>
    values.next ? ` ${fmt(cpu(label, "enqueue") + cpu(label, "completeAndClaim"))} |` : ""
  const rss = (label: string) => Math.max(...results.get(label)!.map((f) => f.rssMb))
  process.stdout.write(
    `\nbroker CPU per operation, µs, and the rate (the best of ${rounds} rounds); the highest peak RSS\n`
  )
  const columns = [
    "run",
    ...operations,
    "job (3 calls)",
    ...(values.next ? ["job (2 calls)"] : []),
    ...operations.map((op) => `${op}/s`),
    "peak RSS MB"
  ]
  process.stdout.write(`| ${columns.join(" | ")} |\n|${"---|".repeat(columns.length)}\n`)
  for (const label of results.keys()) {
    process.stdout.write(
      `| ${label} | ${operations.map((op) => fmt(cpu(label, op))).join(" | ")} | ${fmt(job(label))} |${
        jobOfTwo(label)
      } ` +
        `${operations.map((op) => fmt(rate(label, op))).join(" | ")} | ${fmt(rss(label))} |\n`
    )
  }
  if (values.compare !== undefined) {
    process.stdout.write(
      `\nthis checkout's broker CPU as a share of the compared one's\n| transport | enqueue | claim | complete | job |\n|---|---|---|---|---|\n`
    )
    for (const transport of transports) {
      const a = key(transport, root)
      const b = key(transport, values.compare)
      process.stdout.write(
        `| ${transport} | ${operations.map((op) => (cpu(a, op) / cpu(b, op)).toFixed(2)).join(" | ")} | ${
          (job(a) / job(b)).toFixed(2)
        } |\n`
      )
    }
    process.stdout.write(
      `\nthe same, each round's pair: median (range) of ${rounds}\n| transport | ${operations.join(" | ")} | job |\n|${
        "---|".repeat(operations.length + 2)
      }\n`
    )
    for (const transport of transports) {
      const a = results.get(key(transport, root))!
      const b = results.get(key(transport, values.compare))!
      const pairs = (of: (figures: Figures) => number) => summary(a.map((f, round) => of(f) / of(b[round]!)))
      const jobOf = (figures: Figures) => threeCalls.reduce((sum, op) => sum + figures[op]!.cpuUs, 0)
      process.stdout.write(
        `| ${transport} | ${operations.map((op) => pairs((f) => f[op]!.cpuUs)).join(" | ")} | ${pairs(jobOf)} |\n`
      )
    }
  }
  process.stdout.write(`load average at the end ${loadavg().map((n) => n.toFixed(1)).join(" ")}\n`)
}

/** The median of `ratios` and their range, as `0.97 (0.91–1.04)`. */
const summary = (ratios: ReadonlyArray<number>): string => {
  const sorted = [...ratios].sort((x, y) => x - y)
  const middle = sorted.length / 2
  const median = sorted.length % 2 === 1
    ? sorted[Math.floor(middle)]!
    : (sorted[middle - 1]! + sorted[middle]!) / 2
  return `${median.toFixed(2)} (${sorted[0]!.toFixed(2)}–${sorted[sorted.length - 1]!.toFixed(2)})`
}

main().then(() => process.exit(0), (error) => {
  process.stderr.write(`ops failed: ${error instanceof Error ? error.stack : String(error)}\n`)
  process.exit(1)
})
