/**
 * The fuzz suite (docs/architecture.md, "Hostile input"): a real `osqueue broker` on the file
 * store, without a token and with one, takes generated requests (from the request schemas, then
 * broken on purpose) and hand-written hostile ones over REST, RPC over HTTP and RPC over
 * WebSocket, FUZZ_RUNS in all (default 10,000), FUZZ_CONCURRENCY at once (default 12). Every
 * answer: no 5xx, no Defect, within 2 s; the process stays up and `/healthz` / `/readyz` answer
 * throughout; 200 jobs put in place before are exactly as they were after, and again on a broker
 * restarted on the same directory.
 *
 * Replay: the seed is printed (FUZZ_SEED sets it); a failure prints the line that sends it again
 * alone, e.g. `FUZZ_SEED=7 FUZZ_BROKER=open FUZZ_ONLY=1234 pnpm vitest run apps/osqueue/test/fuzz.test.ts`
 * (FUZZ_ONLY takes generated probes' numbers and hostile cases' labels such as `#8`, comma-separated).
 */
import { mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { coverage, probeAt, probes } from "./support/fuzz/generate.js"
import { type Broker, monitor, pool, report, Run, startBroker } from "./support/fuzz/harness.js"
import { hostileCases, idleStats } from "./support/fuzz/hostile.js"
import { changedSentinels, setUp } from "./support/fuzz/sentinels.js"
import { sendHttp } from "./support/fuzz/wire.js"
import { killAll } from "./support/processes.js"

const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31)
const runs = Number(process.env.FUZZ_RUNS ?? 10_000)
const concurrency = Number(process.env.FUZZ_CONCURRENCY ?? 12)
const list = (value: string | undefined) => value?.split(",").map((s) => s.trim()).filter(Boolean)
const only = list(process.env.FUZZ_ONLY)
const skipped = new Set(list(process.env.FUZZ_SKIP) ?? [])
const onlyBroker = process.env.FUZZ_BROKER

afterEach(killAll)

/** The broker with a token also has a token for each other role (`OSQUEUE_TOKENS`): they reach it, refused (403) what their role may not do. */
const brokers = [
  { name: "open", token: undefined, roleTokens: {}, share: 0.7 },
  {
    name: "token",
    token: "fuzz-token-5a7d0c1e9b",
    roleTokens: { producer: "fuzz-producer-3f8a61", worker: "fuzz-worker-c29e04", read: "fuzz-read-7b1d5e" },
    share: 0.3
  }
] as const

const wanted = (label: string) => (only === undefined || only.includes(label)) && !skipped.has(label)

/** Stops `broker` with SIGTERM; its exit code, or a note that it did not stop. */
const stop = async (broker: Broker): Promise<string | undefined> => {
  broker.proc.child.kill("SIGTERM")
  const code = await Promise.race([broker.proc.exited, new Promise<"hung">((r) => setTimeout(() => r("hung"), 20_000))])
  if (code === "hung") return "the broker did not stop within 20 s of SIGTERM"
  return code === 0 ? undefined : `the broker exited with ${code} on SIGTERM:\n${broker.proc.output().slice(-2_000)}`
}

describe("fuzz: hostile and generated requests against a real broker", () => {
  for (const variant of brokers) {
    const skip = onlyBroker !== undefined && onlyBroker !== variant.name
    it.skipIf(skip)(`a broker ${variant.token ? "with" : "without"} a token (seed ${seed})`, async () => {
      const generated = Math.round(runs * variant.share)
      const replay = (label: string) =>
        `FUZZ_SEED=${seed} FUZZ_BROKER=${variant.name} FUZZ_ONLY=${label} pnpm vitest run apps/osqueue/test/fuzz.test.ts`
      console.log(
        `fuzz ${variant.name}: seed ${seed}, ${generated} generated probes, concurrency ${concurrency} (replay all: FUZZ_SEED=${seed})`
      )

      const dir = await mkdtemp(join(tmpdir(), "osqueue-fuzz-"))
      const broker = await startBroker(dir, variant.token, variant.roleTokens)
      const startedAt = performance.now()
      const run = new Run(broker)
      const watch = monitor(broker, startedAt)
      const died = () => broker.proc.child.exitCode !== null || broker.proc.child.signalCode !== null
      let inFlightAtDeath: Array<string> = []
      void broker.proc.exited.then(() => (inFlightAtDeath = [...run.inFlight]))

      if (wanted("#14")) await idleStats(run)
      const setup = await setUp(broker, seed)
      for (const lease of setup.leases) run.leases.add(lease)
      const setupSeconds = (performance.now() - startedAt) / 1000
      const arbitrary = probes({
        fuzzIds: setup.fuzzIds,
        isSentinel: (id) => setup.sentinels.has(id),
        token: variant.token,
        roleTokens: variant.roleTokens
      })

      // Hostile cases spread evenly among the generated probes, all sent through one bounded pool.
      const tasks: Array<() => Promise<void>> = []
      const hostile = hostileCases.filter((c) => wanted(c.label))
      const every = Math.max(1, Math.floor(generated / (hostile.length + 1)))
      let nextHostile = 0
      for (let i = 0; i < generated; i++) {
        if (i % every === every - 1 && nextHostile < hostile.length) {
          const c = hostile[nextHostile++]!
          tasks.push(() => run.track(c.label, c.name, () => c.run(run, setup)))
        }
        if (!wanted(String(i))) continue
        const label = String(i)
        tasks.push(() => run.track(label, "generated", () => run.probe(label, probeAt(arbitrary, seed, i))))
      }
      for (const c of hostile.slice(nextHostile)) tasks.push(() => run.track(c.label, c.name, () => c.run(run, setup)))
      await pool(tasks, concurrency, died)
      const fuzzSeconds = (performance.now() - startedAt) / 1000
      await watch.stop()

      const problems: Array<string> = [...watch.problems]
      if (died()) {
        problems.push(
          `the broker died with these in flight: ${inFlightAtDeath.join(", ")} ` +
            `(replay each alone with FUZZ_ONLY); its last output:\n${broker.proc.output().slice(-3_000)}`
        )
        // what failed after the death says nothing of its own
        const after = run.failures.filter((f) => f.problems.every((p) => /ECONNREFUSED/.test(p)))
        for (const f of after) run.failures.splice(run.failures.indexOf(f), 1)
      } else {
        for (const path of ["/healthz", "/readyz"]) {
          const answer = await sendHttp(broker.target, { method: "GET", path, headers: {} }, 5_000)
          if (answer.status !== 200) {
            problems.push(`after the fuzz, GET ${path} answered ${answer.status ?? answer.error}`)
          }
        }
        const changed = await changedSentinels(broker, setup, false)
        if (changed.length > 0) {
          problems.push(`${changed.length} of 200 sentinel jobs changed:\n  ${changed.slice(0, 10).join("\n  ")}`)
        }
        const stopped = await stop(broker)
        if (stopped !== undefined) problems.push(stopped)
        const again = await startBroker(dir, variant.token, variant.roleTokens)
        const changedAfterRestart = await changedSentinels(again, setup, true)
        if (changedAfterRestart.length > 0) {
          problems.push(
            `after a restart on the same directory, ${changedAfterRestart.length} of 200 sentinel jobs changed:\n  ${
              changedAfterRestart.slice(0, 10).join("\n  ")
            }`
          )
        }
        again.proc.child.kill("SIGTERM")
        await again.proc.exited
      }

      const uncovered = coverage.filter((what) => !run.covered.has(what))
      if (only === undefined && !died() && uncovered.length > 0) {
        problems.push(`no probe reached ${uncovered.join(", ")}`)
      }

      console.log(
        `fuzz ${variant.name}: ${run.total} requests (REST ${run.counts.rest}, RPC-HTTP ${run.counts["rpc-http"]}, ` +
          `RPC-WS ${run.counts["rpc-ws"]}, raw ${run.counts.raw}) in ${fuzzSeconds.toFixed(1)} s (setup ${
            setupSeconds.toFixed(1)
          } s), ` +
          `${run.failures.length} failing, broker peak RSS ${Math.round(watch.peakRssBytes() / 1024 / 1024)} MB; ` +
          `answers p50/p99/max: ${run.timing()}`
      )
      // every failure, whole, for tools and for reading at leisure (the message shows the first of each kind)
      if (process.env.FUZZ_REPORT) {
        await writeFile(
          `${process.env.FUZZ_REPORT}.${variant.name}.json`,
          JSON.stringify({ seed, problems, failures: run.failures }, null, 1)
        )
      }
      const message = [
        ...(problems.length > 0 ? ["", ...problems] : []),
        ...(run.failures.length > 0 ? ["", report(run.failures, replay)] : [])
      ].join("\n")
      if (message !== "") throw new Error(`fuzz ${variant.name}, seed ${seed}:${message}`)
      if (only === undefined) expect(run.total).toBeGreaterThanOrEqual(generated)
    }, 600_000)
  }
})
