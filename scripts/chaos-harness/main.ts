/**
 * The chaos run (`scripts/chaos`): three real brokers on one store, a producer fleet and a
 * worker fleet, and faults — SIGKILL of the leader, SIGTERM of the leader (clean handoff),
 * SIGSTOP of a broker for longer than the election TTL then SIGCONT (a zombie when it led),
 * and store faults inside every broker (latency and spikes, refused reads and writes, writes
 * whose outcome is unknown). Then it checks what must hold and prints the figures. Bounded in
 * time, loopback only, and every process it started is killed when it ends, however it ends.
 * Exit code 0 when every check passed, 1 otherwise.
 */
import {
  Cause,
  ConfigProvider,
  Context,
  Duration,
  Effect,
  Exit,
  Fiber,
  HashMap,
  Layer,
  Logger,
  LogLevel,
  Option,
  Random,
  Scope
} from "effect"
import { randomUUID } from "node:crypto"
import { appendFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import * as Cas from "../../packages/core/src/Cas.js"
import * as Election from "../../packages/core/src/Election.js"
import * as Log from "../../packages/core/src/Log.js"
import * as LogEntry from "../../packages/core/src/LogEntry.js"
import * as Replica from "../../packages/core/src/Replica.js"
import { FileStore, ObjectStore } from "../../packages/storage/src/index.js"
import { type BrokerSlot, leaderInfo, startBrokers } from "./brokers.js"
import {
  type Check,
  handoffCheck,
  type ProcessLog,
  runChecks,
  scheduleCheck,
  selfTest,
  writerCheck,
  type WrittenEntry
} from "./checks.js"
import {
  chainWorkerId,
  chaosSchedule,
  Journal,
  setLimit,
  setSchedule,
  startChainWorker,
  startProducers,
  startWorkers
} from "./fleet.js"

const usage = `usage: scripts/chaos [--minutes N] [--store file|s3] [--seed N] [--election-ttl-ms N] [--lease-ms N]
                     [--rate JOBS_PER_S] [--keep]
  --minutes          how long faults are injected (default 1); the run then drains and checks
  --store            file (default: a fresh temporary directory) or s3 (radosgw from
                     scripts/s3-server at S3_ENDPOINT, default http://127.0.0.1:7480, bucket
                     S3_BUCKET, default osqueue-test, under a fresh prefix)
  --seed             seeds the fault schedule and the store faults (default: random, printed)
  --only             inject only one kind of broker fault: kill, term or pause (default: all three)
  --keep             keep the run's directory (logs, records) even when every check passed`

const { values: args } = parseArgs({
  options: {
    minutes: { type: "string", default: "1" },
    store: { type: "string", default: "file" },
    seed: { type: "string" },
    "election-ttl-ms": { type: "string", default: "2000" },
    "lease-ms": { type: "string", default: "6000" },
    rate: { type: "string", default: "10" },
    only: { type: "string" },
    keep: { type: "boolean", default: false },
    help: { type: "boolean", default: false }
  }
})
if (args.help) {
  console.log(usage)
  process.exit(0)
}
const positive = (name: string, text: string): number => {
  const value = Number(text)
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`scripts/chaos: --${name} must be a positive number, got "${text}"\n${usage}`)
    process.exit(2)
  }
  return value
}
const minutes = positive("minutes", args.minutes)
const ttlMs = positive("election-ttl-ms", args["election-ttl-ms"])
const leaseMs = positive("lease-ms", args["lease-ms"])
const rate = positive("rate", args.rate)
const seed = args.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : positive("seed", args.seed)
if (args.store !== "file" && args.store !== "s3") {
  console.error(`scripts/chaos: --store must be file or s3, got "${args.store}"\n${usage}`)
  process.exit(2)
}
const backend = args.store
const only = args.only
if (only !== undefined && only !== "kill" && only !== "term" && only !== "pause") {
  console.error(`scripts/chaos: --only must be kill, term or pause, got "${only}"\n${usage}`)
  process.exit(2)
}
/** Console lines carry the time, to line them up with the brokers' logs. */
const say = (text: string) => console.log(`${new Date().toISOString().slice(11, 23)} chaos: ${text}`)

// Effect's generator, seeded as the fault decorator seeds its own: the fault schedule repeats for a given seed.
const random = Random.make(seed)

// Store faults inside each broker: the issue's list — latency spikes, 5% errors, ambiguous puts.
const faults = {
  latencyMs: 1,
  jitterMs: 10,
  spikeRate: 0.01,
  spikeMs: Math.round(ttlMs * 0.75),
  readFailureRate: 0.05,
  writeFailureRate: 0.05,
  ambiguousWriteRate: 0.03,
  lostWriteRate: 0.02
}

const s3Endpoint = process.env.S3_ENDPOINT ?? "http://127.0.0.1:7480"
const s3Env = (prefix: string): Record<string, string> => ({
  STORAGE_BACKEND: "s3",
  S3_BUCKET: process.env.S3_BUCKET ?? "osqueue-test",
  S3_PREFIX: prefix,
  S3_REGION: process.env.S3_REGION ?? "us-east-1",
  S3_ENDPOINT: s3Endpoint,
  S3_FORCE_PATH_STYLE: "true",
  S3_ETAG_QUOTING: process.env.S3_ETAG_QUOTING ?? "unquoted",
  AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? "test",
  AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? "test",
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true"
})

interface Takeover {
  readonly kind: "kill" | "term" | "pause"
  /** When the fault was injected, and the epoch of the leader it hit. */
  readonly at: number
  readonly epoch: number
  /** Until a broker answered that it leads at a newer epoch (the harness's polling); null: none did. */
  readonly ms: number | null
}

const percentile = (values: ReadonlyArray<number>, p: number): number | null => {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!
}

/** The client's own retries, counted from its log ("retrying" with the error's tag). */
const retries = new Map<string, number>()
/** Where the fleets' warnings go, once the run's directory exists. */
let fleetLog: string | undefined
const bump = (map: Map<string, number>, key: string, by = 1) => map.set(key, (map.get(key) ?? 0) + by)

/**
 * The positions the log holds: its objects, or the entries of the store's own log (the file
 * store's segment files, read through the store, as a broker would).
 */
const heldPositions = Effect.flatMap(ObjectStore, (s) =>
  s.appendLogs === undefined
    ? Effect.map(s.list(LogEntry.logPrefix), (keys) => keys.flatMap((key) => LogEntry.positionOf(key) ?? []))
    : s.appendLogs.positions(LogEntry.logPrefix)).pipe(Effect.orDie)

/** The log entries left in the store, as `writerCheck` reads them (an entry that does not decode fails the run). */
const writtenEntries = (positions: ReadonlyArray<number>) =>
  Effect.forEach(
    positions,
    (position) =>
      Log.Log.pipe(
        Effect.flatMap((log) => log.read(position)),
        Effect.map(Option.map((entry): WrittenEntry => ({
          position: entry.position,
          epoch: entry.epoch,
          commitId: entry.commitId,
          ...(entry.header === undefined ? {} : { leaderId: entry.header.leader?.id ?? null })
        })))
      ),
    { concurrency: 8 }
  ).pipe(Effect.map((found) => found.flatMap(Option.toArray)), Effect.provide(Log.layer), Effect.orDie)

const program = Effect.gen(function*() {
  const blind = selfTest()
  if (blind.length > 0) return yield* Effect.fail(`the checks are blind: ${blind.join("; ")}`)

  const workDir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "osqueue-chaos-")))
  const logDir = join(workDir, "logs")
  mkdirSync(logDir, { recursive: true })
  fleetLog = join(logDir, "fleet.log")
  const prefix = `chaos-${randomUUID().slice(0, 8)}/`
  const storeDir = join(workDir, "store")
  const env = backend === "s3" ? s3Env(prefix) : {}
  const storeArgs = backend === "s3" ? ["--storage", "s3"] : ["--storage", "file", "--dir", storeDir]
  if (backend === "file") mkdirSync(storeDir)
  for (const [k, v] of Object.entries(env)) if (k.startsWith("AWS_")) process.env[k] = v

  // The harness's own view of the store: no faults, for discovery and the final read.
  const storeLayer: Layer.Layer<ObjectStore, unknown> = backend === "s3"
    ? Layer.unwrapEffect(
      Effect.promise(() => import("../../packages/storage/src/S3Store.js")).pipe(
        Effect.map((S3) =>
          S3.layerConfig.pipe(
            Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
          )
        )
      )
    )
    : FileStore.layer({ directory: storeDir })
  const store = Context.get(yield* Layer.build(storeLayer), ObjectStore)
  const discover = Election.leaderFromStore().pipe(Effect.provideService(ObjectStore, store))

  say(
    `${minutes} min on ${
      backend === "s3" ? `s3 ${s3Endpoint} prefix ${prefix}` : `file store ${storeDir}`
    }, seed ${seed}`
  )
  say(`election TTL ${ttlMs} ms, lease ${leaseMs} ms, ${rate} jobs/s; store faults ${JSON.stringify(faults)}`)
  say(`logs in ${logDir}`)

  const brokers = yield* startBrokers(3, {
    electionTtlMs: ttlMs,
    storeArgs,
    // Checkpoints every 40 entries: kills and pauses land during checkpoints and collections too.
    env: {
      ...env,
      OSQUEUE_KEEP_FINISHED: "10000000",
      OSQUEUE_KEEP_FINISHED_FOR: "7 days",
      OSQUEUE_CHECKPOINT_ENTRIES: "40"
    },
    faults,
    seed,
    logDir
  })

  // ---- the leader as the brokers report it, every 100 ms
  let leader: { url: string; epoch: number } | undefined
  /** When each epoch was first seen leading: which lease operations crossed a takeover. */
  const epochs: Array<{ readonly at: number; readonly epoch: number }> = []
  const live = () => brokers.filter((b) => b.alive && b.status !== "stopped")
  const observe = Effect.gen(function*() {
    // The slots asked, captured before the answers come: a restart meanwhile must not shift them.
    const asked = live()
    const infos = yield* Effect.forEach(asked, (b) => leaderInfo(b.spec.url), { concurrency: "unbounded" })
    for (const [i, info] of infos.entries()) {
      const slot = asked[i]!
      if (info !== undefined && slot.status === "starting") slot.status = "running"
      if (info?.role !== "leader") continue
      if (leader === undefined || info.epoch > leader.epoch) epochs.push({ at: Date.now(), epoch: info.epoch })
      if (leader === undefined || info.epoch >= leader.epoch) leader = { url: slot.spec.url, epoch: info.epoch }
    }
  })
  const monitor = yield* Effect.forkScoped(Effect.forever(Effect.zipRight(observe, Effect.sleep("100 millis"))))
  const waitFor = <A>(what: string, timeoutMs: number, f: () => A | undefined) =>
    Effect.gen(function*() {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const value = f()
        if (value !== undefined) return Option.some(value)
        if (Date.now() > deadline) {
          say(`timed out after ${timeoutMs} ms waiting for ${what}`)
          return Option.none<A>()
        }
        yield* Effect.sleep("50 millis")
      }
    })

  const first = yield* waitFor("a first leader", 90_000, () => leader)
  if (Option.isNone(first)) return yield* Effect.fail("no broker became leader")
  yield* waitFor("every broker up", 90_000, () => (brokers.every((b) => b.status === "running") ? true : undefined))
  say(`${first.value.url} leads (epoch ${first.value.epoch}); starting the fleets`)

  // ---- fleets
  const journal = new Journal()
  const fleetOptions = {
    urls: brokers.map((b) => b.spec.url),
    discover,
    producers: 3,
    rate,
    workers: 3,
    concurrency: 4,
    leaseMs,
    requestTimeoutMs: Math.max(2_000, ttlMs),
    random
  }
  yield* setLimit(fleetOptions)
  const workerScope = yield* Scope.make()
  yield* startWorkers(fleetOptions, journal, workerScope)
  yield* startChainWorker(fleetOptions, journal, workerScope)
  const producers = yield* startProducers(fleetOptions, journal)
  const scheduledAt = yield* setSchedule(fleetOptions, journal)
  say(`schedule ${chaosSchedule.id} set: a ${chaosSchedule.job.type} job every ${chaosSchedule.everyMs} ms`)

  // ---- faults
  const takeovers: Array<Takeover> = []
  const failures: Array<string> = []
  const counts = { kill: 0, term: 0, pause: 0, pausedLeader: 0, zombieStepDowns: 0 }
  const zombieMs: Array<number> = []
  const slotOf = (url: string) => brokers.find((b) => b.spec.url === url)

  const awaitNewLeader = (kind: Takeover["kind"], epoch: number, since: number, timeoutMs = 30_000) =>
    Effect.map(
      waitFor(
        `a new leader after ${kind}`,
        timeoutMs,
        () => (leader !== undefined && leader.epoch > epoch ? leader : undefined)
      ),
      Option.match({
        onNone: () => {
          failures.push(`no new leader within ${timeoutMs} ms of a ${kind}`)
          takeovers.push({ kind, at: since, epoch, ms: null })
        },
        onSome: () => void takeovers.push({ kind, at: since, epoch, ms: Date.now() - since })
      })
    )

  const restart = (slot: BrokerSlot) =>
    Effect.gen(function*() {
      yield* Effect.promise(() => slot.exited)
      slot.start()
      const up = yield* waitFor(
        `${slot.spec.name} to restart`,
        60_000,
        () => (slot.status === "running" ? true : undefined)
      )
      if (Option.isNone(up)) failures.push(`${slot.spec.name} did not come back within 60 s of its restart`)
    })

  const injectOne = Effect.gen(function*() {
    const current = leader
    if (current === undefined) return
    const target = slotOf(current.url)
    if (target === undefined || !target.alive) return
    const draw = only === "kill" ? 0 : only === "term" ? 0.5 : only === "pause" ? 1 : yield* random.next
    if (draw < 0.45) {
      counts.kill++
      const at = Date.now()
      target.signal("SIGKILL")
      say(`SIGKILL leader ${target.spec.name} (epoch ${current.epoch})`)
      yield* awaitNewLeader("kill", current.epoch, at)
      yield* restart(target)
    } else if (draw < 0.65) {
      counts.term++
      const at = Date.now()
      target.signal("SIGTERM")
      say(`SIGTERM leader ${target.spec.name} (epoch ${current.epoch})`)
      yield* awaitNewLeader("term", current.epoch, at)
      const exited = yield* Effect.promise(() => target.exited).pipe(Effect.timeout("20 seconds"), Effect.option)
      if (Option.isNone(exited)) {
        failures.push(`${target.spec.name} did not exit within 20 s of SIGTERM`)
        target.signal("SIGKILL")
      }
      yield* restart(target)
    } else {
      counts.pause++
      // Mostly the leader (the zombie case), sometimes a follower.
      const followers = brokers.filter((b) => b !== target && b.status === "running")
      const victim = (yield* random.next) < 0.7 || followers.length === 0
        ? target
        : followers[yield* random.nextIntBetween(0, followers.length)]!
      const wasLeader = victim === target
      const pauseMs = Math.round((yield* random.nextRange(1.5, 2.5)) * ttlMs)
      const at = Date.now()
      victim.signal("SIGSTOP")
      say(`SIGSTOP ${wasLeader ? "leader" : "follower"} ${victim.spec.name} for ${pauseMs} ms`)
      if (wasLeader) {
        counts.pausedLeader++
        yield* awaitNewLeader("pause", current.epoch, at, pauseMs + 30_000)
      }
      const left = at + pauseMs - Date.now()
      if (left > 0) yield* Effect.sleep(Duration.millis(left))
      const resumed = Date.now()
      victim.signal("SIGCONT")
      if (wasLeader) {
        // The zombie must find out on its first write and step down; it must not commit.
        const stepped = yield* Effect.gen(function*() {
          for (;;) {
            const info = yield* leaderInfo(victim.spec.url, 1_000)
            if (info !== undefined && info.role === "follower") return Date.now() - resumed
            yield* Effect.sleep("50 millis")
          }
        }).pipe(Effect.timeout("20 seconds"), Effect.option)
        if (Option.isSome(stepped)) {
          counts.zombieStepDowns++
          zombieMs.push(stepped.value)
        } else {
          failures.push(`${victim.spec.name} still said it led 20 s after SIGCONT`)
        }
      }
    }
  })

  const deadline = Date.now() + minutes * 60_000
  while (Date.now() < deadline) {
    yield* Effect.sleep(Duration.millis(yield* random.nextRange(2_000, 5_000)))
    if (Date.now() >= deadline) break
    yield* injectOne
  }

  // ---- drain: no more faults from the harness (the store's stay on); let the queue empty
  say("faults stop; producers stop; draining the queue")
  yield* Fiber.interrupt(producers)
  const drained = yield* Effect.gen(function*() {
    for (;;) {
      const url = leader?.url
      if (url !== undefined) {
        const stats = yield* Effect.promise(async () => {
          try {
            const r = await fetch(`${url}/v1/stats`, { signal: AbortSignal.timeout(1_000) })
            return r.ok ? ((await r.json()) as { counts: Record<string, number> }) : undefined
          } catch {
            return undefined
          }
        })
        const c = stats?.counts
        if (
          c !== undefined &&
          (c["queued"] ?? 0) + (c["running"] ?? 0) + (c["delayed"] ?? 0) + (c["failed-waiting-retry"] ?? 0) === 0
        ) {
          return true
        }
      }
      yield* Effect.sleep("250 millis")
    }
  }).pipe(Effect.timeout("90 seconds"), Effect.option, Effect.map(Option.isSome))
  say(`queue drained: ${drained ? "yes" : "no (the checks allow jobs still queued or running)"}; stopping the workers`)
  // Finalizers cannot be interrupted: disconnected, a worker that hangs on stopping is reported, not waited for.
  const workersStopped = yield* Scope.close(workerScope, Exit.void).pipe(
    Effect.disconnect,
    Effect.timeout("45 seconds"),
    Effect.option
  )
  if (Option.isNone(workersStopped)) failures.push("the workers did not stop within 45 s")
  yield* Fiber.interrupt(monitor)
  say("stopping the brokers (SIGTERM)")

  // Clean stop of every broker, so the final state holds every acknowledged commit.
  for (const b of brokers) {
    b.signal("SIGCONT")
    b.signal("SIGTERM")
  }
  yield* Effect.promise(() => Promise.all(brokers.map((b) => b.exited))).pipe(
    Effect.timeout("20 seconds"),
    Effect.ignore
  )

  // ---- final state, straight from the store (checkpoint + log), decoded with the broker's Schema
  const loaded = yield* Replica.recover().pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeedNone,
      onSome: (state) =>
        Effect.map(Cas.decode(state.encode(state.seq, state.commitId)), (file) => Option.some({ file }))
    })),
    Effect.provide(Layer.merge(Cas.layer(), Log.layer)),
    Effect.provideService(ObjectStore, store),
    Effect.retry({ times: 5 }),
    Effect.either
  )
  const checks: Array<Check> = []
  if (loaded._tag === "Left" || Option.isNone(loaded.right)) {
    checks.push({
      name: "the final state decodes and its counts match the logs",
      ok: false,
      detail: loaded._tag === "Left" ? `could not read queue.json: ${loaded.left.message}` : "queue.json is missing",
      violations: []
    })
  } else {
    checks.push(...runChecks(journal, loaded.right.value.file))
    checks.push(scheduleCheck(loaded.right.value.file, scheduledAt))
    // The log is collected behind checkpoints: what is left is about the last checkpoints' worth.
    const position = loaded.right.value.file.seq
    const entries = yield* heldPositions.pipe(Effect.provideService(ObjectStore, store))
    checks.push(writerCheck(yield* writtenEntries(entries).pipe(Effect.provideService(ObjectStore, store))))
    checks.push({
      name: "checkpoints were written and the log behind them collected",
      ok: position > 0 && entries.length < position,
      detail: `${entries.length} log entries left of ${position} positions`,
      violations: entries.length < position ? [] : ["no log entry was ever collected"]
    })
  }
  // A fleet that stalls proves nothing: at least half the planned enqueues must be acknowledged.
  const planned = Math.floor(rate * minutes * 60)
  checks.push({
    name: "the fleets kept working: no client call died of a defect or a stray interruption, enqueues kept flowing",
    ok: journal.defects.length === 0 && journal.enqueued.length >= planned / 2,
    detail:
      `${journal.enqueued.length} enqueues acknowledged of ${planned} planned (${rate}/s); ${journal.defects.length} defects`,
    violations: [
      ...journal.defects.map((d) => d.split("\n").slice(0, 3).join(" | ")),
      ...(journal.enqueued.length >= planned / 2
        ? []
        : ["fewer than half the planned enqueues were acknowledged: the producers stalled"])
    ]
  })
  // The chain worker's completions that claim next must have been put to the test.
  const chainCompleted = journal.leases.filter((r) =>
    r.workerId === chainWorkerId && r.op === "complete" && r.outcome === "ok"
  ).length
  checks.push({
    name: "the chain worker completed jobs with completeAndClaim and got its next jobs from them",
    ok: chainCompleted > 0 && journal.chainNext > 0,
    detail: `${chainCompleted} completions acknowledged, ${journal.chainNext} next jobs claimed by them`,
    violations: chainCompleted > 0 && journal.chainNext > 0
      ? []
      : ["the chain worker's completions that claim next were never put to the test"]
  })
  // A run whose faults did not happen proves nothing: at least two a minute.
  const brokerFaults = counts.kill + counts.term + counts.pause
  if (brokerFaults < 2 * minutes) failures.push(`only ${brokerFaults} broker faults were injected in ${minutes} min`)
  checks.push({
    name: "every fault was followed by a new leader, every zombie stepped down",
    ok: failures.length === 0,
    detail: `${
      takeovers.filter((t) => t.ms !== null).length
    } takeovers measured, ${counts.zombieStepDowns} zombies stepped down`,
    violations: failures
  })

  // ---- what the brokers logged
  const brokerLog = new Map<string, number>()
  /** Takeovers as the brokers logged them: when, and at which epoch. */
  const tookOver: Array<{ readonly at: number; readonly epoch: number }> = []
  const injected = new Map<string, number>()
  const processes: Array<ProcessLog> = []
  for (const file of readdirSync(logDir).filter((f) => f.startsWith("broker-"))) {
    let last: Record<string, unknown> | undefined
    const lines: Array<ProcessLog["lines"][number]> = []
    processes.push({ name: file, lines })
    for (const line of readFileSync(join(logDir, file), "utf8").split("\n")) {
      if (!line.startsWith("{")) continue
      try {
        const entry = JSON.parse(line) as {
          message: unknown
          timestamp: unknown
          annotations?: Record<string, unknown>
        }
        const message = String(Array.isArray(entry.message) ? entry.message[0] : entry.message)
        if (message === "store faults injected so far") last = entry.annotations
        else bump(brokerLog, message)
        lines.push({ message, timestamp: String(entry.timestamp) })
        if (message === "took over as leader" && typeof entry.annotations?.["epoch"] === "number") {
          tookOver.push({ at: Date.parse(String(entry.timestamp)), epoch: entry.annotations["epoch"] })
        }
      } catch {
        // a line cut short by SIGKILL
      }
    }
    for (const [k, v] of Object.entries(last ?? {})) if (typeof v === "number") bump(injected, k, v)
  }

  checks.push(handoffCheck(processes))

  // ---- report
  const ms = (v: number | null) => (v === null ? "-" : `${v} ms`)
  // Takeover time: from the fault to the new leader's own log line (its takeover is durable by
  // then); the harness's polling only when no broker logged one.
  const takeoverMs = (t: Takeover): number | null => {
    const next = tookOver.filter((o) => o.epoch > t.epoch && o.at >= t.at).sort((a, b) => a.at - b.at)[0]
    return next === undefined ? t.ms : next.at - t.at
  }
  const measured = (kind?: Takeover["kind"]) =>
    takeovers.filter((t) => kind === undefined || t.kind === kind).map(takeoverMs).filter((ms): ms is number =>
      ms !== null
    )
  const line = (label: string, values: ReadonlyArray<number>) =>
    `${label.padEnd(26)} n=${String(values.length).padEnd(4)} p50 ${ms(percentile(values, 50)).padEnd(9)} max ${
      ms(values.length === 0 ? null : Math.max(...values))
    }`
  const completedAcks = journal.leases.filter((r) => r.op === "complete" && r.outcome === "ok")
  const epochAt = (at: number) => epochs.filter((e) => e.at <= at).at(-1)?.epoch ?? 0
  const reattached = (op: "heartbeat" | "complete") =>
    journal.leases.filter((r) => r.op === op && r.outcome === "ok" && r.epoch < epochAt(r.sentAt)).length
  const report = [
    "",
    `=== chaos report (${backend}, ${minutes} min, seed ${seed}) ===`,
    `jobs: ${journal.enqueued.length} enqueues acknowledged (${journal.keysSent.size} keys sent), ` +
    `${completedAcks.length} completions acknowledged; queue drained: ${drained ? "yes" : "no"}`,
    `faults: ${counts.kill} SIGKILL of the leader, ${counts.term} SIGTERM of the leader, ` +
    `${counts.pause} SIGSTOP > TTL (${counts.pausedLeader} of the leader: zombies)`,
    `store faults injected (from broker logs): ${[...injected.entries()].map(([k, v]) => `${k} ${v}`).join(", ")}`,
    line("takeover after SIGKILL", measured("kill")),
    line("takeover after SIGTERM", measured("term")),
    line("takeover after SIGSTOP", measured("pause")),
    line("takeover, all", measured()),
    line("zombie step-down", zombieMs),
    `brokers: ${
      [
        "took over as leader",
        "stepped down: another broker leads",
        "released leadership",
        "resolved an unknown write outcome by reading back",
        "commit failed"
      ].map((m) => `"${m}" ${brokerLog.get(m) ?? 0}`).join(", ")
    }`,
    `requests retried by the clients: ${[...retries.entries()].map(([k, v]) => `${k} ${v}`).join(", ") || "none"}`,
    `requests failed after the client's retries: ${
      [...journal.gaveUp.entries()].map(([k, v]) => `${k} ${v}`).join(", ") || "none"
    }`,
    `lease calls that never returned: ${
      [...journal.inFlight.values()].map((c) =>
        `${c.op} ${c.token} sent ${new Date(c.sentAt).toISOString().slice(11, 23)}`
      ).join(", ") || "none"
    }`,
    `lease operations accepted by a later leader than the one that granted the lease (workers re-attached): ` +
    `${reattached("heartbeat")} heartbeats, ${reattached("complete")} completions`,
    "",
    ...checks.flatMap((
      c
    ) => [`${c.ok ? "PASS" : "FAIL"}  ${c.name}: ${c.detail}`, ...c.violations.map((v) => `      ${v}`)])
  ]
  console.log(report.join("\n"))
  writeFileSync(join(workDir, "report.txt"), report.join("\n") + "\n")
  writeFileSync(
    join(workDir, "records.json"),
    JSON.stringify({ enqueued: journal.enqueued, leases: journal.leases, takeovers })
  )
  const ok = checks.every((c) => c.ok)
  if (ok && !args.keep) {
    yield* Effect.promise(() => rm(workDir, { recursive: true, force: true }))
    if (backend === "s3") {
      yield* Effect.ignore(
        Effect.forEach(yield* Effect.orElseSucceed(store.list(prefix), () => []), (k) => store.delete(k))
      )
    }
  } else {
    say(`logs and records kept in ${workDir}`)
  }
  console.log(ok ? "chaos: PASS" : "chaos: FAIL")
  return ok
}).pipe(Effect.scoped)

/** Counts the client's "retrying" lines by error; warnings and errors go to the fleet log. */
const countingLogger = Logger.make(({ annotations, logLevel, message }) => {
  const text = String(Array.isArray(message) ? message[0] : message)
  if (text === "retrying") bump(retries, String(Option.getOrElse(HashMap.get(annotations, "error"), () => "?")))
  if (fleetLog !== undefined && LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) {
    appendFileSync(
      fleetLog,
      `${new Date().toISOString()} ${logLevel.label} ${text} ${JSON.stringify(Object.fromEntries(annotations))}\n`
    )
  }
})

const bound = Duration.millis(minutes * 60_000 + 6 * 60_000)
// The last resort, should the run hang where interruption cannot reach: exiting kills the brokers.
setTimeout(() => {
  console.error(`chaos: the run did not end within ${Duration.format(bound)} and a minute: giving up`)
  process.exit(1)
}, Duration.toMillis(bound) + 60_000).unref()
const run = program.pipe(
  Effect.timeoutFail({ duration: bound, onTimeout: () => `the run did not end within ${Duration.format(bound)}` }),
  Effect.provide(Logger.replace(Logger.defaultLogger, countingLogger)),
  Logger.withMinimumLogLevel(LogLevel.Debug),
  Effect.runFork
)
// Ctrl-C or a CI timeout: interrupting the run closes its scope, which kills every broker.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.error(`chaos: ${signal}: stopping`)
    Effect.runFork(Fiber.interrupt(run))
  })
}
run.addObserver((exit) => {
  if (Exit.isFailure(exit)) console.error("chaos: the run itself failed:", Cause.pretty(exit.cause))
  // Keep-alive sockets of the clients would hold the process open: exit explicitly.
  process.exit(Exit.isSuccess(exit) && exit.value ? 0 : 1)
})
