// The pure state machine at scale: a queue of 100k queued jobs with 200-byte payloads, then
//   - a batch of 1,000 mixed commands (enqueue, claim, heartbeat, complete, fail) applied as a
//     commit does it: begin → tick → (savepoint → apply → rollback on error)* → committed;
//   - encoding the whole state (first encode: every job stringified; again after a batch: only
//     the jobs that changed, thanks to the per-job JSON cache);
//   - decoding it back (JSON.parse + Schema decode + QueueState.fromFile) and its size.
//
//   npx tsx scripts/bench-core.ts [--jobs 100000] [--batch 1000] [--runs 9]
//   (or: pnpm bench-core)
//
// Targets (issues 2 and 7): a 1,000-command batch ≤ 5 ms; a commit's encode of 100k jobs ≤ 60 ms.
import { Either, Schema } from "effect"
import { parseArgs } from "node:util"
import type { Command } from "../packages/core/src/Command.js"
import * as LeaseSecret from "../packages/core/src/LeaseSecret.js"
import { defaultLimits, QueueState } from "../packages/core/src/QueueState.js"
import { type LeaseToken, QueueFile } from "../packages/types/src/index.js"

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "100000" },
    batch: { type: "string", default: "1000" },
    runs: { type: "string", default: "9" }
  }
})
const jobCount = Number(values.jobs)
const batchSize = Number(values.batch)
const runs = Number(values.runs)

const T0 = 1_700_000_000_000
const types = ["email", "sms", "push", "report"]
// {"data":"xxx…"} is exactly 200 bytes of JSON
const payload = { data: "x".repeat(200 - `{"data":""}`.length) }
const limits = { ...defaultLimits }

const median = (xs: ReadonlyArray<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const time = <A>(f: () => A): [A, number] => {
  const start = performance.now()
  const result = f()
  return [result, performance.now() - start]
}

const decodeFile = Schema.decodeUnknownSync(QueueFile)

// ------------------------------------------------------------------------------- build

let now = T0
const state = QueueState.empty(limits)
const [, buildMs] = time(() => {
  for (let done = 0; done < jobCount; done += 1_000) {
    const n = Math.min(1_000, jobCount - done)
    const jobs = Array.from({ length: n }, (_, i) => ({ type: types[(done + i) % types.length]!, payload }))
    state.begin()
    const result = state.apply({ _tag: "Enqueue", jobs }, now, LeaseSecret.random)
    if (Either.isLeft(result)) throw new Error(`could not build the state: ${result.left.message}`)
    state.committed(state.seq + 1, `bench:${state.seq + 1}`, 0)
  }
})

// First encode: no job has cached JSON yet.
const commitOf = (s: QueueState) => {
  const seq = s.seq + 1
  const commitId = `bench:${seq}`
  const encoded = s.encode(seq, commitId)
  s.committed(seq, commitId, encoded.length)
}
const [firstBytes, firstEncodeMs] = time(() => state.encode(state.seq + 1, `bench:${state.seq + 1}`))
state.committed(state.seq + 1, `bench:${state.seq + 1}`, firstBytes.length)
const bytes = firstBytes.length
const firstText = new TextDecoder().decode(firstBytes)

// ------------------------------------------------------------------------------- decode

const decodeRuns: Array<{ parse: number; schema: number; fromFile: number }> = []
let reloaded: QueueState | undefined
for (let i = 0; i < Math.max(3, Math.ceil(runs / 3)); i++) {
  const [json, parse] = time(() => JSON.parse(firstText) as unknown)
  const [file, schema] = time(() => decodeFile(json))
  const [s, fromFile] = time(() => QueueState.fromFile(file, bytes, limits))
  decodeRuns.push({ parse, schema, fromFile })
  reloaded = s
}

// A first encode of a freshly decoded state is the same cold case: measure it a few more times.
const firstEncodes = [firstEncodeMs]
for (let i = 0; i < 2; i++) {
  const s = QueueState.fromFile(decodeFile(JSON.parse(firstText)), bytes, limits)
  firstEncodes.push(time(() => s.encode(s.seq + 1, "bench:x"))[1])
}
void reloaded

// ------------------------------------------------------------------------------- batches

/** Tokens of jobs claimed by earlier batches and not yet finished. */
const leased: Array<LeaseToken> = []
let workerTick = 0

/** 1,000 commands: a fifth each of enqueue, claim (of 3 jobs), heartbeat, complete and fail. */
const makeBatch = (): Array<Command> => {
  const fifth = Math.floor(batchSize / 5)
  const commands: Array<Command> = []
  const tokens = leased.splice(0, Math.min(leased.length, 3 * fifth))
  for (let i = 0; i < fifth; i++) {
    commands.push({ _tag: "Enqueue", jobs: [{ type: types[i % types.length]!, payload }] })
    // claims take 3 jobs each, so the pool of leased jobs grows by a fifth of a batch per batch
    commands.push({ _tag: "Claim", workerId: `worker-${workerTick++ % 50}`, max: 3, leaseMs: 60_000 })
    const hb = tokens[i]
    if (hb !== undefined) {
      commands.push({ _tag: "Heartbeat", token: hb, progress: { pct: i % 100 } })
      leased.push(hb) // still leased after a heartbeat
    }
    const done = tokens[fifth + i]
    if (done !== undefined) commands.push({ _tag: "Complete", token: done, result: { ok: true } })
    const failed = tokens[2 * fifth + i]
    if (failed !== undefined) commands.push({ _tag: "Fail", token: failed, error: "boom" })
  }
  while (commands.length < batchSize) commands.push({ _tag: "Enqueue", jobs: [{ type: "email", payload }] })
  return commands
}

/** Where a batch's time goes: per command tag (and the tick), summed over the breakdown runs. */
const pieces = new Map<string, { ms: number; n: number }>()
const piece = (name: string, ms: number) => {
  const p = pieces.get(name) ?? { ms: 0, n: 0 }
  p.ms += ms
  p.n++
  pieces.set(name, p)
}

/** Applies a batch as GroupCommit does; with `breakdown`, also times each command (costs a little). */
const runBatch = (commands: ReadonlyArray<Command>, breakdown = false) => {
  now += 10
  let errors = 0
  const [, ms] = time(() => {
    state.begin()
    if (breakdown) piece("tick", time(() => state.tick(now))[1])
    else state.tick(now)
    for (const command of commands) {
      const start = breakdown ? performance.now() : 0
      const savepoint = state.savepoint()
      const result = state.apply(command, now, LeaseSecret.random)
      if (breakdown) piece(command._tag, performance.now() - start)
      if (Either.isLeft(result)) {
        errors++
        state.rollback(savepoint)
      } else if (command._tag === "Claim") {
        for (const claimed of result.right as ReadonlyArray<{ token: LeaseToken }>) leased.push(claimed.token)
      }
    }
  })
  return { ms, errors }
}

// warm up (JIT) and fill the pool of leased tokens
for (let i = 0; i < 5; i++) {
  runBatch(makeBatch())
  commitOf(state)
}

const batchTimes: Array<number> = []
const secondEncodes: Array<number> = []
const commands = new Map<string, number>()
let batchErrors = 0
for (let i = 0; i < runs; i++) {
  const batch = makeBatch()
  for (const c of batch) commands.set(c._tag, (commands.get(c._tag) ?? 0) + 1)
  const { ms, errors } = runBatch(batch)
  batchTimes.push(ms)
  batchErrors += errors
  const seq = state.seq + 1
  const [encoded, encodeMs] = time(() => state.encode(seq, `bench:${seq}`))
  secondEncodes.push(encodeMs)
  const [, committedMs] = time(() => state.committed(seq, `bench:${seq}`, encoded.length))
  batchTimes[batchTimes.length - 1]! += committedMs
}

for (let i = 0; i < runs; i++) {
  runBatch(makeBatch(), true)
  commitOf(state)
}

// ------------------------------------------------------------------------------- report

const decodeMedian = {
  parse: median(decodeRuns.map((r) => r.parse)),
  schema: median(decodeRuns.map((r) => r.schema)),
  fromFile: median(decodeRuns.map((r) => r.fromFile))
}
const decodeTotal = median(decodeRuns.map((r) => r.parse + r.schema + r.fromFile))

const rows: Array<[string, string, string, string]> = []
const ms = (x: number) => `${x.toFixed(1)} ms`
const row = (name: string, value: number, target?: number) =>
  rows.push([
    name,
    ms(value),
    target === undefined ? "" : `≤ ${target} ms`,
    target === undefined ? "" : value <= target ? "pass" : "MISS"
  ])

row(`batch of ${batchSize} mixed commands (median of ${runs})`, median(batchTimes), 5)
row(`  slowest batch`, Math.max(...batchTimes))
row(`encode ${jobCount} jobs to UTF-8, first (median of ${firstEncodes.length})`, median(firstEncodes))
row(`encode after a ${batchSize}-command batch (median of ${runs})`, median(secondEncodes), 60)
row(`decode: JSON.parse + Schema + fromFile (median of ${decodeRuns.length})`, decodeTotal)
row(`  JSON.parse`, decodeMedian.parse)
row(`  Schema decode (QueueFile)`, decodeMedian.schema)
row(`  QueueState.fromFile`, decodeMedian.fromFile)
row(`build: enqueue ${jobCount} jobs (1,000 per batch)`, buildMs)
rows.push(["encoded size", `${(bytes / 1e6).toFixed(2)} MB (${bytes} B)`, "", ""])
rows.push(["state after the runs", `${state.size} jobs`, "", ""])

const header: [string, string, string, string] = ["measure", "value", "target", "result"]
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
const line = (cells: ReadonlyArray<string>) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`
console.log(`osqueue core bench — node ${process.version}, ${jobCount} jobs, 200-byte payloads`)
console.log(`batch mix: ${[...commands].map(([tag, n]) => `${tag} ${n}`).join(", ")} (${batchErrors} errors)`)
console.log(line(header))
console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`)
for (const r of rows) console.log(line(r))
console.log(`\nwhere a batch's time goes (mean per batch over ${runs} more runs, each command timed):`)
for (const [name, p] of [...pieces].sort((a, b) => b[1].ms - a[1].ms)) {
  const per = name === "tick" ? "" : ` (${((p.ms / p.n) * 1000).toFixed(1)} µs each)`
  console.log(`  ${name.padEnd(10)} ${ms(p.ms / runs)}${per}`)
}
