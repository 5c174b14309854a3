/**
 * What a queue of N queued jobs costs in memory, in-process (docs/performance.md, target 3): a
 * `QueueState` filled as a leader fills it — batches of 1,000 enqueues, each encoded as its log
 * entry and committed — then a full collection, then the process's memory per job. The jobs are
 * the bench's: a 200-byte payload and an idempotency key each, as `@osqueue/client` sends them.
 * With `--takeover`, the state is then written as a checkpoint and loaded back as a takeover
 * loads it (`Cas.decodeKeepingBytes`, `QueueState.fromFile`), and that state is measured instead.
 * With `--drain`, every job is then claimed and completed as the bench's drain does (claims of
 * up to 128, each claimed job completed in the next batch, one entry per batch), and the line
 * adds the peak RSS of the whole run and what is left once drained.
 *
 *   node -C source --expose-gc --import tsx scripts/bench/state-memory.ts [--jobs 1000000] [--takeover] [--drain]
 *
 * Prints one `state-memory <json>` line: MB of RSS, heap, external and array buffers, and bytes
 * of each per job (the process's own baseline, before the state, taken off).
 */
import { Cas, defaultLimits, LeaseSecret, QueueState } from "@osqueue/core"
import { Either } from "effect"
import { randomUUID } from "node:crypto"
import { readFileSync } from "node:fs"
import { parseArgs } from "node:util"

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "1000000" },
    takeover: { type: "boolean", default: false },
    drain: { type: "boolean", default: false }
  }
})
const jobs = Number(values.jobs)
const collect = (globalThis as { gc?: () => void }).gc
if (collect === undefined) {
  process.stderr.write("run with node --expose-gc\n")
  process.exit(2)
}
const batch = 1_000
const pad = "x".repeat(200 - `{"t":1796525222680.6548,"pad":""}`.length)

const measure = () => {
  collect()
  collect()
  const { arrayBuffers, external, heapUsed, rss } = process.memoryUsage()
  return { rss, heapUsed, external, arrayBuffers }
}

const before = measure()
let state = QueueState.empty({ ...defaultLimits, maxStateBytes: 4 * 2 ** 30 })
let now = 1_796_525_222_680
for (let done = 0; done < jobs; done += batch) {
  const n = Math.min(batch, jobs - done)
  const position = state.seq + 1
  const commitId = `memory:${position}`
  state.begin()
  const enqueue = Array.from(
    { length: n },
    () => ({ type: "backlog", payload: { t: now + Math.random(), pad }, idempotencyKey: randomUUID() })
  )
  const result = state.apply({ _tag: "Enqueue", jobs: enqueue }, now++, () => "secret")
  if (Either.isLeft(result)) throw new Error(`could not enqueue: ${result.left.message}`)
  state.entryParts("batch", position, commitId)
  state.seal(position)
  state.committed(position, commitId)
}
if (values.takeover) {
  const bytes = Buffer.from(state.encode(state.seq, state.commitId))
  state = QueueState.empty()
  const decoded = Either.getOrThrow(Cas.decodeKeepingBytes(bytes))
  state = QueueState.fromFile(
    decoded.file,
    bytes.length,
    { ...defaultLimits, maxStateBytes: 4 * 2 ** 30 },
    decoded.kept
  )
}
const after = measure()
const queued = state.stats().counts.queued
const mb = (n: number) => Math.round(n / 2 ** 20)
/** Peak resident memory of this process so far, in MiB (VmHWM, as the bench reads the broker's). */
const peakRssMB = () => Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1]) / 1024)

/** Runs one batch as a leader does: apply, encode its entry, seal, commit. */
const batchOf = <A>(run: () => A): A => {
  const position = state.seq + 1
  const commitId = `memory:${position}`
  state.begin()
  state.tick(now)
  const result = run()
  state.entryParts("batch", position, commitId)
  state.seal(position)
  state.committed(position, commitId)
  return result
}

const drained = () => {
  if (!values.drain) return undefined
  const enqueuedPeak = peakRssMB()
  let tokens: ReadonlyArray<string> = []
  for (;;) {
    now += 10
    const completing = tokens
    tokens = batchOf(() => {
      for (const token of completing) {
        const done = state.apply({ _tag: "Complete", token: token as never }, now, LeaseSecret.random)
        if (Either.isLeft(done)) throw new Error(`could not complete: ${done.left.message}`)
      }
      const claimed = state.apply({ _tag: "Claim", workerId: "w" as never, max: 128 }, now, LeaseSecret.random)
      if (Either.isLeft(claimed)) throw new Error(`could not claim: ${claimed.left.message}`)
      return claimed.right.map((c) => c.token)
    })
    if (tokens.length === 0 && completing.length === 0) break
  }
  const left = measure()
  return {
    enqueuedPeakMB: enqueuedPeak,
    peakRssMB: peakRssMB(),
    drained: {
      rssMB: mb(left.rss),
      heapMB: mb(left.heapUsed),
      externalMB: mb(left.external),
      heapTotalMB: mb(process.memoryUsage().heapTotal)
    }
  }
}
const drain = drained()
const perJob = (key: keyof typeof after) => Math.round((after[key] - before[key]) / jobs)
process.stdout.write(`state-memory ${
  JSON.stringify({
    jobs: queued,
    takeover: values.takeover,
    rssMB: mb(after.rss),
    heapMB: mb(after.heapUsed),
    externalMB: mb(after.external),
    arrayBuffersMB: mb(after.arrayBuffers),
    bytesPerJob: { rss: perJob("rss"), heap: perJob("heapUsed"), external: perJob("external") },
    ...drain
  })
}\n`)
