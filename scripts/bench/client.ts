/**
 * The client's side of `pnpm bench`: the load process (`load.ts`: producers through
 * `@osqueue/client`, a `@osqueue/worker` pool) against a fresh `osqueue broker`, phase after
 * phase, with the client's CPU per job beside the broker's. `--compare DIR` runs the build of
 * another checkout (DIR: its root, built; its own broker and load) beside this one, alternating
 * them round after round, so that a busy spell of the shared machine falls on both: on a noisy
 * machine an A/B in one run says more than two runs' absolute figures.
 *
 *   pnpm --filter @osqueue/bench exec tsx client.ts [--jobs N] [--phases mixed,drain,enqueue]
 *        [--transport ws|http|rest] [--store file|memory] [--batch B] [--producers P] [--workers W]
 *        [--rounds R] [--profile DIR] [--compare DIR]
 *
 * `--profile DIR` runs the load process and the broker under `node --cpu-prof`, one
 * `.cpuprofile` each in DIR (summarise one with `npx tsx scripts/cpuprofile.ts FILE`; the broker
 * is then stopped with SIGTERM so that it writes its profile). Build first (`tsc -b`, as `pnpm
 * bench` does).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { rmSync } from "node:fs"
import { loadavg } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { startBroker } from "./broker.js"
import type { LoadSpec, Phase } from "./load.js"
import { fmt, fmtLatency, fmtShare, median, type PhaseResult } from "./stats.js"

const root = join(dirname(fileURLToPath(import.meta.url)), "../..")

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "5000" },
    phases: { type: "string", default: "mixed" },
    transport: { type: "string", default: "ws" },
    store: { type: "string", default: "file" },
    batch: { type: "string", default: "1" },
    producers: { type: "string", default: "16" },
    workers: { type: "string", default: "16" },
    rounds: { type: "string", default: "2" },
    profile: { type: "string" },
    compare: { type: "string" }
  }
})
const profiling = values.profile === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", values.profile]

/** The broker's calls so far by operation (`osqueue_requests_total`, every outcome). */
const callsByOperation = async (url: string): Promise<Map<string, number>> => {
  const calls = new Map<string, number>()
  for (const line of (await (await fetch(`${url}/metrics`)).text()).split("\n")) {
    if (!line.startsWith("osqueue_requests_total{")) continue
    const operation = /operation="([^"]+)"/.exec(line)?.[1] ?? "?"
    calls.set(operation, (calls.get(operation) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)))
  }
  return calls
}

const runLoad = (checkout: string, spec: LoadSpec) =>
  new Promise<Array<PhaseResult>>((resolve, reject) => {
    const child = spawn(process.execPath, [
      ...profiling,
      "--import",
      "tsx",
      join(checkout, "scripts/bench/load.ts"),
      JSON.stringify(spec)
    ], { stdio: ["ignore", "pipe", "inherit"], cwd: join(checkout, "scripts/bench") })
    let out = ""
    child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()))
    child.once("exit", (code) =>
      code === 0
        ? resolve(out.split("\n").filter((l) => l.startsWith("result ")).map((l) => JSON.parse(l.slice(7))))
        : reject(new Error(`the load of ${checkout} failed (exit ${code})`)))
  })

/** Stops a broker: SIGKILL, or SIGTERM when profiled (it writes its profile only when it exits on its own). */
const stopBroker = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill(values.profile === undefined ? "SIGKILL" : "SIGTERM")
  })

const builds = [
  { name: "this", checkout: root },
  ...(values.compare ? [{ name: "compare", checkout: values.compare }] : [])
]
const results = new Map<string, Array<PhaseResult>>()

for (let round = 1; round <= Number(values.rounds); round++) {
  for (const build of round % 2 === 1 ? builds : [...builds].reverse()) {
    const broker = await startBroker({
      checkout: build.checkout,
      store: values.store as "memory" | "file",
      node: profiling
    })
    try {
      const phases = await runLoad(build.checkout, {
        label: build.name,
        system: "osqueue",
        transport: values.transport as LoadSpec["transport"],
        phases: values.phases.split(",") as Array<Phase>,
        jobs: Number(values.jobs),
        producers: Number(values.producers),
        workers: Number(values.workers),
        batch: Number(values.batch),
        payloadBytes: 200,
        warmUp: Math.min(Number(values.jobs), 2_000),
        target: broker.url,
        serverPid: broker.child.pid!
      })
      const calls = await callsByOperation(broker.url)
      const total = phases.reduce((n, r) => n + r.jobs, 0)
      for (const r of phases) {
        results.set(`${build.name} ${r.phase}`, [...(results.get(`${build.name} ${r.phase}`) ?? []), r])
        process.stdout.write(
          `round ${round} ${build.name.padEnd(7)} ${r.phase.padEnd(7)} ${
            fmt(r.rate, 0).padStart(6)
          } jobs/s  CPU µs/job server ${fmt(r.serverCpuUs, 0)} client ${fmt(r.loadCpuUs, 0)}  server busy ${
            fmtShare(r.serverBusy)
          }  enqueue ${fmtLatency(r.enqueue)}  claim ${fmtLatency(r.claim)}  complete ${fmtLatency(r.complete)}  e2e ${
            fmtLatency(r.endToEnd)
          }  writes/job ${fmt(r.writesPerJob, 4)}  encode ${fmt(r.encodeMs)} ms  put ${fmt(r.putMs)} ms  load ${
            loadavg()[0]!.toFixed(1)
          }\n`
        )
      }
      // The warm-up's calls are in the counts too: a rough figure, but the same for both builds.
      process.stdout.write(
        `  broker calls per job (warm-up included): ${
          Array.from(calls, ([operation, n]) => `${operation} ${(n / total).toFixed(3)}`).join(", ")
        }\n`
      )
    } finally {
      await stopBroker(broker.child)
      rmSync(broker.dir, { recursive: true, force: true })
    }
  }
}

process.stdout.write("\nmedians of the rounds: jobs/s, server and client CPU µs/job\n")
for (const [key, rs] of results) {
  process.stdout.write(
    `${key.padEnd(16)} ${fmt(median(rs.map((r) => r.rate)), 0).padStart(6)}  server ${
      fmt(median(rs.map((r) => r.serverCpuUs)), 0)
    }  client ${fmt(median(rs.map((r) => r.loadCpuUs)), 0)}\n`
  )
}
process.exit(0)
