/**
 * `pnpm bench`: osqueue against BullMQ on Redis, on this machine, in one run.
 *
 * Each run starts a fresh server process (an osqueue broker, or a redis-server on its own port
 * and temporary directory: append-only file fsynced on every write, which is the durability of an
 * osqueue acknowledgement, fsynced every second, or no persistence) and a load process (P producers and a worker pool of concurrency W), runs its
 * phases (enqueue only; drain = claim + complete; mixed = both at once) and prints a line per
 * phase; at the end, the table and the ratios behind the goals of docs/performance.md.
 *
 *   pnpm bench [--quick] [--jobs N] [--producers P] [--workers W] [--payload BYTES]
 *              [--transport rest,http,ws,plain,plain-next] [--store memory,file,latency] [--latency-ms 50]
 *              [--backlog N] [--connections C] [--no-bullmq] [--profile DIR] [--prefetch N]
 *              [--million] [--only TEXT] [--phases enqueue,drain,mixed] [--node-flags FLAGS]
 *              [--checkout DIR] [--warm-up N] [--rounds R]
 *
 * `--million` adds the run of 1,000,000 queued jobs (enqueued in batches of 1,000 from 4
 * producers, then all drained, on the file store over RPC-WS): not part of `--quick`, it takes
 * a good part of an hour on 2 cores. `--only TEXT` keeps the runs whose label contains TEXT
 * (`--million --only 1,000,000` runs that one alone). `--phases` keeps those phases of each run
 * (and drops a run left with none): `--only "file ws" --phases mixed` is the WebSocket mixed phase
 * alone.
 *
 * `--checkout DIR` runs the osqueue broker and the load (with its `@osqueue/client` and worker)
 * of another checkout (DIR: its root, built; this script does not build it) instead of this one:
 * runs of this checkout and of DIR, alternated, are an A/B of the whole path, client included.
 * A checkout from before `--warm-up` warms up with 2,000 jobs whatever is asked: A/B against one
 * with `--warm-up 2000`.
 *
 * After the drain behind `--backlog` queued jobs, the broker is killed (SIGKILL) and a process
 * of its own times a takeover on the store it left: load the checkpoint and replay the log
 * after it (`takeover.ts`; not under `--profile`, whose broker must exit on its own).
 *
 * Transports `rest`, `http` and `ws` are `@osqueue/client`'s (with its worker pool); `plain` is
 * plain HTTP alone, as a client in any language would send it: one REST request per enqueue,
 * claim (`max: 1`) and completion, on keep-alive connections, nothing coalesced or prefetched;
 * `plain-next` is the same worker completing with `complete-and-claim`, which claims its next job
 * in the same request (two requests a job, as BullMQ's worker makes one call a job).
 *
 * `--connections C` (default 256): goal 3's run, REST single enqueue (one job per request) from
 * C producers, each on a keep-alive connection of its own, at least 20 requests each (100
 * without `--quick`).
 *
 * `--prefetch N` sets the osqueue pool's prefetch (default: the pool's own, its concurrency).
 *
 * `--warm-up N` (default 20,000; under `--quick`, as before, a run's jobs up to 2,000): jobs
 * enqueued and drained at once, untimed, before each run's phases, for osqueue and BullMQ alike.
 * A broker is still compiling its hot code long after its first 2,000 jobs (V8 spent about a
 * quarter of a core optimizing during a drain that followed a warm-up of 2,000, docs/performance.md
 * "A warm-up that reaches a running broker"); BullMQ's figures do not move with it.
 *
 * `--node-flags FLAGS` starts the osqueue brokers as `node FLAGS bin.js broker`
 * (`--node-flags=--max-semi-space-size=32`): a run with and one without, alternating, is the
 * A/B of a Node or V8 setting (docs/performance.md).
 *
 * `--rounds R` (default 1) runs the chosen runs R times, each round in the other order from the
 * last (so that BullMQ and osqueue take turns at the machine's slow spells), prints the goals of
 * each round, then the goals again on each figure's median over the rounds. On a shared, noisy
 * machine one run's ratio of two systems moves by a third from run to run; the median of
 * alternated rounds moves much less (docs/performance.md, "Ratios over alternated rounds").
 *
 * `--profile DIR` runs the broker and the load process under `node --cpu-prof`, writing their
 * `.cpuprofile` files into DIR (open them in Chrome's DevTools, Performance tab, or summarise one
 * with `npx tsx scripts/cpuprofile.ts FILE`); the broker is then stopped with SIGTERM so that it
 * writes its profile.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { cpus, tmpdir, totalmem } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { startBroker } from "./broker.js"
import type { LoadSpec, Phase } from "./load.js"
import { fmt, fmtLatency, fmtShare, freePort, medianResult, peakRssMb, type PhaseResult } from "./stats.js"

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "../..")

// ---------------------------------------------------------------------------------------------
// Flags

const options = {
  quick: { type: "boolean", default: false },
  jobs: { type: "string" },
  producers: { type: "string" },
  workers: { type: "string" },
  payload: { type: "string" },
  transport: { type: "string" },
  store: { type: "string" },
  "latency-ms": { type: "string" },
  backlog: { type: "string" },
  connections: { type: "string" },
  "no-bullmq": { type: "boolean", default: false },
  profile: { type: "string" },
  prefetch: { type: "string" },
  million: { type: "boolean", default: false },
  only: { type: "string" },
  "node-flags": { type: "string" },
  phases: { type: "string" },
  checkout: { type: "string" },
  "warm-up": { type: "string" },
  rounds: { type: "string" },
  help: { type: "boolean", default: false }
} as const

const flags = (() => {
  try {
    // pnpm may pass on the `--` of `pnpm bench -- --quick`.
    return parseArgs({ args: process.argv.slice(2).filter((arg) => arg !== "--"), options }).values
  } catch (error) {
    process.stderr.write(
      `${error instanceof Error ? error.message : String(error)}: see the usage at the top of scripts/bench/main.ts\n`
    )
    return process.exit(2)
  }
})()
if (flags.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), "utf8").split("*/")[0]!.replace("/**", "") + "\n")
  process.exit(0)
}
const quick = flags.quick
type StringFlag = {
  [K in keyof typeof options]: typeof options[K]["type"] extends "string" ? K : never
}[keyof typeof options]
const int = (name: StringFlag, fallback: number, min = 1) => {
  const raw = flags[name]
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} must be an integer of ${min} or more, got ${raw}\n`)
    process.exit(2)
  }
  return n
}
const list = <A extends string>(name: StringFlag, allowed: ReadonlyArray<A>, fallback: ReadonlyArray<A>) => {
  const raw = flags[name]
  if (raw === undefined) return fallback
  const values = raw.split(",") as Array<A>
  for (const v of values) {
    if (!allowed.includes(v)) {
      process.stderr.write(`--${name} takes ${allowed.join(", ")}; got ${v}\n`)
      process.exit(2)
    }
  }
  return values
}

const jobs = int("jobs", quick ? 1_000 : 10_000)
const producers = int("producers", 16)
const workers = int("workers", 16)
const prefetch = flags.prefetch === undefined ? undefined : int("prefetch", 0, 0)
const payloadBytes = int("payload", 200)
const latencyMs = int("latency-ms", 50)
const backlog = int("backlog", quick ? 5_000 : 100_000)
const connections = int("connections", 256)
/** Jobs of each run's warm-up: `--warm-up`, else 20,000, or under `--quick` the run's jobs up to 2,000. */
const warmUpOf = (runJobs: number) => int("warm-up", quick ? Math.min(runJobs, 2_000) : 20_000)
const transports = list(
  "transport",
  ["rest", "http", "ws", "plain", "plain-next"] as const,
  quick ? ["rest", "ws", "plain", "plain-next"] : ["rest", "http", "ws", "plain", "plain-next"]
)
const stores = list(
  "store",
  ["memory", "file", "latency"] as const,
  quick ? ["file", "latency"] : ["memory", "file", "latency"]
)
const withBullmq = !flags["no-bullmq"]
const million = flags.million
const only = flags.only
const profileDir = flags.profile
const profiling = profileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", profileDir]
const keptPhases = list("phases", ["enqueue", "drain", "mixed"] as const, ["enqueue", "drain", "mixed"])
/** The checkout whose broker and load run (`--checkout`). */
const checkout = flags.checkout ?? root
const brokerNodeFlags = flags["node-flags"]?.split(" ").filter((flag) => flag !== "") ?? []
const rounds = int("rounds", 1)

// ---------------------------------------------------------------------------------------------
// Processes

const children = new Set<ChildProcess>()
const cleanups: Array<() => void> = []
const stopAll = () => {
  for (const child of children) child.kill("SIGKILL")
  for (const cleanup of cleanups) cleanup()
}
process.on("exit", stopAll)
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130))

/** The load loads the workspace packages from their build (dist/), as users run them. */
const tsx = (file: string, args: ReadonlyArray<string>) =>
  spawn(process.execPath, [...profiling, "--import", "tsx", join(checkout, "scripts/bench", file), ...args], {
    stdio: ["ignore", "pipe", "inherit"]
  })

/** Resolves once `child` prints a line that `ready` accepts; fails if it exits first. */
const waitFor = (child: ChildProcess, ready: (line: string) => boolean, what: string) =>
  new Promise<void>((resolve, reject) => {
    let buffered = ""
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString()
      if (buffered.split("\n").some(ready)) {
        child.stdout!.off("data", onData)
        child.stdout!.resume()
        resolve()
      }
    }
    child.stdout!.on("data", onData)
    child.once("exit", (code) => reject(new Error(`${what} exited (${code}) before it was ready`)))
  })

const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    // A killed child has a signal and no exit code; either means it is gone.
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    // A profiled broker writes its profile only when it exits on its own.
    child.kill(profileDir === undefined ? "SIGKILL" : "SIGTERM")
  }).then(() => void children.delete(child))

const redisServer = (): string => {
  try {
    return execFileSync("sh", ["-c", "command -v redis-server"]).toString().trim()
  } catch {
    if (process.getuid?.() === 0) {
      process.stdout.write("redis-server is missing: installing it with apt (Debian's redis-server)\n")
      execFileSync("sh", [
        "-c",
        "apt-get install -y --no-install-recommends redis-server || (apt-get update && apt-get install -y --no-install-recommends redis-server)"
      ], { stdio: "inherit" })
      return execFileSync("sh", ["-c", "command -v redis-server"]).toString().trim()
    }
    process.stderr.write("redis-server is missing: install it (apt-get install redis-server) or run with --no-bullmq\n")
    process.exit(2)
  }
}

interface Server {
  readonly target: string
  readonly child: ChildProcess
  /** osqueue on the file store: the store's directory. */
  readonly dir?: string
}

/**
 * The `osqueue broker` command from its build, as users run it. `latency` is the file store
 * behind the fault decorator adding a fixed delay to every storage call (a stand-in for S3).
 */
const startOsqueue = async (
  store: "memory" | "file" | "latency",
  env: Readonly<Record<string, string>> = {}
): Promise<Server> => {
  const { child, dir, url } = await startBroker({
    checkout,
    store: store === "memory" ? "memory" : "file",
    node: [...brokerNodeFlags, ...profiling],
    args: store === "latency" ? ["--store-faults", JSON.stringify({ latencyMs })] : [],
    env
  })
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  children.add(child)
  return { target: url, child, dir }
}

/**
 * How Redis persists: `always` fsyncs the append-only file before it replies (the match for
 * osqueue, whose acknowledgement means the commit is durable), `everysec` fsyncs once a second
 * (a crash loses up to a second of acknowledged jobs), `none` keeps everything in memory.
 */
type RedisPersistence = "always" | "everysec" | "none"

/** A fresh redis-server on its own port and temporary directory, so no run sees another's data. */
const startRedis = async (persistence: RedisPersistence): Promise<Server> => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), "osqueue-bench-redis-"))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const aof = persistence === "none" ? ["--appendonly", "no"] : ["--appendonly", "yes", "--appendfsync", persistence]
  const child = spawn(redisServer(), [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    ...aof
  ], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  children.add(child)
  await waitFor(child, (line) => line.includes("Ready to accept connections"), "redis-server")
  return { target: String(port), child }
}

interface Takeover {
  readonly loadMs: number
  readonly replayMs: number
  readonly totalMs: number
  readonly cpuMs: number
  readonly checkpointBytes: number
  readonly checkpointPosition: number
  readonly entries: number
  readonly queued: number
}

/** Kills the broker as a crash would, then times load + replay on the store it left (`takeover.ts`). */
const measureTakeover = async (server: Server): Promise<Takeover> => {
  await new Promise<void>((resolve) => {
    server.child.once("exit", () => resolve())
    server.child.kill("SIGKILL")
  })
  children.delete(server.child)
  const child = spawn(process.execPath, ["--import", "tsx", join(here, "takeover.ts"), server.dir!], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  children.add(child)
  let out = ""
  child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()))
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve))
  children.delete(child)
  const line = out.split("\n").find((l) => l.startsWith("takeover "))
  if (code !== 0 || line === undefined) throw new Error(`the takeover measurement failed (exit ${code})`)
  const result = JSON.parse(line.slice(9)) as Takeover
  process.stdout.write(
    `  takeover (SIGKILL, then load + replay in a new process): ${fmt(result.totalMs, 0)} ms (${
      fmt(result.cpuMs, 0)
    } ms of CPU) = load ${fmt(result.loadMs, 0)} ms (${
      fmt(result.checkpointBytes / 2 ** 20)
    } MiB checkpoint at position ${result.checkpointPosition}) + replay ${
      fmt(result.replayMs, 0)
    } ms (${result.entries} entries); ${result.queued.toLocaleString("en-US")} jobs queued\n`
  )
  return result
}

const runLoad = (spec: LoadSpec) =>
  new Promise<Array<PhaseResult>>((resolve, reject) => {
    const child = tsx("load.ts", [JSON.stringify(spec)])
    children.add(child)
    const results: Array<PhaseResult> = []
    let buffered = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString()
      const lines = buffered.split("\n")
      buffered = lines.pop()!
      for (const line of lines) {
        if (!line.startsWith("result ")) continue
        const result = JSON.parse(line.slice(7)) as PhaseResult
        results.push(result)
        print(result)
        if (spec.system === "osqueue") {
          process.stdout.write(`  server peak RSS so far ${fmt(peakRssMb(spec.serverPid), 0)} MB\n`)
        }
      }
    })
    child.once("exit", (code) => {
      children.delete(child)
      if (code === 0) resolve(results)
      else reject(new Error(`the load of "${spec.label}" failed (exit ${code})`))
    })
  })

// ---------------------------------------------------------------------------------------------
// Runs

interface Run {
  readonly label: string
  readonly system: "osqueue" | "bullmq"
  readonly store?: "memory" | "file" | "latency"
  readonly redis?: RedisPersistence
  readonly transport: LoadSpec["transport"]
  readonly phases: ReadonlyArray<Phase>
  readonly batch?: number
  readonly producers?: number
  readonly jobs?: number
  readonly workers?: number
  readonly backlog?: number
  /** Each producer's pause after an answer, at most (LoadSpec.thinkMs). */
  readonly thinkMs?: number
  /** Environment of the broker. */
  readonly env?: Readonly<Record<string, string>>
  /** After the load, kill the broker and time a takeover on its store. */
  readonly takeover?: boolean
}

/**
 * The batch runs' jobs: enough for every producer to send many batches (20 under `--quick`, 100
 * otherwise). With `jobs` alone 16 producers sent 10 batches of 100 in all under `--quick`, one
 * round trip, so the ratio against `addBulk` was one commit's latency sampled once per system.
 */
const batchSize = 100
const batchJobs = Math.max(jobs, producers * batchSize * (quick ? 20 : 100))

/**
 * Goal 3's jobs: enough for each of the `connections` to send many requests (20 under `--quick`,
 * 100 otherwise). With `jobs` alone, 256 connections sent about 4 requests each under `--quick`:
 * the phase was their connects and the ramp, and its CPU per job mostly that.
 */
const restGoalJobs = Math.max(jobs, connections * (quick ? 20 : 100))

const bullmqLabel = (redis: RedisPersistence) => (redis === "none" ? "bullmq" : `bullmq aof ${redis}`)

const runs: Array<Run> = []
if (withBullmq) {
  // Persistence from the strongest (the match for osqueue's fsynced acknowledgement) to none.
  for (const redis of ["always", "everysec", "none"] as const) {
    runs.push({
      label: bullmqLabel(redis),
      system: "bullmq",
      redis,
      transport: "redis",
      phases: ["enqueue", "drain", "mixed"]
    })
  }
  runs.push({
    label: "bullmq addBulk×100",
    system: "bullmq",
    redis: "none",
    transport: "redis",
    phases: ["enqueue"],
    batch: batchSize,
    jobs: batchJobs
  })
}
for (const store of stores) {
  if (store === "latency") continue
  for (const transport of transports) {
    const full = store === "file" || transport === "ws" || transport === "plain" || transport === "plain-next"
    if (!full) continue
    runs.push({
      label: `osqueue ${store} ${transport}`,
      system: "osqueue",
      store,
      transport,
      phases: ["enqueue", "drain", "mixed"]
    })
  }
}
// Goal 3: REST single enqueue with many clients, as many HTTP clients would send it.
const restGoalLabel = `osqueue file rest P=${connections}`
if (stores.includes("file") && transports.includes("rest")) {
  runs.push({
    label: restGoalLabel,
    system: "osqueue",
    store: "file",
    transport: "rest",
    phases: ["enqueue"],
    producers: connections,
    jobs: restGoalJobs
  })
}
if (stores.includes("file") && transports.includes("ws")) {
  runs.push({
    label: "osqueue file ws batch×100",
    system: "osqueue",
    store: "file",
    transport: "ws",
    phases: ["enqueue"],
    batch: batchSize,
    jobs: batchJobs
  })
  // Goal 5: the same drain from a small queue and behind a big one.
  const drainJobs = Math.min(jobs, 2_000)
  for (const behind of [0, backlog]) {
    runs.push({
      label: `osqueue file ws drain, ${behind.toLocaleString("en-US")} others queued`,
      system: "osqueue",
      store: "file",
      transport: "ws",
      phases: ["drain"],
      jobs: drainJobs,
      backlog: behind,
      takeover: behind > 0 && profileDir === undefined
    })
  }
}
if (stores.includes("latency")) {
  const transport = transports.includes("ws") ? "ws" : transports[0]!
  // Each with two appends in flight (the default) and with one at a time: the A/B in one run
  // (docs/architecture.md, "Appends in flight"). Without think time the 256 producers answer in
  // step and arrive together; with it, requests arrive while a write is in flight.
  for (const thinkMs of [undefined, 100]) {
    for (const serial of [false, true]) {
      runs.push({
        label: `osqueue latency ${latencyMs}ms ${transport} P=256${thinkMs === undefined ? "" : ` think ${thinkMs}ms`}${
          serial ? " one append at a time" : ""
        }`,
        system: "osqueue",
        store: "latency",
        transport,
        phases: ["enqueue"],
        producers: 256,
        jobs: Math.max(jobs, quick ? 2_000 : 10_000),
        ...(thinkMs === undefined ? {} : { thinkMs }),
        ...(serial ? { env: { OSQUEUE_APPENDS_IN_FLIGHT: "1" } } : {})
      })
    }
  }
}

// Target 3 of docs/performance.md: a million queued jobs, enqueued in batches, then drained.
const millionJobs = 1_000_000
const millionLabel = `osqueue file ws ${millionJobs.toLocaleString("en-US")} queued`
if (million) {
  runs.push({
    label: millionLabel,
    system: "osqueue",
    store: "file",
    transport: "ws",
    phases: ["enqueue", "drain"],
    batch: 1_000,
    producers: 4,
    // Claims in bigger batches than W = 16 would: a million jobs drain in minutes, not an hour.
    workers: 128,
    jobs: millionJobs,
    // A million 200-byte jobs are about 350 MB of state, past the default cap of 256 MiB.
    env: { OSQUEUE_MAX_STATE_BYTES: String(2 ** 30) }
  })
}
if (only !== undefined) runs.splice(0, runs.length, ...runs.filter((run) => run.label.includes(only)))
runs.splice(
  0,
  runs.length,
  ...runs.flatMap((run) => {
    const phases = run.phases.filter((phase) => keptPhases.includes(phase))
    return phases.length === 0 ? [] : [{ ...run, phases }]
  })
)

// ---------------------------------------------------------------------------------------------
// Output

const columns = [
  "run",
  "phase",
  "jobs/s",
  "server CPU µs/job",
  "server busy",
  "client CPU µs/job",
  "enqueue p50/p99 ms",
  "claim p50/p99",
  "complete p50/p99",
  "end-to-end p50/p99",
  "writes/job",
  "bytes/job",
  "engine bytes/job",
  "checkpoints",
  "encode ms",
  "put ms",
  "peak RSS MB",
  "errors"
]
const row = (r: PhaseResult) => [
  r.label,
  r.phase,
  fmt(r.rate, 0),
  fmt(r.serverCpuUs, 0),
  fmtShare(r.serverBusy),
  fmt(r.loadCpuUs, 0),
  fmtLatency(r.enqueue),
  fmtLatency(r.claim),
  fmtLatency(r.complete),
  fmtLatency(r.endToEnd),
  r.writesPerJob === null ? "–" : r.writesPerJob.toFixed(4),
  fmt(r.bytesPerJob, 0),
  fmt(r.engineBytesPerJob, 0),
  r.checkpoints === null ? "–" : String(r.checkpoints),
  fmt(r.encodeMs),
  fmt(r.putMs, 2),
  fmt(r.peakRssMb, 0),
  String(r.errors)
]
const print = (r: PhaseResult) =>
  process.stdout.write(
    `  ${r.phase.padEnd(8)} ${fmt(r.rate, 0).padStart(7)} jobs/s  CPU µs/job server ${fmt(r.serverCpuUs, 0)} client ${
      fmt(r.loadCpuUs, 0)
    }  server busy ${fmtShare(r.serverBusy)}  enqueue ${fmtLatency(r.enqueue)}  claim ${
      fmtLatency(r.claim)
    }  complete ${fmtLatency(r.complete)}  e2e ${fmtLatency(r.endToEnd)}  writes/job ${
      r.writesPerJob === null ? "–" : r.writesPerJob.toFixed(4)
    }  bytes/job ${fmt(r.bytesPerJob, 0)} (engine ${fmt(r.engineBytesPerJob, 0)}, ${
      r.checkpoints ?? "–"
    } checkpoints)  ${fmt(r.seconds)} s  errors ${r.errors}\n`
  )

const table = (results: ReadonlyArray<PhaseResult>) => {
  const lines = [columns, ...results.map(row)]
  return [
    `| ${columns.join(" | ")} |`,
    `|${columns.map(() => "---").join("|")}|`,
    ...lines.slice(1).map((cells) => `| ${cells.join(" | ")} |`)
  ].join("\n")
}

const find = (results: ReadonlyArray<PhaseResult>, label: string, phase: Phase) =>
  results.find((r) => r.label === label && r.phase === phase)

const goals = (results: ReadonlyArray<PhaseResult>) => {
  const lines: Array<string> = []
  const verdict = (ok: boolean | undefined) => (ok === undefined ? "not measured" : ok ? "met" : "MISSED")
  const bullMixed = find(results, "bullmq", "mixed")
  const wsMixed = find(results, "osqueue file ws", "mixed")
  if (bullMixed && wsMixed) {
    const ratio = wsMixed.rate / bullMixed.rate
    const e2e = wsMixed.endToEnd && bullMixed.endToEnd ? wsMixed.endToEnd.p50 <= bullMixed.endToEnd.p50 : undefined
    lines.push(
      `1. mixed, RPC-WS, file store: ${fmt(wsMixed.rate, 0)} vs BullMQ ${fmt(bullMixed.rate, 0)} jobs/s = ${
        ratio.toFixed(2)
      }× (goal ≥ 1.0×: ${verdict(ratio >= 1)}); end-to-end p50 ${fmt(wsMixed.endToEnd?.p50)} vs ${
        fmt(bullMixed.endToEnd?.p50)
      } ms (${verdict(e2e)})`
    )
    const durable = find(results, bullmqLabel("always"), "mixed")
    if (durable) {
      lines.push(
        `   against BullMQ with appendfsync always (the same durability): ${fmt(durable.rate, 0)} jobs/s = ${
          (wsMixed.rate / durable.rate).toFixed(2)
        }×`
      )
    }
    // Each producer has one enqueue in flight, and an enqueue is acknowledged only after a put
    // that began after it arrived: P producers cannot enqueue faster than P puts' time allows,
    // whatever the broker's CPU.
    if (wsMixed.putMs !== null) {
      const ceiling = (producers * 1000) / wsMixed.putMs
      lines.push(
        `   storage ceiling of this phase: ${producers} producers / ${fmt(wsMixed.putMs, 2)} ms per put = ${
          fmt(ceiling, 0)
        } jobs/s = ${(ceiling / bullMixed.rate).toFixed(2)}× BullMQ, with no CPU spent at all`
      )
    }
  }
  const bulk = find(results, "bullmq addBulk×100", "enqueue")
  const batch = find(results, "osqueue file ws batch×100", "enqueue")
  if (bulk && batch) {
    const ratio = batch.rate / bulk.rate
    lines.push(
      `2. enqueue in batches of 100: ${fmt(batch.rate, 0)} vs addBulk ${fmt(bulk.rate, 0)} jobs/s = ${
        ratio.toFixed(2)
      }× (goal ≥ 1.5×: ${verdict(ratio >= 1.5)})`
    )
  }
  const rest = find(results, restGoalLabel, "enqueue")
  if (rest) {
    lines.push(
      `3. REST single enqueue, ${connections} keep-alive connections: ${fmt(rest.rate, 0)} jobs/s, broker ${
        fmt(rest.serverCpuUs, 0)
      } µs/job (goal ≥ 5,000: ${verdict(rest.rate >= 5_000)})`
    )
  }
  return lines.join("\n")
}

/** Most broker CPU for a job's three single calls (enqueue, claim, complete) from plain clients. */
const maxJobCpuUs = 300

/** The targets of the request path (docs/performance.md, "The request path"): plain HTTP clients against BullMQ. */
const requestPathTargets = (results: ReadonlyArray<PhaseResult>) => {
  const lines: Array<string> = []
  const verdict = (ok: boolean) => (ok ? "met" : "MISSED")
  for (const store of ["memory", "file"] as const) {
    const mixed = find(results, `osqueue ${store} plain`, "mixed")
    if (mixed) {
      lines.push(
        `broker CPU per job, plain HTTP, ${store} store, mixed (three calls a job): ${
          fmt(mixed.serverCpuUs, 0)
        } µs (goal ≤ ${maxJobCpuUs}: ${verdict(mixed.serverCpuUs <= maxJobCpuUs)})`
      )
    }
  }
  const plainRuns = [
    ["osqueue file plain", "plain HTTP mixed, file store"],
    ["osqueue file plain-next", "plain HTTP completing with complete-and-claim, mixed, file store"]
  ] as const
  for (const [label, name] of plainRuns) {
    const plain = find(results, label, "mixed")
    for (const redis of ["always", "everysec", "none"] as const) {
      const bull = find(results, bullmqLabel(redis), "mixed")
      if (plain && bull) {
        const ratio = plain.rate / bull.rate
        lines.push(
          `${name}: ${fmt(plain.rate, 0)} vs ${bullmqLabel(redis)} ${fmt(bull.rate, 0)} jobs/s = ${ratio.toFixed(2)}×${
            redis === "always" ? ` (goal ≥ 1.0×: ${verdict(ratio >= 1)})` : ""
          }; server CPU ${fmt(plain.serverCpuUs, 0)} vs ${fmt(bull.serverCpuUs, 0)} µs/job`
        )
      }
    }
  }
  const ws = find(results, "osqueue file ws", "mixed")
  for (const redis of ["always", "everysec", "none"] as const) {
    const bull = find(results, bullmqLabel(redis), "mixed")
    if (ws && bull) {
      const ratio = ws.rate / bull.rate
      lines.push(
        `@osqueue/client over WebSocket mixed, file store: ${fmt(ws.rate, 0)} vs ${bullmqLabel(redis)} ${
          fmt(bull.rate, 0)
        } jobs/s = ${ratio.toFixed(2)}×${redis === "none" ? ` (goal ≥ 1.0×: ${verdict(ratio >= 1)})` : ""}`
      )
    }
  }
  return lines.join("\n")
}

/** 2 KB: the most a job may cost in bytes written, in any phase. */
const maxBytesPerJob = 2_048
/** 1 GB of peak RSS for the broker holding a million queued jobs, in MB as `peakRssMb` counts them (MiB). */
const maxMillionRssMb = 1_000

/** The targets of the log (issue 15), in the order docs/performance.md lists them. */
const targets = (results: ReadonlyArray<PhaseResult>, takeover: Takeover | undefined) => {
  const lines: Array<string> = []
  const verdict = (ok: boolean | undefined) => (ok === undefined ? "not measured" : ok ? "met" : "MISSED")
  const measured = results.filter((r) => r.bytesPerJob !== null)
  if (measured.length > 0) {
    const worst = measured.reduce((a, b) => (b.bytesPerJob! > a.bytesPerJob! ? b : a))
    const over = measured.filter((r) => r.bytesPerJob! > maxBytesPerJob)
    lines.push(
      `1. bytes written per job, every put (log entries and checkpoints): at most ${
        fmt(worst.bytesPerJob, 0)
      } (${worst.label}, ${worst.phase}) (goal ≤ 2 KB in every phase: ${verdict(over.length === 0)})`
    )
    for (const r of over) {
      lines.push(`   over: ${r.label}, ${r.phase}: ${fmt(r.bytesPerJob, 0)} bytes/job, ${r.checkpoints} checkpoints`)
    }
    // The engine's own count (entries + checkpoints) must match what the store saw land.
    const store = measured.reduce((sum, r) => sum + r.bytesPerJob! * r.jobs, 0)
    const engine = measured.reduce((sum, r) => sum + r.engineBytesPerJob! * r.jobs, 0)
    lines.push(
      `   cross-check: the store decorator counted ${fmt(store / 2 ** 20)} MiB put in these phases, the engine ${
        fmt(engine / 2 ** 20)
      } MiB (log entries and checkpoints)`
    )
  }
  const big = results.find((r) => r.label === `osqueue file ws drain, ${backlog.toLocaleString("en-US")} others queued`)
  const small = results.find((r) => r.label === "osqueue file ws drain, 0 others queued")
  if (big && small) {
    const rate = big.rate / small.rate
    const claim = big.claim && small.claim ? big.claim.p50 / small.claim.p50 : undefined
    lines.push(
      `2. drain behind ${backlog.toLocaleString("en-US")} queued jobs: ${fmt(big.rate, 0)} vs ${
        fmt(small.rate, 0)
      } jobs/s on a small queue = ${rate.toFixed(2)}× (goal ≥ 0.8×: ${verdict(rate >= 0.8)}); claim p50 ${
        fmt(big.claim?.p50)
      } vs ${fmt(small.claim?.p50)} ms = ${claim?.toFixed(2) ?? "–"}× (goal ≤ 1.5×: ${
        verdict(claim === undefined ? undefined : claim <= 1.5)
      })`
    )
  }
  const fill = find(results, millionLabel, "enqueue")
  const drain = find(results, millionLabel, "drain")
  if (fill || drain) {
    const rss = drain?.peakRssMb ?? fill?.peakRssMb
    lines.push(
      `3. ${millionJobs.toLocaleString("en-US")} queued jobs: enqueued in batches of 1,000 in ${
        fmt(fill?.seconds, 0)
      } s (${fmt(fill?.rate, 0)} jobs/s), drained in ${fmt(drain?.seconds, 0)} s (${
        fmt(drain?.rate, 0)
      } jobs/s), broker peak RSS ${fmt(rss, 0)} MB (goal ≤ 1 GB: ${
        verdict(rss === undefined ? undefined : rss <= maxMillionRssMb)
      })`
    )
  } else {
    lines.push(`3. ${millionJobs.toLocaleString("en-US")} queued jobs: not measured (--million)`)
  }
  lines.push(
    takeover === undefined
      ? "4. takeover: not measured"
      : `4. takeover behind ${takeover.queued.toLocaleString("en-US")} queued jobs (SIGKILL, then load + replay): ${
        fmt(takeover.totalMs, 0)
      } ms (${fmt(takeover.cpuMs, 0)} ms of CPU) = load ${
        fmt(takeover.loadMs, 0)
      } + replay of ${takeover.entries} entries ${fmt(takeover.replayMs, 0)} (goal ≤ 2 s: ${
        verdict(takeover.totalMs <= 2_000)
      })`
  )
  const latency = (think: boolean, serial: boolean) =>
    results.find((r) =>
      r.label.startsWith("osqueue latency") && r.label.includes(" think ") === think &&
      r.label.endsWith("at a time") === serial &&
      r.phase === "enqueue"
    )
  const slow = latency(false, false)
  if (slow) {
    const p50 = slow.enqueue?.p50
    const others = ([[false, true, "one append at a time"], [true, false, "with think time"], [
      true,
      true,
      "with think time, one append at a time"
    ]] as const)
      .flatMap(([think, serial, what]) => {
        const r = latency(think, serial)
        return r === undefined ? [] : [`${what}: p50 ${fmt(r.enqueue?.p50)} ms at ${fmt(r.rate, 0)} jobs/s`]
      })
    lines.push(
      `5. ${latencyMs} ms storage, 256 producers: acknowledgement p50 ${fmt(p50)} ms at ${
        fmt(slow.rate, 0)
      } jobs/s (goal ≤ 1.5 store latencies, ${fmt(1.5 * latencyMs)} ms: ${
        verdict(p50 === undefined ? undefined : p50 <= 1.5 * latencyMs)
      })${others.length > 0 ? `; ${others.join("; ")}` : ""}`
    )
  }
  return lines.join("\n")
}

// ---------------------------------------------------------------------------------------------

/** What one round of the runs measured. */
interface Round {
  readonly results: Array<PhaseResult>
  takeover: Takeover | undefined
}

/** Runs `run` on a fresh server, its phases' results (and takeover, if it has one) into `round`. */
const measureRun = async (run: Run, round: Round) => {
  process.stdout.write(`\n${run.label}\n`)
  const server = run.system === "bullmq"
    ? await startRedis(run.redis ?? "none")
    : await startOsqueue(run.store!, run.env)
  try {
    const phases = await runLoad({
      label: run.label,
      system: run.system,
      transport: run.transport,
      phases: run.phases,
      jobs: run.jobs ?? jobs,
      producers: run.producers ?? producers,
      workers: run.workers ?? workers,
      prefetch,
      batch: run.batch ?? 1,
      payloadBytes,
      warmUp: warmUpOf(run.jobs ?? jobs),
      target: server.target,
      serverPid: server.child.pid!,
      ...(run.backlog === undefined ? {} : { backlog: run.backlog }),
      ...(run.thinkMs === undefined ? {} : { thinkMs: run.thinkMs })
    })
    const rss = peakRssMb(server.child.pid!)
    for (const phase of phases) round.results.push({ ...phase, peakRssMb: rss })
    process.stdout.write(`  server peak RSS ${fmt(rss, 0)} MB\n`)
    if (run.takeover === true) round.takeover = await measureTakeover(server)
  } finally {
    await stop(server.child)
  }
}

const main = async () => {
  process.stdout.write("building the workspace (tsc -b)\n")
  execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-b"], { stdio: "inherit", cwd: root })
  process.stdout.write(
    `pnpm bench: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${
      Math.round(totalmem() / 2 ** 30)
    } GiB, Node ${process.version}\n`
  )
  process.stdout.write(
    `P = ${producers} producers, W = ${workers} worker concurrency, ${
      jobs.toLocaleString("en-US")
    } jobs per phase, ${payloadBytes}-byte payloads\n`
  )
  const measured: Array<Round> = []
  for (let round = 0; round < rounds; round++) {
    if (rounds > 1) process.stdout.write(`\n== round ${round + 1} of ${rounds}\n`)
    const measuredRound: Round = { results: [], takeover: undefined }
    measured.push(measuredRound)
    for (const run of round % 2 === 0 ? runs : [...runs].reverse()) await measureRun(run, measuredRound)
  }
  const report = (results: ReadonlyArray<PhaseResult>, takeover: Takeover | undefined) =>
    `\n${table(results)}\n\nGoals (docs/performance.md):\n${
      goals(results)
    }\n\nTargets of the log (docs/performance.md):\n${targets(results, takeover)}\n` +
    `\nTargets of the request path (docs/performance.md):\n${requestPathTargets(results)}\n`
  measured.forEach(({ results, takeover }, round) => {
    if (rounds > 1) process.stdout.write(`\n== round ${round + 1} of ${rounds}\n`)
    process.stdout.write(report(results, takeover))
  })
  const results = measured.flatMap((round) => round.results)
  if (rounds > 1) {
    // Each run's phases in the order they were run in the first round.
    const medians = measured[0]!.results.map((first) =>
      medianResult(results.filter((r) => r.label === first.label && r.phase === first.phase))
    )
    const takeovers = measured.flatMap((round) => (round.takeover === undefined ? [] : [round.takeover]))
      .sort((a, b) => a.totalMs - b.totalMs)
    process.stdout.write(`\n== medians of ${rounds} rounds\n`)
    process.stdout.write(report(medians, takeovers[(takeovers.length - 1) >> 1]))
  }
  const failed = results.filter((r) => r.errors > 0)
  if (failed.length > 0) {
    process.stderr.write(`requests failed in: ${failed.map((r) => `${r.label} ${r.phase}`).join(", ")}\n`)
    process.exit(1)
  }
}

main().then(() => process.exit(0), (error) => {
  process.stderr.write(`pnpm bench failed: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
