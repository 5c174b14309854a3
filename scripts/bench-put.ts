// Latency of one conditional put through a store: a chain of commits, each against the version
// the previous one returned, as a leader does. A commit rewrites the whole queue, so this is the
// storage's floor under a commit of a queue that size (100,000 queued jobs with 200-byte
// payloads are about 31 MB).
//
//   npx tsx scripts/bench-put.ts --store file [--n 50] [--sizes 1048576,10485760,33554432]
//   scripts/s3-server start && npx tsx scripts/bench-put.ts --store s3 [--n 200] [--sizes 10240,1048576]
//
// The file store writes into a fresh temporary directory (with fsync, as the broker does). The
// S3 server is OSQUEUE_TEST_S3_ENDPOINT (default http://127.0.0.1:7480), with the bucket, keys
// and quoting of packages/storage/test/support/s3.ts.
import { Effect, Redacted } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import * as FileStore from "../packages/storage/src/FileStore.js"
import { ObjectStore } from "../packages/storage/src/ObjectStore.js"
import * as S3Store from "../packages/storage/src/S3Store.js"

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true"

const { values } = parseArgs({
  options: {
    store: { type: "string", default: "s3" },
    n: { type: "string", default: "200" },
    warmup: { type: "string", default: "10" },
    sizes: { type: "string", default: "10240,1048576" }
  }
})
const n = Number(values.n)
const warmup = Number(values.warmup)
const sizes = values.sizes.split(",").map(Number)
const endpoint = process.env.OSQUEUE_TEST_S3_ENDPOINT ?? "http://127.0.0.1:7480"
if (values.store !== "s3" && values.store !== "file") {
  console.error(`--store takes s3 or file, got ${values.store}`)
  process.exit(2)
}
const directory = values.store === "file" ? mkdtempSync(join(tmpdir(), "osqueue-bench-put-")) : undefined

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN

/** A state-like payload of `size` bytes whose content differs per commit (its seq), as queue.json does. */
const payload = (size: number, seq: number) => {
  const bytes = new Uint8Array(size)
  const head = new TextEncoder().encode(`{"seq":${seq},"pad":"`)
  bytes.set(head)
  for (let i = head.length; i < size; i++) bytes[i] = 97 + ((i * 7 + seq) % 26)
  return bytes
}

const bench = (size: number) =>
  Effect.gen(function*() {
    const store = yield* ObjectStore
    const key = `bench/${size}-${Date.now()}.json`
    let version = yield* store.put(key, payload(size, 0), { ifAbsent: true })
    const samples: Array<number> = []
    for (let seq = 1; seq <= warmup + n; seq++) {
      const bytes = payload(size, seq)
      const start = process.hrtime.bigint()
      version = yield* store.put(key, bytes, { ifMatch: version })
      const ms = Number(process.hrtime.bigint() - start) / 1e6
      if (seq > warmup) samples.push(ms)
    }
    yield* store.delete(key)
    const sorted = [...samples].sort((a, b) => a - b)
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length
    return {
      size: size >= 1048576 ? `${size / 1048576} MiB` : `${size / 1024} KiB`,
      n: samples.length,
      p50: percentile(sorted, 50).toFixed(1),
      p90: percentile(sorted, 90).toFixed(1),
      p99: percentile(sorted, 99).toFixed(1),
      max: (sorted[sorted.length - 1] ?? Number.NaN).toFixed(1),
      mean: mean.toFixed(1)
    }
  })

const program = Effect.gen(function*() {
  const rows = []
  for (const size of sizes) rows.push(yield* bench(size))
  const where = directory === undefined ? endpoint : "the file store (fsync on)"
  console.log(`conditional put (If-Match) latency in ms on ${where}, sequential, ${warmup} warm-up puts not counted`)
  console.table(rows)
}).pipe(
  Effect.provide(
    directory !== undefined ? FileStore.layer({ directory }) : S3Store.layer({
      bucket: process.env.OSQUEUE_TEST_S3_BUCKET ?? "osqueue-test",
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      etagQuoting: process.env.OSQUEUE_TEST_S3_ETAG_QUOTING === "quoted" ? "quoted" : "unquoted",
      prefix: "osqueue-bench",
      credentials: {
        accessKeyId: process.env.OSQUEUE_TEST_S3_ACCESS_KEY ?? "test",
        secretAccessKey: Redacted.make(process.env.OSQUEUE_TEST_S3_SECRET_KEY ?? "test")
      }
    })
  )
)

Effect.runPromise(program).then(
  () => directory !== undefined && rmSync(directory, { recursive: true, force: true }),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
