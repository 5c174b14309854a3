/**
 * `pnpm bundle-check`: the deploy guide (docs/deploy.md), run. Builds the single-file bundle
 * (`pnpm bundle`), copies it alone into an empty folder with no node_modules above it, and from
 * there, against the S3 server the S3 tests use (radosgw, `scripts/s3-server start`; the same
 * OSQUEUE_TEST_S3_* variables, docs/storage.md "Testing"), under a fresh key prefix:
 *
 * - starts three brokers as the systemd unit does: `node osqueue.mjs broker`, the environment of
 *   deploy/osqueue.env with the store pointed at radosgw, a tokens file, a short election TTL;
 *   then all of what follows again on GCS, against the storage tests' GCS stand-in;
 * - checks /healthz and /readyz (public) on each, that one leads and the others know it, that
 *   other routes need a token, and that the dashboard shipped beside the bundle is served;
 * - runs the container's HEALTHCHECK command (deploy/Dockerfile) against a broker;
 * - enqueues a job and works it through the bundled CLI (`enqueue`, `worker`, `jobs get`);
 * - kills the leader (SIGKILL), sees another broker take over, and a second job enqueued and
 *   worked through the new leader by the same worker; starts the killed broker again: it follows;
 * - restarts the brokers in the upgrade's order (docs/deploy.md, "Upgrades"): each follower with
 *   SIGTERM and a new start, the leader unchanged; then the leader, handing off; a third job;
 * - scrapes /metrics with a read token and checks every metric the alerts use is documented;
 * - stops the rest with SIGTERM, as systemd does: each exits 0;
 * - receives the brokers' traces (OTEL_EXPORTER_OTLP_ENDPOINT) on a collector of its own;
 * - verifies the systemd unit with `systemd-analyze verify` where systemd is installed.
 *
 * There is no skip: without an S3 server it fails, saying how to start one. Exits 1 on the first
 * failure, printing the brokers' logs; every process it started is killed however it ends.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import { type AddressInfo, createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join, parse } from "node:path"
import { fileURLToPath } from "node:url"
import { startGcsServer } from "../../packages/storage/test/support/gcs-server.js"

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "..", "..")
const deploy = join(root, "deploy")
const started = Date.now()

const step = (what: string) => console.log(`\n=== ${what} (${((Date.now() - started) / 1000).toFixed(1)}s)`)
const children = new Set<ChildProcess>()
const logs = new Map<string, () => string>()
const fail = (message: string): never => {
  for (const [name, output] of logs) {
    console.error(`--- ${name}, last lines\n${output().split("\n").slice(-25).join("\n")}`)
  }
  console.error(`\nbundle-check: FAIL: ${message}`)
  process.exit(1)
}
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL")
})
// A hard bound: nothing here should take more than a few minutes, even on a loaded machine.
setTimeout(() => fail("still running after 10 minutes"), 10 * 60_000).unref()

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const eventually = async <A>(what: string, check: () => Promise<A | undefined>, timeoutMs: number): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) return fail(`timed out after ${timeoutMs / 1000} s waiting for ${what}`)
    await sleep(100)
  }
}
const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

/** A systemd / Docker env file: `KEY=value` lines, `#` comments; quotes are refused (Docker would keep them). */
const envFile = (path: string): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [n, raw] of readFileSync(path, "utf8").split("\n").entries()) {
    const line = raw.trim()
    if (line === "" || line.startsWith("#")) continue
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line)
    if (match === null) fail(`${path}:${n + 1}: not a KEY=value line: ${line}`)
    const [, key, value] = match!
    if (/^["']/.test(value!)) fail(`${path}:${n + 1}: ${key} is quoted: Docker's --env-file would keep the quotes`)
    env[key!] = value!
  }
  return env
}

// ------------------------------------------------------------------ the store
const s3 = {
  endpoint: process.env.OSQUEUE_TEST_S3_ENDPOINT ?? "http://127.0.0.1:7480",
  bucket: process.env.OSQUEUE_TEST_S3_BUCKET ?? "osqueue-test",
  accessKey: process.env.OSQUEUE_TEST_S3_ACCESS_KEY ?? "test",
  secretKey: process.env.OSQUEUE_TEST_S3_SECRET_KEY ?? "test",
  region: process.env.OSQUEUE_TEST_S3_REGION ?? "us-east-1",
  etagQuoting: process.env.OSQUEUE_TEST_S3_ETAG_QUOTING ?? "unquoted"
}
step(`the S3 server at ${s3.endpoint}`)
await fetch(s3.endpoint).catch(() =>
  fail(
    `no S3 server answers at ${s3.endpoint}: start one with scripts/s3-server start (or set OSQUEUE_TEST_S3_ENDPOINT)`
  )
)

// ------------------------------------------------------------------ the bundle, alone in an empty folder
step("the bundle (pnpm bundle)")
const work = mkdtempSync(join(tmpdir(), "osqueue-bundle-"))
const built = join(work, "built")
execFileSync(process.execPath, ["--import", "tsx", join(here, "main.ts"), "--out", built], {
  cwd: root,
  stdio: "inherit"
})
const folder = join(work, "opt-osqueue")
cpSync(built, folder, { recursive: true })
for (let dir = folder;; dir = dirname(dir)) {
  if (existsSync(join(dir, "node_modules"))) {
    fail(`${join(dir, "node_modules")} exists: the bundle would not be alone (set TMPDIR elsewhere)`)
  }
  if (dir === parse(dir).root) break
}
console.log(`${folder}: ${execFileSync("ls", ["-A", folder], { encoding: "utf8" }).trim().split("\n").join(", ")}`)
const notices = readFileSync(join(folder, "THIRD-PARTY-LICENSES.txt"), "utf8")
for (const name of ["effect@", "@aws-sdk/client-s3@", "@google-cloud/storage@"]) {
  if (!notices.includes(`\n${name}`)) {
    fail(`THIRD-PARTY-LICENSES.txt does not list ${name.slice(0, -1)}, which the bundle holds`)
  }
}

// What systemd gives a service: no inherited environment (no NODE_PATH, no NODE_OPTIONS).
const baseEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" }

const start = (name: string, args: ReadonlyArray<string>, env: Record<string, string>) => {
  const child = spawn(process.execPath, [join(folder, "osqueue.mjs"), ...args], {
    cwd: folder,
    env: { ...baseEnv, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  children.add(child)
  let output = ""
  child.stdout!.on("data", (chunk) => (output += chunk))
  child.stderr!.on("data", (chunk) => (output += chunk))
  logs.set(name, () => output)
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code, signal) => {
      children.delete(child)
      resolve(code ?? (signal === null ? null : -1))
    })
  )
  return { child, exited, output: () => output }
}

/**
 * A command of `program` run to its end: its exit code and output. Never `spawnSync`: the GCS
 * stand-in runs in this process, and a blocked event loop would stall the brokers' store calls.
 */
const runToEnd = (program: string, args: ReadonlyArray<string>, env: Record<string, string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(program, args, {
      cwd: folder,
      env: { ...baseEnv, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 60_000
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

/**
 * A client command of the bundle, run to its end: its stdout, or a failure naming its output;
 * with `unless`, a failure it says is one to wait out (a follower that trails) gives `undefined`.
 */
async function cli(args: ReadonlyArray<string>, env: Record<string, string>): Promise<string>
async function cli(
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  unless: (output: string) => boolean
): Promise<string | undefined>
async function cli(
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  unless?: (output: string) => boolean
): Promise<string | undefined> {
  const result = await runToEnd(process.execPath, [join(folder, "osqueue.mjs"), ...args], env)
  if (result.code === 0) return result.stdout
  const output = `${result.stdout}${result.stderr}`
  return unless?.(output) ? undefined : fail(`osqueue ${args.join(" ")} exited ${result.code}:\n${output}`)
}

step("osqueue --help from the empty folder")
if (!(await cli(["--help"], {})).includes("broker")) fail("osqueue --help does not list the broker command")

// ------------------------------------------------------------------ three brokers
const tokens = { admin: "admin-token", producer: "producer-token", worker: "worker-token", read: "read-token" }
const tokensFile = join(work, "tokens")
writeFileSync(tokensFile, Object.entries(tokens).map(([role, token]) => `${role} ${token}\n`).join(""))

// A collector for the brokers' traces (docs/tracing.md): it counts the OTLP exports it receives.
const exports: Array<string> = []
const collector = http.createServer((request, response) => {
  request.resume()
  request.on("end", () => {
    exports.push(`${request.method} ${request.url} ${request.headers["content-type"]}`)
    response.writeHead(200, { "content-type": "application/x-protobuf" }).end()
  })
})
await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve))
const collectorUrl = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`

const fromFile = envFile(join(deploy, "osqueue.env"))
if (fromFile.STORAGE_BACKEND !== "s3") {
  fail(`deploy/osqueue.env sets STORAGE_BACKEND=${fromFile.STORAGE_BACKEND}, the guide's example is s3`)
}
const shared: Record<string, string> = {
  ...fromFile,
  OSQUEUE_TOKENS_FILE: tokensFile,
  // A takeover after the leader is killed waits a TTL: 3 s rather than 10 keeps the check short.
  OSQUEUE_ELECTION_TTL: "3 seconds",
  BROKER_HOST: "127.0.0.1",
  OTEL_EXPORTER_OTLP_ENDPOINT: collectorUrl
}
const run = Date.now().toString(36)
// The file's S3 settings are for AWS; here the store is radosgw (docs/storage.md, "s3").
const onRadosgw = {
  ...shared,
  S3_BUCKET: s3.bucket,
  S3_PREFIX: `bundle-check-${run}/`,
  S3_REGION: s3.region,
  S3_ENDPOINT: s3.endpoint,
  S3_FORCE_PATH_STYLE: "true",
  S3_ETAG_QUOTING: s3.etagQuoting,
  AWS_ACCESS_KEY_ID: s3.accessKey,
  AWS_SECRET_ACCESS_KEY: s3.secretKey
}
// The file's GCS lines instead, against the GCS JSON-API stand-in of the storage tests (no GCS
// server installs here: docs/storage.md, "Testing"): the bundled Google SDK on the wire.
const gcs = await startGcsServer({ buckets: ["osqueue-deploy"] })
const onGcs = {
  ...Object.fromEntries(Object.entries(shared).filter(([key]) => !key.startsWith("S3_"))),
  STORAGE_BACKEND: "gcs",
  GCS_BUCKET: "osqueue-deploy",
  GCS_PREFIX: `bundle-check-${run}/`,
  GCS_API_ENDPOINT: gcs.url,
  GCS_PROJECT_ID: "test"
}
const perBroker = envFile(join(deploy, "broker-a.env"))
if (Object.keys(perBroker).join() !== "BROKER_URL") fail("deploy/broker-a.env should set BROKER_URL alone")
// The README's table of variables is the reference: the env files name none it does not, set or commented out.
const readme = readFileSync(join(root, "README.md"), "utf8")
const documentedVariables = new Set(
  readme.split("\n").filter((line) => line.startsWith("| `")).flatMap((line) => line.match(/`[A-Z][A-Z0-9_]+`/g) ?? [])
)
for (const file of ["osqueue.env", "broker-a.env"]) {
  for (const [, name] of readFileSync(join(deploy, file), "utf8").matchAll(/^#? ?([A-Z][A-Z0-9_]+)=/gm)) {
    if (!documentedVariables.has(`\`${name}\``)) {
      fail(`deploy/${file} names ${name}, which the README's table of variables does not`)
    }
  }
}

/**
 * The guide on one store: three brokers from the bundle with `env`, health checks, a job through
 * the bundled CLI, the leader killed and another taking over, a second job, the killed broker
 * back, a rolling restart in the upgrade's order, a third job, metrics, SIGTERM.
 */
const runQueue = async (store: string, env: Record<string, string>) => {
  step(`${store}: three brokers from the bundle`)
  /** A broker: its name and URL stay, its process changes when it is restarted. */
  interface Broker {
    readonly name: string
    readonly url: string
    process: ReturnType<typeof start>
    starts: number
  }
  const launch = (broker: Omit<Broker, "process">) =>
    start(`${store}: broker ${broker.name}${broker.starts > 1 ? ` (start ${broker.starts})` : ""}`, ["broker"], {
      ...env,
      BROKER_PORT: new URL(broker.url).port,
      BROKER_URL: broker.url
    })
  const brokers: Array<Broker> = await Promise.all(["a", "b", "c"].map(async (name) => {
    const broker = { name, url: `http://127.0.0.1:${await freePort()}`, starts: 1 }
    return { ...broker, process: launch(broker) }
  }))
  const brokerUrls = brokers.map((b) => b.url).join(",")
  const restart = (broker: Broker) => {
    broker.starts += 1
    broker.process = launch(broker)
  }
  const stopped = async (name: string, exited: Promise<number | null>) => {
    const code = await Promise.race([exited, sleep(30_000).then(() => "still running after 30 s")])
    if (code !== 0) fail(`${name} after SIGTERM: ${code === null ? "no exit code" : code}`)
  }
  /** SIGTERM, as `systemctl stop` sends it: the broker must exit 0. */
  const stop = async (broker: Broker) => {
    broker.process.child.kill("SIGTERM")
    await stopped(`broker ${broker.name}`, broker.process.exited)
  }

  interface Readiness {
    readonly ready: boolean
    readonly role: "leader" | "follower"
    readonly leaderUrl: string | null
    readonly epoch: number
  }
  const readyz = async (url: string): Promise<Readiness> => {
    const response = await fetch(`${url}/readyz`)
    return (await response.json()) as Readiness
  }

  const leaderOf = (among: ReadonlyArray<{ readonly url: string }>) =>
    eventually("one leader, and every other broker ready and naming it", async () => {
      const views = await Promise.all(among.map(async (b) => ({ url: b.url, r: await readyz(b.url) })))
      const leaders = views.filter((v) => v.r.role === "leader" && v.r.ready)
      if (leaders.length !== 1) return undefined
      const leader = leaders[0]!
      return views.every((v) => v.r.ready && v.r.leaderUrl === leader.url)
        ? { url: leader.url, epoch: leader.r.epoch }
        : undefined
    }, 60_000)

  const first = await leaderOf(brokers)
  console.log(`leader ${first.url} (epoch ${first.epoch}); followers ready`)

  step(`${store}: health checks, tokens and the dashboard`)
  for (const b of brokers) {
    const health = await fetch(`${b.url}/healthz`)
    const body = (await health.json()) as { ok?: boolean }
    if (health.status !== 200 || body.ok !== true) {
      fail(`${b.url}/healthz answered ${health.status} ${JSON.stringify(body)}`)
    }
  }
  const unauthorized = await fetch(`${first.url}/v1/stats`)
  if (unauthorized.status !== 401) fail(`/v1/stats without a token answered ${unauthorized.status}, not 401`)
  const page = await fetch(`${first.url}/`)
  const html = await page.text()
  const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1]
  if (page.status !== 200 || asset === undefined) {
    fail(`the dashboard at / answered ${page.status}: is dashboard/ beside the bundle?\n${html.slice(0, 300)}`)
  }
  const script = await fetch(`${first.url}${asset}`)
  if (script.status !== 200) fail(`the dashboard's ${asset} answered ${script.status}`)
  console.log(`/healthz 200 on all three; /v1/stats 401 without a token; / and ${asset} served from dashboard/`)

  step(`${store}: the container's HEALTHCHECK command (deploy/Dockerfile)`)
  const dockerfile = readFileSync(join(deploy, "Dockerfile"), "utf8")
  const healthcheck = /^HEALTHCHECK .*CMD (\[.*\])\s*$/m.exec(dockerfile)?.[1]
  if (healthcheck === undefined) fail("deploy/Dockerfile has no HEALTHCHECK ... CMD [...] line")
  const [command, ...commandArgs] = JSON.parse(healthcheck!) as Array<string>
  if (command !== "node") fail(`the HEALTHCHECK runs ${command}: the image has node, and no curl`)
  const probe = (port: string) =>
    runToEnd(process.execPath, commandArgs, { BROKER_PORT: port }).then((result) => result.code)
  const leaderPort = new URL(first.url).port
  if ((await probe(leaderPort)) !== 0) {
    fail(`the HEALTHCHECK command failed against a running broker on port ${leaderPort}`)
  }
  if ((await probe(String(await freePort()))) === 0) {
    fail("the HEALTHCHECK command succeeded against a port nothing listens on")
  }
  console.log("exits 0 against a broker, non-zero against a closed port")

  // ------------------------------------------------------------------ a job, through the bundled CLI
  /**
   * The JSON a `--json` command printed. The command's own log lines (a client's "switched broker"
   * after a failover) go to stdout too, before it: the JSON starts at the first line that opens an object.
   */
  const jsonOf = (stdout: string): unknown => JSON.parse(stdout.slice(stdout.search(/^\{/m)))

  const asProducer = { OSQUEUE_BROKERS: brokerUrls, OSQUEUE_TOKEN: tokens.producer }
  const asReader = { OSQUEUE_BROKERS: brokerUrls, OSQUEUE_TOKEN: tokens.read }
  const enqueue = async (n: number) => {
    const job = jsonOf(
      await cli(["enqueue", "email", "-p", JSON.stringify({ to: `deploy-${n}@example.com` }), "--json"], asProducer)
    ) as {
      id?: string
    }
    if (typeof job.id !== "string") fail(`osqueue enqueue --json gave no id: ${JSON.stringify(job)}`)
    return job.id!
  }
  /**
   * Waits for the job to complete, polling REST (a command at every poll would load the machine), then
   * reads it as a user would, with `osqueue jobs get` (from any broker: a follower's view may
   * trail the leader's by a poll, hence the retries).
   */
  const completed = async (id: string) => {
    const isCompleted = async (url: string) => {
      const response = await fetch(`${url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${tokens.read}` } })
      return response.ok && ((await response.json()) as { state: string }).state === "completed"
    }
    await eventually(`${id} to complete`, async () => {
      for (const broker of brokerUrls.split(",")) if (await isCompleted(broker).catch(() => false)) return true
      return undefined
    }, 60_000)
    await eventually(`osqueue jobs get ${id} to show it completed`, async () => {
      // A follower that has not yet read the commit holding the job knows no such job: not yet.
      const output = await cli(["jobs", "get", id, "--json"], asReader, (out) => out.includes("JobNotFound"))
      const job = output === undefined ? undefined : jsonOf(output) as { state: string }
      return job?.state === "completed" ? job : undefined
    }, 30_000)
  }

  step(`${store}: enqueue a job and work it (osqueue enqueue, osqueue worker, osqueue jobs get)`)
  const firstJob = await enqueue(1)
  const worker = start(`${store}: worker`, ["worker", "-c", "2", "--fail-rate", "0", "--work-ms", "10"], {
    OSQUEUE_BROKERS: brokerUrls,
    OSQUEUE_TOKEN: tokens.worker
  })
  await completed(firstJob)
  console.log(`${firstJob} completed`)

  // ------------------------------------------------------------------ failover
  step(`${store}: kill the leader (SIGKILL); another broker takes over`)
  const leader = brokers.find((b) => b.url === first.url)!
  const killedAt = Date.now()
  leader.process.child.kill("SIGKILL")
  await leader.process.exited
  const survivors = brokers.filter((b) => b !== leader)
  const second = await leaderOf(survivors)
  if (second.epoch <= first.epoch) fail(`the new leader's epoch ${second.epoch} is not past ${first.epoch}`)
  console.log(
    `${second.url} leads (epoch ${second.epoch}) ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`
  )

  step(`${store}: a second job, through the new leader, worked by the same worker`)
  const secondJob = await enqueue(2)
  await completed(secondJob)
  console.log(`${secondJob} completed`)

  step(`${store}: the killed broker starts again (Restart=always) and follows`)
  restart(leader)
  const rejoined = await leaderOf(brokers)
  if (rejoined.url !== second.url || rejoined.epoch !== second.epoch) {
    fail(`a broker that rejoined changed the leader: ${JSON.stringify(rejoined)}`)
  }
  console.log(`${leader.url} follows ${second.url}`)

  // ------------------------------------------------------------------ the upgrade's order (docs/deploy.md, "Upgrades")
  step(`${store}: a rolling restart: the followers one at a time, then hand off, then the old leader`)
  for (const follower of brokers.filter((b) => b.url !== second.url)) {
    await stop(follower)
    restart(follower)
    const still = await leaderOf(brokers)
    if (still.url !== second.url || still.epoch !== second.epoch) {
      fail(`restarting follower ${follower.name} moved the leader: ${JSON.stringify(still)}`)
    }
  }
  const handingOver = brokers.find((b) => b.url === second.url)!
  const handedAt = Date.now()
  await stop(handingOver)
  const fourth = await leaderOf(brokers.filter((b) => b !== handingOver))
  const handoffSeconds = ((Date.now() - handedAt) / 1000).toFixed(1)
  restart(handingOver)
  const settled = await leaderOf(brokers)
  if (settled.url !== fourth.url || fourth.epoch !== second.epoch + 1) {
    fail(`after the handoff: ${JSON.stringify({ fourth, settled })}`)
  }
  const thirdJob = await enqueue(3)
  await completed(thirdJob)
  console.log(
    `followers restarted under ${second.url}; handed off to ${fourth.url} (epoch ${fourth.epoch}) in ${handoffSeconds} s; ${thirdJob} completed`
  )

  // ------------------------------------------------------------------ metrics and the alerts
  step(`${store}: /metrics with a read token; the alerts' metrics`)
  const metrics = await fetch(`${settled.url}/metrics`, { headers: { authorization: `Bearer ${tokens.read}` } })
  const text = await metrics.text()
  if (metrics.status !== 200 || !/^osqueue_leader 1$/m.test(text)) {
    fail(`/metrics on the leader answered ${metrics.status} without osqueue_leader 1`)
  }
  const documented = readFileSync(join(root, "docs", "monitoring.md"), "utf8")
  const alertMetrics = new Set(
    readFileSync(join(deploy, "prometheus", "alerts.yml"), "utf8").match(/\bosqueue_[a-z_]+/g)
  )
  for (const name of alertMetrics) {
    const base = name.replace(/_(bucket|sum|count)$/, "")
    if (!documented.includes(`\`${base}\``)) {
      fail(`deploy/prometheus/alerts.yml uses ${name}, which docs/monitoring.md does not list`)
    }
  }
  console.log(`osqueue_leader 1 on the new leader; ${alertMetrics.size} metrics in the alerts, all documented`)

  // ------------------------------------------------------------------ stopping, as systemd does
  step(`${store}: SIGTERM the worker and the brokers: each exits 0`)
  worker.child.kill("SIGTERM")
  await stopped("the worker", worker.exited)
  for (const broker of brokers.filter((b) => b.url !== settled.url)) await stop(broker)
  await stop(brokers.find((b) => b.url === settled.url)!)
  console.log("all stopped with exit code 0")

  // Spans are sent every 5 s and when a process stops cleanly: every run has sent some by now.
  const traces = exports.splice(0).filter((line) => line === "POST /v1/traces application/x-protobuf")
  if (traces.length === 0) fail("the brokers sent no traces to OTEL_EXPORTER_OTLP_ENDPOINT")
  console.log(`${traces.length} OTLP exports received from the brokers`)
}

await runQueue("s3 (radosgw)", onRadosgw)
await runQueue("gcs (the stand-in)", onGcs)
await gcs.close()
collector.close()

// ------------------------------------------------------------------ the systemd unit
step("systemd-analyze verify deploy/systemd/osqueue-broker@.service")
const analyze = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" })
if (analyze.error !== undefined) {
  console.log("systemd-analyze is not installed here: the unit was not verified")
} else {
  // As installed: node where this machine has it, the bundle in this folder, as instance "a".
  const unit = readFileSync(join(deploy, "systemd", "osqueue-broker@.service"), "utf8")
  if (!unit.includes("ExecStart=/usr/bin/node /opt/osqueue/osqueue.mjs broker")) {
    fail("the unit's ExecStart is not the guide's")
  }
  const installed = join(work, "osqueue-broker@a.service")
  writeFileSync(installed, unit.replace("/usr/bin/node", process.execPath).replace("/opt/osqueue", folder))
  const verify = spawnSync("systemd-analyze", ["verify", installed], { encoding: "utf8" })
  const complaints = `${verify.stdout}${verify.stderr}`.trim()
  if (verify.status !== 0 || complaints !== "") fail(`systemd-analyze verify: ${complaints}`)
  console.log("no complaints")
}

rmSync(work, { recursive: true, force: true })
console.log(`\nbundle-check: PASS in ${((Date.now() - started) / 1000).toFixed(0)} s`)
