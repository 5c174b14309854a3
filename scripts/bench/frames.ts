/**
 * The broker's own work on one `EnqueueMany` frame of a batch, per job, without a socket or an
 * engine: `RpcFrames.checkLine` of the frame's text (the depth scan, `JSON.parse`, the payload's
 * decode), the depth scan alone (`Json.textNestsDeeperThan`), and the answer as `RpcSession`
 * sends it (the success schema's encode and `JSON.stringify`), of whole jobs and of ids. With
 * `--compare DIR` another checkout's build (DIR: its root, built) is measured in the same
 * process, alternating round after round.
 *
 *   pnpm --filter @osqueue/bench exec tsx frames.ts [--batch 100] [--rounds 4] [--compare DIR]
 */
import { randomUUID } from "node:crypto"
import { dirname, join } from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"

const { values } = parseArgs({
  options: {
    batch: { type: "string", default: "100" },
    rounds: { type: "string", default: "4" },
    compare: { type: "string" }
  }
})
const batch = Number(values.batch)
const root = join(dirname(fileURLToPath(import.meta.url)), "../..")

interface Build {
  readonly name: string
  readonly checkLine: (text: string, limits: { maxJsonDepth: number; maxAnswerBytes: number }) => unknown
  readonly nestsDeeper: (text: string, limit: number) => boolean
  /** The answer's encode and JSON, as `RpcSession` and `RpcFrames.frameEncoder` make it. */
  readonly answer: (value: ReadonlyArray<unknown>) => string
}

/** A build's modules, from its own `dist` (and its own `effect`). */
const load = async (name: string, checkout: string): Promise<Build> => {
  const from = (path: string) => import(pathToFileURL(join(checkout, path)).href)
  const frames = await from("packages/broker/dist/http/RpcFrames.js")
  const types = await from("packages/types/dist/index.js")
  const { Schema } = await from("packages/types/node_modules/effect/dist/esm/index.js")
  const rpc = types.OsqueueRpcs.requests.get("EnqueueMany")
  const encode = Schema.encodeUnknownSync(rpc.successSchema)
  return {
    name,
    checkLine: frames.checkLine,
    nestsDeeper: types.Json.textNestsDeeperThan,
    answer: (value) => JSON.stringify({ _tag: "Exit", requestId: "1", exit: { _tag: "Success", value: encode(value) } })
  }
}

/** As `load.ts` sends them: 200 bytes of payload, an idempotency key per job. */
const pad = "x".repeat(200)
const frame = (id: number) =>
  JSON.stringify({
    _tag: "Request",
    id: String(id),
    tag: "EnqueueMany",
    payload: {
      jobs: Array.from(
        { length: batch },
        () => ({ type: "bench", payload: { t: 1.5, pad }, idempotencyKey: randomUUID() })
      )
    },
    headers: []
  })
const texts = Array.from({ length: 50 }, (_, i) => frame(i))
const jobs = Array.from({ length: batch }, (_, i) => ({
  id: `job-${i}`,
  type: "bench",
  payload: { t: 1.5, pad },
  state: "queued",
  priority: 0,
  attempts: 0,
  maxAttempts: 3,
  claims: 0,
  backoff: { _tag: "exponential", baseMs: 1000, maxMs: 60000, jitter: 0.2 },
  seq: i,
  createdAt: 1_765_000_000_000,
  runAt: 1_765_000_000_000,
  idempotencyKey: randomUUID(),
  history: []
}))
const ids = jobs.map((job) => job.id)
const limits = { maxJsonDepth: 64, maxAnswerBytes: 64 * 1024 * 1024 }

/** µs per job of `run` over `frames` frames. */
const time = (frames: number, run: (i: number) => unknown) => {
  const started = performance.now()
  for (let i = 0; i < frames; i++) run(i)
  return ((performance.now() - started) * 1000) / frames / batch
}

const builds = [await load("this", root), ...(values.compare ? [await load("compare", values.compare)] : [])]
process.stdout.write(`one EnqueueMany of ${batch} jobs: ${texts[0]!.length} bytes; µs per job\n`)
const n = Math.max(100, Math.round(200_000 / batch))
for (let round = 1; round <= Number(values.rounds); round++) {
  for (const build of round % 2 === 1 ? builds : [...builds].reverse()) {
    const check = time(n, (i) => build.checkLine(texts[i % texts.length]!, limits))
    const depth = time(n, (i) => build.nestsDeeper(texts[i % texts.length]!, limits.maxJsonDepth))
    const parse = time(n, (i) => JSON.parse(texts[i % texts.length]!))
    const whole = time(n, () => build.answer(jobs))
    // An older build's schema may not take ids: that answer is left out.
    let minimal = "–"
    try {
      minimal = time(n, () => build.answer(ids)).toFixed(2)
    } catch {
      // Whole jobs only.
    }
    process.stdout.write(
      `round ${round} ${build.name.padEnd(7)} checkLine ${check.toFixed(2)} (depth scan ${
        depth.toFixed(2)
      }, JSON.parse ${parse.toFixed(2)})  answer: whole jobs ${whole.toFixed(2)}, ids ${minimal}\n`
    )
  }
}
