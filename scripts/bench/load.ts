/**
 * The load of one `pnpm bench` run, in a process of its own: P producers and a worker pool of
 * concurrency W against one server, phase after phase, printing one `result <json>` line per
 * phase. `tsx scripts/bench/load.ts '<LoadSpec as JSON>'`.
 *
 * osqueue goes through `@osqueue/client` and `@osqueue/worker` (the REST enqueue through
 * plain keep-alive HTTP requests, one job each, a connection per producer: `rest.ts`), or, as
 * transport `plain`, through plain HTTP alone, as a client in any language would: producers and
 * worker slots on keep-alive connections of their own, one REST request per enqueue, claim
 * (`max: 1`) and completion, nothing coalesced or prefetched; as transport `plain-next` the same,
 * but each completion claims the slot's next job (`complete-and-claim`), as BullMQ's worker
 * fetches its next job when it finishes one. BullMQ through its own Queue and Worker.
 */
import { OsqueueClient } from "@osqueue/client"
import { Worker } from "@osqueue/worker"
import { Queue, Worker as BullWorker } from "bullmq"
import { Deferred, Effect, Layer, Logger, LogLevel } from "effect"
import { RestConnection } from "./rest.js"
import { now, type PhaseResult, Samples, serverUsage } from "./stats.js"

export type Phase = "enqueue" | "drain" | "mixed"

export interface LoadSpec {
  readonly label: string
  readonly system: "osqueue" | "bullmq"
  /**
   * osqueue: rest | http | ws through `@osqueue/client`, plain and plain-next (completions that
   * claim next) through plain HTTP requests alone; bullmq: redis.
   */
  readonly transport: "rest" | "http" | "ws" | "plain" | "plain-next" | "redis"
  readonly phases: ReadonlyArray<Phase>
  readonly jobs: number
  readonly producers: number
  readonly workers: number
  /** osqueue: the pool's prefetch (its default when absent). */
  readonly prefetch?: number | undefined
  /** Jobs per enqueue call (1: single enqueues). */
  readonly batch: number
  readonly payloadBytes: number
  /**
   * Jobs of an untimed warm-up (enqueue and drain at once, with the run's transport and batch
   * size) before anything is measured, for osqueue and BullMQ alike: the figures are then a
   * running server's and client's, not those of their loading and JIT compilation.
   */
  readonly warmUp: number
  /** The broker's URL, or redis-server's port. */
  readonly target: string
  /** The server process, whose CPU time each phase reports. */
  readonly serverPid: number
  /**
   * Jobs of another type enqueued (in batches, untimed) before the phases, which stay queued: a
   * big queue. (A first phase of drain always starts from `jobs` jobs enqueued that way.)
   */
  readonly backlog?: number
  /**
   * osqueue single enqueues: each producer waits a random 0–`thinkMs` after each answer, so
   * requests arrive spread over a store write instead of all at once after the last answer.
   */
  readonly thinkMs?: number
}

const spec = JSON.parse(process.argv[2]!) as LoadSpec
/** Plain HTTP requests alone, no `@osqueue/client`. */
const plain = spec.transport === "plain" || spec.transport === "plain-next"
const pad = "x".repeat(spec.payloadBytes)
const payload = () => ({ t: now(), pad })

/** CPU time this process used since `before`, in µs. */
const ownCpuUs = (before: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(before)
  return used.user + used.system
}

const emit = (result: PhaseResult) => process.stdout.write(`result ${JSON.stringify(result)}\n`)

const warmedUp = (result: PhaseResult) => {
  if (result.errors > 0) throw new Error(`${result.errors} requests of the warm-up failed`)
}

/** Hands out job numbers to producers until `jobs` are taken; one per call, or a batch. */
const counter = (jobs: number) => {
  let next = 0
  return (n: number) => {
    const take = Math.min(n, jobs - next)
    next += take
    return take
  }
}

// ---------------------------------------------------------------------------------------------
// osqueue

/** Sums a Prometheus counter's samples whose labels include every given `name="value"`. */
const metric = async (name: string, ...labels: ReadonlyArray<string>): Promise<number> => {
  const text = await (await fetch(`${spec.target}/metrics`)).text()
  let sum = 0
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (!(rest.startsWith("{") || rest.startsWith(" "))) continue
    if (labels.every((l) => rest.includes(l))) sum += Number(line.slice(line.lastIndexOf(" ") + 1))
  }
  return sum
}

// A write is a put or, where the store keeps the log itself (the file store), an append.
const storeCounters = async () => ({
  writes: await metric("osqueue_storage_requests_total", `kind="put"`) +
    await metric("osqueue_storage_requests_total", `kind="append"`),
  // Every put that landed, counted by the store decorator: log entries, checkpoints, anything else.
  storeBytes: await metric("osqueue_storage_put_bytes_total"),
  // What the engine says it wrote (log entries and checkpoints): the cross-check of storeBytes.
  bytes: await metric("osqueue_commit_bytes_total"),
  checkpoints: await metric("osqueue_checkpoints_total"),
  // The histograms are in seconds; the report is in milliseconds.
  encodeSum: 1000 * await metric("osqueue_commit_encode_seconds_sum"),
  encodeCount: await metric("osqueue_commit_encode_seconds_count"),
  putSum: 1000 * (await metric("osqueue_storage_latency_seconds_sum", `kind="put"`) +
    await metric("osqueue_storage_latency_seconds_sum", `kind="append"`)),
  putCount: await metric("osqueue_storage_latency_seconds_count", `kind="put"`) +
    await metric("osqueue_storage_latency_seconds_count", `kind="append"`)
})

/**
 * Resolves once no checkpoint is due or being written (`osqueue_checkpoint_writing` at 0; a
 * broker without the gauge counts as settled). Awaited at the end of each phase, after its
 * clock and CPU are read: its bytes then hold the checkpoint its own commits made due, which
 * may land after its last job, and none of the untimed fills' (a 100,000-job backlog's
 * checkpoint, written in slices, took longer than the fill and landed in the drain behind it).
 */
const checkpointSettled = async () => {
  for (const started = Date.now(); Date.now() - started < 120_000;) {
    if (await metric("osqueue_checkpoint_writing") === 0) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error("a checkpoint was still due or being written after 2 minutes")
}

/**
 * REST single enqueues (one job per HTTP request) from P producers, each on a keep-alive
 * connection of its own, as plain promise loops: Effect fibers per call would cost the load
 * more CPU than the requests.
 */
const restProduce = (take: (n: number) => number, type: string, enqueueLatency: Samples, errors: { n: number }) =>
  Promise.all(Array.from({ length: spec.producers }, async () => {
    const connection = new RestConnection(new URL(spec.target))
    try {
      for (let n = take(1); n > 0; n = take(1)) {
        const started = now()
        const { status } = await connection.post("/v1/jobs", JSON.stringify({ type, payload: payload() })).catch(
          () => ({ status: 0 })
        )
        if (status === 201 || status === 200) enqueueLatency.add(now() - started)
        else errors.n++
      }
    } finally {
      connection.close()
    }
  }))

interface PlainClaimed {
  readonly job: { readonly id: string; readonly payload: { readonly t: number } }
  readonly token: string
}

/**
 * A worker pool as a plain HTTP client runs one: W slots, each on a keep-alive connection of its
 * own, claiming one job (`max: 1`, a long poll while none is ready) and completing it, one request
 * each, until `jobs` are completed. With `next`, a completion claims the slot's next job
 * (`complete-and-claim`): a slot claims by a long poll only when its last completion brought none.
 * What a slot has in flight at the end is dropped with its connection.
 */
const plainWork = (
  type: string,
  jobs: number,
  next: boolean,
  times: { claim: Samples; complete: Samples; endToEnd: Samples },
  errors: { n: number }
) =>
  new Promise<void>((resolve) => {
    let completed = 0
    const connections = Array.from({ length: spec.workers }, () => new RestConnection(new URL(spec.target)))
    const finish = () => {
      connections.forEach((connection) => connection.close())
      resolve()
    }
    connections.forEach(async (connection, slot) => {
      const workerId = `plain-${slot}`
      const claimBody = JSON.stringify({ workerId, types: [type], max: 1, waitMs: 1_000 })
      let held: PlainClaimed | undefined
      while (completed < jobs) {
        if (held === undefined) {
          const started = now()
          const claim = await connection.post("/v1/jobs/claim", claimBody).catch(() => undefined)
          if (claim === undefined) return
          if (claim.status !== 200) {
            errors.n++
            continue
          }
          held = (JSON.parse(claim.body) as Array<PlainClaimed>)[0]
          if (held === undefined) continue
          times.claim.add(now() - started)
        }
        const job = held
        times.endToEnd.add(now() - job.job.payload.t)
        const completing = now()
        const done = await (next
          ? connection.post(
            `/v1/jobs/${job.job.id}/complete-and-claim`,
            JSON.stringify({ token: job.token, workerId, types: [type] })
          )
          : connection.post(`/v1/jobs/${job.job.id}/complete`, JSON.stringify({ token: job.token })))
          .catch(() => undefined)
        if (done === undefined) return
        held = undefined
        if (done.status !== 200) {
          errors.n++
          continue
        }
        times.complete.add(now() - completing)
        if (next) held = (JSON.parse(done.body) as Array<PlainClaimed>)[0]
        if (++completed === jobs) finish()
      }
    })
  })

const osqueue = Effect.gen(function*() {
  const client = yield* OsqueueClient
  const claimLatency = new Samples()
  const completeLatency = new Samples()
  let completed = 0
  let target = Infinity
  let allDone = yield* Deferred.make<void>()

  const timedCompletion = <A, E>(completion: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      const started = now()
      return Effect.tap(completion, () =>
        Effect.suspend(() => {
          completeLatency.add(now() - started)
          completed++
          return completed === target ? Deferred.succeed(allDone, undefined) : Effect.void
        }))
    })

  // The worker pool's client, timed: claim and complete latency as the pool sees them.
  const timedClient = OsqueueClient.of({
    ...client,
    claim: (request) =>
      Effect.suspend(() => {
        const started = now()
        return Effect.tap(client.claim(request), (jobs) =>
          Effect.sync(() => {
            if (jobs.length > 0) claimLatency.add(now() - started)
          }))
      }),
    complete: (token, result) => timedCompletion(client.complete(token, result)),
    // What the pool completes with: answered with the job's id.
    completeId: (token, result) => timedCompletion(client.completeId(token, result))
  })

  /** Enqueues jobs in batches of 1,000, untimed. */
  const fill = (type: string, jobs: number) => {
    const take = counter(jobs)
    return Effect.forEach(Array.from({ length: 4 }), () =>
      Effect.gen(function*() {
        for (let n = take(1000); n > 0; n = take(1000)) {
          yield* client.enqueueMany(Array.from({ length: n }, () => ({ type, payload: payload() })))
        }
      }), { concurrency: "unbounded", discard: true })
  }
  const produce = (type: string, jobs: number, enqueueLatency: Samples, errors: { n: number }) => {
    const take = counter(jobs)
    if ((spec.transport === "rest" || plain) && spec.batch === 1) {
      return Effect.promise(() => restProduce(take, type, enqueueLatency, errors))
    }
    const enqueue = (n: number): Effect.Effect<unknown, unknown> =>
      spec.batch === 1
        ? Effect.suspend(() => client.enqueue(type, payload()))
        // Batches answered with ids, as BullMQ's `addBulk` answers: its jobs are made by the client
        // from what it sent and the ids Redis answers (the bench reads neither).
        : Effect.suspend(() => client.enqueueManyIds(Array.from({ length: n }, () => ({ type, payload: payload() }))))
    return Effect.forEach(Array.from({ length: spec.producers }), () =>
      Effect.gen(function*() {
        for (let n = take(spec.batch); n > 0; n = take(spec.batch)) {
          const started = now()
          const ok = yield* Effect.match(enqueue(n), { onFailure: () => false, onSuccess: () => true })
          if (ok) enqueueLatency.add(now() - started)
          else errors.n++
          if (spec.thinkMs !== undefined) yield* Effect.sleep(Math.random() * spec.thinkMs)
        }
      }), { concurrency: "unbounded", discard: true })
  }

  const work = (type: string, endToEnd: Samples) =>
    Worker.make({
      handlers: { [type]: (p: unknown) => Effect.sync(() => endToEnd.add(now() - (p as { t: number }).t)) },
      concurrency: spec.workers,
      prefetch: spec.prefetch,
      pollWaitMs: 1_000
    }).pipe(Effect.provideService(OsqueueClient, timedClient))

  const runPhase = (phase: Phase, type: string, jobs: number) =>
    Effect.gen(function*() {
      const enqueueLatency = new Samples()
      const endToEnd = new Samples()
      const errors = { n: 0 }
      completed = 0
      target = jobs
      allDone = yield* Deferred.make<void>()
      claimLatency.reset()
      completeLatency.reset()
      const before = yield* Effect.promise(storeCounters)
      const server = serverUsage(spec.serverPid)
      const ownBefore = process.cpuUsage()
      const started = now()
      if (phase === "enqueue") {
        yield* produce(type, jobs, enqueueLatency, errors)
      } else if (plain) {
        const times = { claim: claimLatency, complete: completeLatency, endToEnd }
        yield* Effect.all([
          Effect.promise(() => plainWork(type, jobs, spec.transport === "plain-next", times, errors)),
          phase === "mixed" ? produce(type, jobs, enqueueLatency, errors) : Effect.void
        ], { concurrency: "unbounded", discard: true })
      } else {
        yield* Effect.scoped(Effect.gen(function*() {
          yield* work(type, endToEnd)
          if (phase === "mixed") yield* produce(type, jobs, enqueueLatency, errors)
          yield* Deferred.await(allDone)
        }))
      }
      const seconds = (now() - started) / 1000
      const used = server(jobs, seconds)
      const loadCpuUs = ownCpuUs(ownBefore) / jobs
      yield* Effect.promise(checkpointSettled)
      const after = yield* Effect.promise(storeCounters)
      return {
        label: spec.label,
        phase,
        jobs,
        seconds,
        rate: jobs / seconds,
        enqueue: enqueueLatency.summary(),
        claim: phase === "enqueue" ? null : claimLatency.summary(),
        complete: phase === "enqueue" ? null : completeLatency.summary(),
        endToEnd: phase === "mixed" ? endToEnd.summary() : null,
        errors: errors.n,
        ...used,
        loadCpuUs,
        writesPerJob: (after.writes - before.writes) / jobs,
        bytesPerJob: (after.storeBytes - before.storeBytes) / jobs,
        engineBytesPerJob: (after.bytes - before.bytes) / jobs,
        checkpoints: after.checkpoints - before.checkpoints,
        encodeMs: after.encodeCount > before.encodeCount
          ? (after.encodeSum - before.encodeSum) / (after.encodeCount - before.encodeCount)
          : null,
        putMs: after.putCount > before.putCount
          ? (after.putSum - before.putSum) / (after.putCount - before.putCount)
          : null
      } satisfies PhaseResult
    })

  warmedUp(yield* runPhase("mixed", "warm-up", spec.warmUp))
  if (spec.backlog !== undefined) yield* fill("backlog", spec.backlog)
  // A drain with no enqueue phase before it drains jobs enqueued here.
  if (spec.phases[0] === "drain") yield* fill("bench", spec.jobs)
  yield* Effect.promise(checkpointSettled)
  for (const phase of spec.phases) {
    // drain takes what enqueue left; mixed starts from an empty type.
    emit(yield* runPhase(phase, phase === "mixed" ? "mixed" : "bench", spec.jobs))
  }
})

const osqueueClient = () => {
  const options = { urls: spec.target, requestTimeout: "60 seconds" as const }
  // `plain` sends requests of its own: the (REST) client it is given goes unused.
  return spec.transport === "ws"
    ? OsqueueClient.layerWebSocket(options)
    : spec.transport === "http"
    ? OsqueueClient.layerHttp(options)
    : OsqueueClient.layerRest(options)
}

// ---------------------------------------------------------------------------------------------
// BullMQ: the same phases with its Queue and Worker, a no-op processor.

const bullmq = async () => {
  const connection = { host: "127.0.0.1", port: Number(spec.target), maxRetriesPerRequest: null }
  const runPhase = async (phase: Phase, name: string, jobs: number): Promise<PhaseResult> => {
    const queue = new Queue(name, { connection })
    const enqueueLatency = new Samples()
    const endToEnd = new Samples()
    let errors = 0
    const produce = () => {
      const take = counter(jobs)
      return Promise.all(Array.from({ length: spec.producers }, async () => {
        for (let n = take(spec.batch); n > 0; n = take(spec.batch)) {
          const started = now()
          try {
            if (spec.batch === 1) await queue.add("bench", payload())
            else await queue.addBulk(Array.from({ length: n }, () => ({ name: "bench", data: payload() })))
            enqueueLatency.add(now() - started)
          } catch {
            errors++
          }
        }
      }))
    }
    const server = serverUsage(spec.serverPid)
    const ownBefore = process.cpuUsage()
    const started = now()
    if (phase === "enqueue") {
      await produce()
    } else {
      let completed = 0
      let finish!: () => void
      const done = new Promise<void>((resolve) => (finish = resolve))
      const worker = new BullWorker(name, async (job) => {
        endToEnd.add(now() - (job.data as { t: number }).t)
      }, { connection, concurrency: spec.workers })
      worker.on("completed", () => {
        if (++completed === jobs) finish()
      })
      if (phase === "mixed") await produce()
      await done
      await worker.close()
    }
    const seconds = (now() - started) / 1000
    const used = server(jobs, seconds)
    const loadCpuUs = ownCpuUs(ownBefore) / jobs
    await queue.close()
    return {
      label: spec.label,
      phase,
      jobs,
      seconds,
      rate: jobs / seconds,
      enqueue: enqueueLatency.summary(),
      claim: null,
      complete: null,
      endToEnd: phase === "mixed" ? endToEnd.summary() : null,
      errors,
      ...used,
      loadCpuUs,
      writesPerJob: null,
      bytesPerJob: null,
      engineBytesPerJob: null,
      checkpoints: null,
      encodeMs: null,
      putMs: null
    }
  }
  /** Jobs enqueued untimed, in batches of 1,000 from 4 producers, as osqueue's `fill`. */
  const fill = async (name: string, jobs: number) => {
    const queue = new Queue(name, { connection })
    const take = counter(jobs)
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let n = take(1000); n > 0; n = take(1000)) {
        await queue.addBulk(Array.from({ length: n }, () => ({ name: "bench", data: payload() })))
      }
    }))
    await queue.close()
  }
  warmedUp(await runPhase("mixed", "warm-up", spec.warmUp))
  // A drain with no enqueue phase before it drains jobs enqueued here (without them it would wait forever).
  if (spec.phases[0] === "drain") await fill("bench", spec.jobs)
  for (const phase of spec.phases) emit(await runPhase(phase, phase === "mixed" ? "mixed" : "bench", spec.jobs))
}

const main = spec.system === "bullmq"
  ? bullmq()
  : osqueue.pipe(
    Effect.provide(Layer.merge(osqueueClient(), Logger.minimumLogLevel(LogLevel.Error))),
    Effect.runPromise
  )

main.then(() => process.exit(0), (error) => {
  process.stderr.write(`load failed: ${error instanceof Error ? error.stack : String(error)}\n`)
  process.exit(1)
})
