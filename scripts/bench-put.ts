// Latency and CPU of one put through a store, in the two kinds a leader makes:
// - `--kind cas` (default): a chain of conditional puts of one key, each against the version the
//   previous one returned, as the checkpoint of queue.json is written;
// - `--kind append` (file store): appends to the store's own log, `appendLogs` (its segment
//   files), one after the other or `--in-flight 2` at once: what the log costs on the file store
//   since it keeps logs in segments (docs/performance.md, "The log in segment files"); with
//   `--beside MB`, while checkpoints of MB MiB are put on another key one after another, as a
//   leader checkpoints a big queue beside its log (docs/performance.md, "A checkpoint written in
//   synced slices");
// - `--kind create`: create-only puts of new keys `log/<position>`, one after the other (or
//   `--in-flight 2` at once, as the commit loop sends them), as the log's entries are written;
//   then, as the log's garbage collection does, one `list` of those entries (its CPU per entry)
//   and their deletes, one at a time (or `--delete-in-flight 8` at once, as the log's garbage
//   collection makes them; the wall time per delete is the whole run's divided by the deletes).
// CPU is the process's user + system time over the timed puts (fsync's work on the thread pool
// included), divided by the number of puts, its user time alone (the process's own code, without
// the kernel's work for its calls), and the main thread's part of it (the event loop's).
//
//   npx tsx scripts/bench-put.ts --store file [--kind create [--in-flight 2] [--delete-in-flight 8]] [--n 50] [--sizes 1024,1048576]
//   npx tsx scripts/bench-put.ts --store file --kind append [--in-flight 2] [--n 1000] [--sizes 4096] [--beside MB]
//   scripts/s3-server start && npx tsx scripts/bench-put.ts --store s3 [--n 200] [--sizes 10240,1048576]
//   npx tsx scripts/bench-put.ts --store floor|floor-flat|floor-append --kind create [--n 1000] [--sizes 1024]
//
// `floor` is no store: the system calls of the file store's create, made directly (synchronous,
// the fsyncs on the thread pool, as the store makes them), to tell the store's own cost from the
// disk's and the kernel's. `floor-flat` is the cheapest durable create-only write of a file
// (write and fsync a temporary file, link it to its name, fsync the one folder of all the keys).
// `floor-append` is no create at all: each put appended to one file and fdatasynced (on the thread
// pool), what a log kept in a segment file would cost, without what several processes sharing it
// would need (docs/performance.md, "Where a call stands after the evening's changes").
//
// The file store writes into a fresh temporary directory (with fsync, as the broker does). The
// S3 server is OSQUEUE_TEST_S3_ENDPOINT (default http://127.0.0.1:7480), with the bucket, keys
// and quoting of packages/storage/test/support/s3.ts.
import { Effect, Redacted } from "effect"
import * as NodeFs from "node:fs"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as NodePath from "node:path"
import { join } from "node:path"
import { parseArgs } from "node:util"
import * as FileStore from "../packages/storage/src/FileStore.js"
import { ObjectStore } from "../packages/storage/src/ObjectStore.js"
import * as S3Store from "../packages/storage/src/S3Store.js"

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true"

const { values } = parseArgs({
  options: {
    store: { type: "string", default: "s3" },
    kind: { type: "string", default: "cas" },
    n: { type: "string", default: "200" },
    warmup: { type: "string", default: "10" },
    "in-flight": { type: "string", default: "1" },
    "delete-in-flight": { type: "string", default: "1" },
    sizes: { type: "string", default: "10240,1048576" },
    beside: { type: "string", default: "0" }
  }
})
const n = Number(values.n)
const warmup = Number(values.warmup)
const inFlight = Math.max(1, Number(values["in-flight"]))
const deleteInFlight = Math.max(1, Number(values["delete-in-flight"]))
const sizes = values.sizes.split(",").map(Number)
const besideMb = Number(values.beside)
const endpoint = process.env.OSQUEUE_TEST_S3_ENDPOINT ?? "http://127.0.0.1:7480"
const floors = ["floor", "floor-flat", "floor-append"]
if (values.store !== "s3" && values.store !== "file" && !floors.includes(values.store)) {
  console.error(`--store takes s3, file, floor, floor-flat or floor-append, got ${values.store}`)
  process.exit(2)
}
if (values.kind !== "cas" && values.kind !== "create" && values.kind !== "append") {
  console.error(`--kind takes cas, create or append, got ${values.kind}`)
  process.exit(2)
}
if (values.kind === "append" && values.store !== "file") {
  console.error("--kind append measures --store file only (the store that keeps logs of its own)")
  process.exit(2)
}
if (besideMb > 0 && values.kind !== "append") {
  console.error("--beside writes checkpoints beside --kind append only")
  process.exit(2)
}
if (floors.includes(values.store) && values.kind !== "create") {
  console.error(`--store ${values.store} measures --kind create only`)
  process.exit(2)
}
const directory = values.store !== "s3" ? mkdtempSync(join(tmpdir(), "osqueue-bench-put-")) : undefined

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

const cpuMicros = () => {
  const { system, user } = process.cpuUsage()
  return user + system
}

/** User time alone: the process's own code (JavaScript, the runtime, libuv), without the kernel's work for its calls. */
const userMicros = () => process.cpuUsage().user

/**
 * The main thread's CPU alone (Linux: its utime + stime in /proc, in clock ticks of 10 ms), the
 * event loop's share of the process's: what the broker has left for requests. NaN elsewhere.
 */
const mainThreadStat = `/proc/self/task/${process.pid}/stat`
const mainThreadMicros = () => {
  if (!existsSync(mainThreadStat)) return Number.NaN
  // The fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
  const fields = readFileSync(mainThreadStat, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

/** The puts of one size: each returns its latency in ms; warm-up puts first, not counted. */
const timed = (put: (seq: number) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    const one = (seq: number) =>
      Effect.suspend(() => {
        const start = process.hrtime.bigint()
        return Effect.map(put(seq), () => Number(process.hrtime.bigint() - start) / 1e6)
      })
    for (let seq = 1; seq <= warmup; seq++) yield* one(seq)
    const cpuBefore = cpuMicros()
    const userBefore = userMicros()
    const mainBefore = mainThreadMicros()
    const wallBefore = process.hrtime.bigint()
    const samples: Array<number> = []
    // `inFlight` chains side by side, each putting every inFlight-th seq.
    yield* Effect.forEach(
      Array.from({ length: inFlight }, (_, chain) => chain),
      (chain) =>
        Effect.gen(function*() {
          for (let seq = warmup + 1 + chain; seq <= warmup + n; seq += inFlight) samples.push(yield* one(seq))
        }),
      { concurrency: "unbounded", discard: true }
    )
    const cpu = (cpuMicros() - cpuBefore) / samples.length
    const user = (userMicros() - userBefore) / samples.length
    const main = (mainThreadMicros() - mainBefore) / samples.length
    const wall = Number(process.hrtime.bigint() - wallBefore) / 1e3 / samples.length
    return { samples, cpu, user, main, wall }
  })

const casPuts = (size: number) =>
  Effect.gen(function*() {
    const store = yield* ObjectStore
    const key = `bench/${size}-${Date.now()}.json`
    let version = yield* store.put(key, payload(size, 0), { ifAbsent: true })
    // Conditional puts form one chain: in flight one at a time whatever --in-flight says.
    const result = yield* timed((seq) =>
      Effect.map(store.put(key, payload(size, seq), { ifMatch: version }), (v) => (version = v))
    )
    yield* store.delete(key)
    return result
  })

/**
 * Checkpoints of `mb` MiB, in parts of 8 KiB as a queue's jobs lie in their slabs, put one after
 * another on one key until `stop` says so: a leader checkpointing a big queue beside its log.
 */
const checkpointsBeside = (mb: number, stop: () => boolean) =>
  Effect.gen(function*() {
    const store = yield* ObjectStore
    const parts = Array.from({ length: mb * 128 }, (_, i) => new Uint8Array(8192).fill(i % 251))
    const key = `checkpoint-${Date.now()}.json`
    let version = yield* store.put(key, parts, { ifAbsent: true })
    let written = 1
    while (!stop()) {
      version = yield* store.put(key, parts, { ifMatch: version })
      written++
    }
    return written
  })

const appends = (size: number) =>
  Effect.gen(function*() {
    const logs = (yield* ObjectStore).appendLogs
    if (logs === undefined) return yield* Effect.die("this store keeps no logs of its own")
    const log = `log-${size}-${Date.now()}/`
    const bodies = Array.from({ length: warmup + n + 1 }, (_, seq) => payload(size, seq))
    if (besideMb === 0) return yield* timed((seq) => logs.append(log, seq, "bench", bodies[seq]!))
    let done = false
    const checkpoints = yield* Effect.fork(checkpointsBeside(besideMb, () => done))
    const measured = yield* timed((seq) => logs.append(log, seq, "bench", bodies[seq]!))
    done = true
    console.log(
      `checkpoints of ${besideMb} MiB written beside: ${yield* Effect.orDie(checkpoints.await.pipe(Effect.flatten))}`
    )
    return measured
  })

const createPuts = (size: number) =>
  Effect.gen(function*() {
    const store = yield* ObjectStore
    const prefix = `log-${size}-${Date.now()}`
    const key = (seq: number) => `${prefix}/${String(seq).padStart(16, "0")}`
    // The bodies are made before the clock starts: only the puts are timed.
    const bodies = Array.from({ length: warmup + n + 1 }, (_, seq) => payload(size, seq))
    const result = yield* timed((seq) => store.put(key(seq), bodies[seq]!, { ifAbsent: true }))
    const deletes = warmup + n
    // Then the log's garbage collection: a list of the entries, then each entry's delete.
    const listCpuBefore = cpuMicros()
    const listMainBefore = mainThreadMicros()
    const listed = yield* store.list(`${prefix}/`)
    if (listed.length !== deletes) return yield* Effect.die(`listed ${listed.length} entries of ${deletes}`)
    const listCpu = (cpuMicros() - listCpuBefore) / deletes
    const listMain = (mainThreadMicros() - listMainBefore) / deletes
    const cpuBefore = cpuMicros()
    const mainBefore = mainThreadMicros()
    const wallBefore = process.hrtime.bigint()
    yield* Effect.forEach(Array.from({ length: deletes }, (_, i) => i + 1), (seq) => store.delete(key(seq)), {
      concurrency: deleteInFlight,
      discard: true
    })
    return {
      ...result,
      listCpu,
      listMain,
      deleteCpu: (cpuMicros() - cpuBefore) / deletes,
      deleteMain: (mainThreadMicros() - mainBefore) / deletes,
      deleteWall: Number(process.hrtime.bigint() - wallBefore) / 1e3 / deletes
    }
  })

/** An fsync on the thread pool, as the file store makes it. */
const fsyncPath = (path: string) =>
  Effect.async<void, NodeJS.ErrnoException>((resume) => {
    const fd = NodeFs.openSync(path, "r")
    NodeFs.fsync(fd, (error) => {
      NodeFs.closeSync(fd)
      resume(error === null ? Effect.void : Effect.fail(error))
    })
  })

/** The file store's create of a key without a folder, as bare system calls (see the top of this file). */
const floorCreate = (root: string, key: string, body: Uint8Array) =>
  Effect.gen(function*() {
    const keyDir = join(root, "objects", key)
    const staging = join(root, "tmp", `${key.replaceAll("/", "-")}.d`)
    NodeFs.statSync(join(keyDir, "@"), { throwIfNoEntry: false })
    NodeFs.mkdirSync(staging)
    const file = join(staging, "000000000000")
    const fd = NodeFs.openSync(file, "wx")
    NodeFs.writevSync(fd, [Buffer.from(`{"key":"${key}"}\n`)])
    NodeFs.writevSync(fd, [body])
    NodeFs.closeSync(fd)
    yield* fsyncPath(file)
    yield* fsyncPath(staging)
    NodeFs.mkdirSync(keyDir, { recursive: true })
    NodeFs.renameSync(staging, join(keyDir, "@"))
    yield* fsyncPath(keyDir)
  })

/** The cheapest durable create-only write: a temporary file, fsynced, linked to its name, the folder fsynced. */
const floorFlatCreate = (root: string, key: string, body: Uint8Array) =>
  Effect.gen(function*() {
    const folder = join(root, "objects", NodePath.dirname(key))
    const staged = join(root, "tmp", key.replaceAll("/", "-"))
    const fd = NodeFs.openSync(staged, "wx")
    NodeFs.writevSync(fd, [Buffer.from(`{"key":"${key}"}\n`)])
    NodeFs.writevSync(fd, [body])
    NodeFs.closeSync(fd)
    yield* fsyncPath(staged)
    NodeFs.mkdirSync(folder, { recursive: true })
    NodeFs.linkSync(staged, join(root, "objects", key))
    NodeFs.unlinkSync(staged)
    yield* fsyncPath(folder)
  })

/** The segment file `floorAppend` appends to, opened at its first put. */
let segment: number | undefined

/** A put appended to one file and fdatasynced: no inode, no link, no folder to sync. */
const floorAppend = (root: string, key: string, body: Uint8Array) =>
  Effect.async<void, NodeJS.ErrnoException>((resume) => {
    segment ??= NodeFs.openSync(join(root, "segment"), "a")
    NodeFs.writevSync(segment, [Buffer.from(`{"key":"${key}"}\n`), body])
    NodeFs.fdatasync(segment, (error) => resume(error === null ? Effect.void : Effect.fail(error)))
  })

const floorPuts = (root: string, size: number) =>
  Effect.gen(function*() {
    NodeFs.mkdirSync(join(root, "tmp"), { recursive: true })
    const prefix = `log-${size}-${Date.now()}`
    const bodies = Array.from({ length: warmup + n + 1 }, (_, seq) => payload(size, seq))
    const create = values.store === "floor"
      ? floorCreate
      : values.store === "floor-flat"
      ? floorFlatCreate
      : floorAppend
    return yield* timed((seq) => create(root, `${prefix}/${String(seq).padStart(16, "0")}`, bodies[seq]!))
  })

const bench = (size: number) =>
  Effect.gen(function*() {
    const measured: {
      readonly samples: Array<number>
      readonly cpu: number
      readonly user: number
      readonly main: number
      readonly wall: number
      readonly listCpu?: number
      readonly listMain?: number
      readonly deleteCpu?: number
      readonly deleteMain?: number
      readonly deleteWall?: number
    } = yield* (
      directory !== undefined && floors.includes(values.store)
        ? floorPuts(directory, size)
        : values.kind === "create"
        ? createPuts(size)
        : values.kind === "append"
        ? appends(size)
        : casPuts(size)
    )
    const { cpu, main, samples, user, wall } = measured
    const sorted = [...samples].sort((a, b) => a - b)
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length
    return {
      size: size >= 1048576 ? `${size / 1048576} MiB` : `${size / 1024} KiB`,
      n: samples.length,
      p50: percentile(sorted, 50).toFixed(2),
      p90: percentile(sorted, 90).toFixed(2),
      p99: percentile(sorted, 99).toFixed(2),
      max: (sorted[sorted.length - 1] ?? Number.NaN).toFixed(2),
      mean: mean.toFixed(2),
      "CPU µs/put": cpu.toFixed(0),
      "user µs/put": user.toFixed(0),
      "main thread µs/put": main.toFixed(0),
      "wall µs/put": wall.toFixed(0),
      ...(measured.deleteCpu !== undefined && measured.deleteMain !== undefined
        ? {
          "CPU µs/listed": measured.listCpu?.toFixed(0),
          "main µs/listed": measured.listMain?.toFixed(0),
          "CPU µs/delete": measured.deleteCpu.toFixed(0),
          "main thread µs/delete": measured.deleteMain.toFixed(0),
          "wall µs/delete": measured.deleteWall?.toFixed(0)
        }
        : {})
    }
  })

const program = Effect.gen(function*() {
  const rows = []
  for (const size of sizes) rows.push(yield* bench(size))
  const where = directory === undefined
    ? endpoint
    : values.store === "file"
    ? "the file store (fsync on)"
    : `${values.store}: the system calls alone, no store`
  const what = values.kind === "create"
    ? `create-only put (new keys), ${inFlight} in flight; deletes ${deleteInFlight} in flight`
    : values.kind === "append"
    ? `append to the store's own log, ${inFlight} in flight`
    : "conditional put (If-Match), sequential"
  console.log(`${what}: latency in ms on ${where}, ${warmup} warm-up puts not counted`)
  console.table(rows)
}).pipe(
  Effect.provide(
    directory !== undefined ?
      FileStore.layer({ directory, fsync: process.env.BENCH_PUT_FSYNC !== "false" }) :
      S3Store.layer({
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
