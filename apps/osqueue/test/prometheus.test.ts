/**
 * `/metrics` as Prometheus takes it: `osqueue demo` (broker, worker and producer in one process,
 * so every instrument has samples), its page checked by the real `promtool check metrics`
 * (Prometheus's naming and format lint), by the exposition's own rules (one sample per series,
 * a single `+Inf` bucket equal to the count), then scraped by a real Prometheus server and
 * queried back. Debian's `prometheus` package ships both tools; with CI=true a missing one fails
 * the run instead of skipping it (.ci/run installs it).
 */
import { execFile, spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { eventually, freePort, killAll, leading, osqueue } from "./support/processes.js"

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..")
const promtool = "/usr/bin/promtool"
const prometheus = "/usr/bin/prometheus"
const haveTools = existsSync(promtool) && existsSync(prometheus)
if (!haveTools && process.env["CI"] === "true") {
  throw new Error(
    `${promtool} or ${prometheus} is missing: install Debian's prometheus (apt-get install prometheus); .ci/run does`
  )
}
if (!haveTools) {
  console.warn(`skipping the Prometheus test: ${promtool} or ${prometheus} is missing (apt-get install prometheus)`)
}

/** Runs promtool on `text` (its stdin); resolves with the exit code and what it printed. */
const promtoolCheck = (text: string) =>
  new Promise<{ code: number; output: string }>((resolve) => {
    const child = execFile(promtool, ["check", "metrics"], (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, output: stdout + stderr }))
    child.stdin!.end(text)
  })

interface Sample {
  readonly name: string
  readonly labels: Map<string, string>
  readonly value: number
}

/** The samples of an exposition (no label value in ours holds `,` or `"`: a plain split will do). */
const samples = (text: string): Array<Sample> =>
  text.split("\n").filter((line) => line !== "" && !line.startsWith("#")).map((line) => {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null) throw new Error(`not a sample line: ${line}`)
    const labels = new Map<string, string>()
    for (const pair of (match[2] ?? "").split(",").filter((p) => p !== "")) {
      const [key, value] = pair.split("=") as [string, string]
      labels.set(key, JSON.parse(value) as string)
    }
    return { name: match[1]!, labels, value: match[3] === "+Inf" ? Infinity : Number(match[3]) }
  })

const seriesKey = (name: string, labels: Map<string, string>, without?: string) =>
  `${name}{${[...labels].filter(([k]) => k !== without).map(([k, v]) => `${k}=${v}`).sort().join(",")}}`

/** The queries of the Grafana dashboard that docs/monitoring.md offers. */
const dashboardQueries: ReadonlyArray<string> = (() => {
  const dashboard = JSON.parse(readFileSync(join(repoRoot, "docs", "grafana", "osqueue.json"), "utf8")) as {
    panels: ReadonlyArray<{ targets?: ReadonlyArray<{ expr: string }> }>
  }
  return dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr))
})()

let demo: { url: string; port: number; metrics: string }

beforeAll(async () => {
  if (!haveTools) return
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  osqueue([
    "demo",
    "--storage",
    "memory",
    "--port",
    String(port),
    "--host",
    "127.0.0.1",
    "--url",
    url,
    "--interval-ms",
    "20",
    "--work-ms",
    "5",
    "--fail-rate",
    "0.3"
  ])
  // A fresh process: on a loaded machine tsx alone can take many seconds to start it.
  await leading(url, 60_000)
  // Every instrument has samples once the worker has finished jobs both ways and a request was refused.
  await fetch(`${url}/v1/nowhere`)
  const metrics = await eventually("the demo's worker to complete and fail jobs", async () => {
    const text = await (await fetch(`${url}/metrics`)).text()
    return /osqueue_worker_jobs_processed_total\{outcome="completed"\} [1-9]/.test(text) &&
        /osqueue_worker_jobs_processed_total\{outcome="failed"\} [1-9]/.test(text)
      ? text
      : undefined
  }, 45_000)
  demo = { url, port, metrics }
}, 120_000)

// One demo for every test here: it is stopped once they are done.
afterAll(killAll)

describe.skipIf(!haveTools)("/metrics in Prometheus's exposition format", () => {
  it("passes promtool check metrics, with no complaint", async () => {
    const checked = await promtoolCheck(demo.metrics)
    expect(checked.output).toBe("")
    expect(checked.code).toBe(0)
  })

  it("promtool does object to what the page used to print, so the check above can fail", async () => {
    const old = [
      "# TYPE osqueue_storage_latency_ms histogram",
      "osqueue_storage_latency_ms_bucket{le=\"1\"} 1",
      "osqueue_storage_latency_ms_bucket{le=\"+Inf\"} 1",
      "osqueue_storage_latency_ms_sum 0.5",
      "osqueue_storage_latency_ms_count 1",
      ""
    ].join("\n")
    const checked = await promtoolCheck(old)
    expect(checked.code).not.toBe(0)
    expect(checked.output).toContain("no help text")
    expect(checked.output).toContain("abbreviated units")
  })

  it("has one sample per series, one +Inf bucket per histogram equal to its count, cumulative buckets, base units", () => {
    const all = samples(demo.metrics)
    const keys = all.map((s) => seriesKey(s.name, s.labels))
    expect(keys.filter((key, i) => keys.indexOf(key) !== i)).toEqual([])

    const types = new Map([...demo.metrics.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]))
    const helps = new Set([...demo.metrics.matchAll(/^# HELP (\S+) \S/gm)].map((m) => m[1]!))
    expect([...types.keys()].filter((name) => !helps.has(name))).toEqual([])
    const histograms = [...types].filter(([, type]) => type === "histogram").map(([name]) => name)
    expect(histograms).toEqual(expect.arrayContaining([
      "osqueue_commit_latency_seconds",
      "osqueue_commit_encode_seconds",
      "osqueue_storage_latency_seconds",
      "osqueue_claim_wait_seconds",
      "osqueue_worker_job_duration_seconds"
    ]))
    for (const [name, type] of types) {
      expect(name).not.toMatch(/_ms$|_ms_|millis/)
      if (type === "counter") expect(name).toMatch(/_total$/)
    }

    for (const histogram of histograms) {
      const buckets = new Map<string, Array<Sample>>()
      for (const s of all.filter((s) => s.name === `${histogram}_bucket`)) {
        const series = seriesKey(histogram, s.labels, "le")
        buckets.set(series, [...(buckets.get(series) ?? []), s])
      }
      expect(buckets.size, histogram).toBeGreaterThan(0)
      for (const [series, list] of buckets) {
        const bounds = list.map((s) => Number(s.labels.get("le") === "+Inf" ? Infinity : s.labels.get("le")))
        expect(bounds.filter((b) => b === Infinity), series).toHaveLength(1)
        expect(bounds, series).toEqual([...bounds].sort((a, b) => a - b))
        const counts = list.map((s) => s.value)
        expect(counts, series).toEqual([...counts].sort((a, b) => a - b))
        const count = all.find((s) => s.name === `${histogram}_count` && seriesKey(histogram, s.labels) === series)
        expect(count?.value, series).toBe(counts.at(-1))
      }
    }

    // Seconds, not milliseconds: a commit on the memory store takes well under a second.
    const latency = all.filter((s) => s.name.startsWith("osqueue_commit_latency_seconds_"))
    const sum = latency.find((s) => s.name.endsWith("_sum"))!.value
    const count = latency.find((s) => s.name.endsWith("_count"))!.value
    expect(count).toBeGreaterThan(0)
    expect(sum / count).toBeLessThan(1)
  })

  it("a real Prometheus server scrapes it without error and answers queries over it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "osqueue-prometheus-"))
    try {
      const webPort = await freePort()
      const config = join(dir, "prometheus.yml")
      await writeFile(
        config,
        [
          "global:",
          "  scrape_interval: 1s",
          "scrape_configs:",
          "  - job_name: osqueue",
          "    static_configs:",
          `      - targets: ["127.0.0.1:${demo.port}"]`,
          ""
        ].join("\n")
      )
      const server = spawn(prometheus, [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${webPort}`
      ], { stdio: ["ignore", "ignore", "pipe"] })
      let log = ""
      server.stderr.on("data", (chunk) => (log += chunk))
      try {
        const api = `http://127.0.0.1:${webPort}/api/v1`
        const target = await eventually("Prometheus to scrape the broker", async () => {
          const body = (await (await fetch(`${api}/targets`)).json()) as {
            data: { activeTargets: Array<{ health: string; lastError: string; scrapeUrl: string }> }
          }
          const found = body.data.activeTargets[0]
          return found !== undefined && found.health !== "unknown" ? found : undefined
        }, 30_000).catch((error: unknown) => {
          throw new Error(`${String(error)}; Prometheus said:\n${log}`)
        })
        expect(target).toMatchObject({ health: "up", lastError: "", scrapeUrl: `${demo.url}/metrics` })
        // Nothing dropped as a duplicate or out of order: Prometheus counts those samples in its own
        // metrics and logs them only at debug level. (It keeps quiet about a repeated sample of the
        // same value, as the old second +Inf bucket was: the series check above is what catches that.)
        const own = await (await fetch(`http://127.0.0.1:${webPort}/metrics`)).text()
        for (const dropped of ["sample_duplicate_timestamp", "sample_out_of_order", "sample_out_of_bounds"]) {
          expect(own, dropped).toMatch(new RegExp(`^prometheus_target_scrapes_${dropped}_total 0$`, "m"))
        }

        const query = async (expression: string) => {
          const body = (await (await fetch(`${api}/query?query=${encodeURIComponent(expression)}`)).json()) as {
            status: string
            data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> }
          }
          expect(body.status).toBe("success")
          return body.data.result
        }
        const leader = await query("osqueue_leader")
        expect(leader).toHaveLength(1)
        expect(leader[0]!.value[1]).toBe("1")
        expect(leader[0]!.metric).toMatchObject({ job: "osqueue", instance: `127.0.0.1:${demo.port}` })
        const completed = await query("osqueue_worker_jobs_processed_total{outcome=\"completed\"}")
        expect(Number(completed[0]!.value[1])).toBeGreaterThan(0)
        const buckets = await query("osqueue_commit_latency_seconds_bucket{le=\"+Inf\"}")
        expect(buckets).toHaveLength(1)

        // The Grafana dashboard's queries parse and run (docs.test.ts holds its names to the code's).
        for (const expression of dashboardQueries) await query(expression.replaceAll("$__rate_interval", "1m"))
      } finally {
        server.kill("SIGTERM")
        await new Promise((resolve) => server.once("exit", resolve))
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
