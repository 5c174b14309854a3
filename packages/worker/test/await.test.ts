/**
 * Awaiting a job's result (`enqueueAndWait`, `result`, and the Promise facade's `submitJobAndWait`
 * / `jobResult`): a real broker, a real worker, the real event stream.
 */
import { describe, expect, it } from "@effect/vitest"
import { freePort, startBroker } from "@osqueue/broker/testing"
import { JobDefinition, OsqueueClient } from "@osqueue/client"
import { OsqueueClient as PromiseClient } from "@osqueue/client/promise"
import { MemoryStore } from "@osqueue/storage"
import { handler, NonRetryable, Worker } from "@osqueue/worker"
import { Context, Effect, Fiber, Layer, Schema } from "effect"
import * as net from "node:net"
import { eventually } from "./fixtures/eventually.js"

const transports = {
  http: (url: string) => OsqueueClient.layerHttp({ urls: [url] }),
  ws: (url: string) => OsqueueClient.layerWebSocket({ urls: [url] }),
  rest: (url: string) => OsqueueClient.layerRest({ urls: [url] })
} as const

const clientFor = (layer: Layer.Layer<OsqueueClient>) =>
  Effect.map(Layer.build(layer), (context) => ({ client: Context.get(context, OsqueueClient), context }))

const Resize = JobDefinition.make({
  type: "resize",
  payload: Schema.Struct({ width: Schema.Int }),
  result: Schema.Struct({ pixels: Schema.Int, at: Schema.DateFromString })
})

const fast = { pollWaitMs: 200, shutdownTimeout: "2 seconds" } as const

/** A worker on `context` for the life of the test's scope. */
const worker = (context: Context.Context<OsqueueClient>, handlers: Parameters<typeof Worker.make>[0]["handlers"]) =>
  Worker.make({ ...fast, handlers }).pipe(Effect.provide(context))

/** How many `Get` calls the broker has answered (all brokers of this process share the counter). */
const gets = (url: string) =>
  Effect.promise(async () => {
    const text = await (await fetch(`${url}/metrics`)).text()
    return text.split("\n")
      .filter((line) => line.startsWith(`osqueue_requests_total{operation="get",`))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0)
  })

/**
 * A TCP proxy to `target` that can be cut (every connection dropped, new ones refused) and
 * restored on the same port: the client's event stream breaks and reconnects through it.
 */
const proxy = (target: string) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const { port: targetPort } = new URL(target)
    const sockets = new Set<net.Socket>()
    let server: net.Server | undefined
    const open = Effect.async<void>((resume) => {
      server = net.createServer((socket) => {
        const upstream = net.connect(Number(targetPort), "127.0.0.1")
        sockets.add(socket).add(upstream)
        socket.pipe(upstream).pipe(socket)
        const drop = () => {
          socket.destroy()
          upstream.destroy()
        }
        socket.on("error", drop).on("close", drop)
        upstream.on("error", drop).on("close", drop)
      })
      server.listen(port, "127.0.0.1", () => resume(Effect.void))
    })
    const cut = Effect.async<void>((resume) => {
      for (const socket of sockets) socket.destroy()
      sockets.clear()
      if (server === undefined) return resume(Effect.void)
      server.close(() => resume(Effect.void))
    })
    yield* open
    yield* Effect.addFinalizer(() => cut)
    return { url: `http://127.0.0.1:${port}`, open, cut }
  })

for (const transport of ["http", "ws"] as const) {
  describe(`awaiting a result (${transport})`, () => {
    it.scopedLive("enqueueAndWait answers the decoded result, from events, not by polling", () =>
      Effect.gen(function*() {
        const url = yield* startBroker({ store: yield* MemoryStore.make })
        const { client, context } = yield* clientFor(transports[transport](url))
        yield* worker(context, {
          resize: handler(
            Resize,
            ({ width }) => Effect.as(Effect.sleep("600 millis"), { pixels: width * 2, at: new Date(7) })
          )
        })
        const before = yield* gets(url)
        const result = yield* client.enqueueAndWait(Resize, { width: 21 }, { priority: 1 })
        expect(result).toEqual({ pixels: 42, at: new Date(7) })
        // One read when the stream connected, one when the job's completion was announced.
        expect((yield* gets(url)) - before).toBeLessThanOrEqual(2)
        const untyped = yield* client.enqueueAndWait("echo", "hi").pipe(
          Effect.fork,
          Effect.tap(() => worker(context, { echo: (payload: unknown) => Effect.succeed({ echoed: payload }) })),
          Effect.flatMap(Fiber.join)
        )
        expect(untyped).toEqual({ echoed: "hi" })
      }))

    it.scopedLive("a job that dies or is cancelled fails the wait with JobFailed, naming the job and its last error", () =>
      Effect.gen(function*() {
        const url = yield* startBroker({ store: yield* MemoryStore.make })
        const { client, context } = yield* clientFor(transports[transport](url))
        yield* worker(context, { doomed: () => Effect.fail(new NonRetryable({ message: "bad input" })) })
        const dead = yield* Effect.flip(client.enqueueAndWait("doomed", null, { maxAttempts: 3 }))
        expect(dead._tag).toBe("JobFailed")
        if (dead._tag !== "JobFailed") return
        expect(dead.state).toBe("dead")
        expect(dead.lastError).toBe("NonRetryable: bad input")
        expect(dead.message).toContain(dead.jobId)
        expect(dead.message).toContain("bad input")
        expect((yield* client.get(dead.jobId)).state).toBe("dead")

        const job = yield* client.enqueue("nobody-runs-this")
        const waiting = yield* Effect.fork(Effect.flip(client.result(job.id)))
        yield* Effect.sleep("300 millis")
        yield* client.cancel(job.id)
        const cancelled = yield* Fiber.join(waiting)
        expect(cancelled).toMatchObject({ _tag: "JobFailed", jobId: job.id, state: "cancelled" })
      }))

    it.scopedLive("waitMs gives WaitTimeout and leaves the job alone; a bad waitMs is InvalidRequest, nothing sent", () =>
      Effect.gen(function*() {
        const url = yield* startBroker({ store: yield* MemoryStore.make })
        const { client } = yield* clientFor(transports[transport](url))
        const started = Date.now()
        const timedOut = yield* Effect.flip(client.enqueueAndWait("idle", null, { waitMs: 300 }))
        expect(timedOut._tag).toBe("WaitTimeout")
        expect(Date.now() - started).toBeGreaterThanOrEqual(300)
        if (timedOut._tag !== "WaitTimeout") return
        expect(timedOut.message).toContain(timedOut.jobId)
        expect((yield* client.get(timedOut.jobId)).state).toBe("queued")
        const again = yield* Effect.flip(client.result(timedOut.jobId, { waitMs: 100 }))
        expect(again).toMatchObject({ _tag: "WaitTimeout", jobId: timedOut.jobId, waitMs: 100 })

        for (const waitMs of [-1, 1.5, Number.NaN]) {
          const bad = yield* Effect.flip(client.enqueueAndWait("idle", null, { waitMs }))
          expect(bad._tag).toBe("InvalidRequest")
          expect(bad.message).toContain("invalid wait")
        }
        expect((yield* client.stats).counts.queued).toBe(1)
      }))

    it.scopedLive("result of a job that finished before the wait began answers at once; a missing job is JobNotFound", () =>
      Effect.gen(function*() {
        const url = yield* startBroker({ store: yield* MemoryStore.make })
        const { client } = yield* clientFor(transports[transport](url))
        const job = yield* client.enqueue(Resize, { width: 1 })
        const [claimed] = yield* client.claim({ workerId: "w1" })
        yield* client.complete(claimed!.token, { pixels: 5, at: "1970-01-01T00:00:00.009Z" })
        expect(yield* client.result(Resize, job.id, { waitMs: 5_000 })).toEqual({ pixels: 5, at: new Date(9) })
        expect(yield* client.result(job.id)).toEqual({ pixels: 5, at: "1970-01-01T00:00:00.009Z" })
        const mismatch = yield* Effect.flip(client.result(
          JobDefinition.make({
            type: "resize",
            payload: Schema.Unknown,
            result: Schema.Struct({ other: Schema.String })
          }),
          job.id
        ))
        expect(mismatch._tag).toBe("UnexpectedResult")
        const missing = yield* Effect.flip(client.result("job-404"))
        expect(missing._tag).toBe("JobNotFound")
      }))

    it.scopedLive("a completion while the event stream is down is not lost: the reconnect reads the job", () =>
      Effect.gen(function*() {
        const url = yield* startBroker({ store: yield* MemoryStore.make })
        const cuttable = yield* proxy(url)
        const { client } = yield* clientFor(transports[transport](cuttable.url))
        const { client: direct, context } = yield* clientFor(transports.http(url))
        const waiting = yield* Effect.fork(client.enqueueAndWait("later", { n: 1 }))
        const [job] = yield* Effect.gen(function*() {
          for (;;) {
            const page = yield* direct.list({ type: "later" })
            if (page.jobs.length > 0) return page.jobs
            yield* Effect.sleep("25 millis")
          }
        })
        yield* cuttable.cut
        yield* worker(context, { later: (payload: unknown) => Effect.succeed({ got: payload }) })
        yield* eventually(direct, job!.id, (j) => j.state === "completed")
        yield* cuttable.open
        expect(yield* Fiber.join(waiting).pipe(Effect.timeout("10 seconds"))).toEqual({ got: { n: 1 } })
      }))
  })
}

describe("awaiting a result", () => {
  it.scopedLive("is refused over REST with InvalidRequest before anything is enqueued", () =>
    Effect.gen(function*() {
      const url = yield* startBroker({ store: yield* MemoryStore.make })
      const { client } = yield* clientFor(transports.rest(url))
      const refused = yield* Effect.flip(client.enqueueAndWait("x"))
      expect(refused._tag).toBe("InvalidRequest")
      expect((yield* client.stats).counts.queued).toBe(0)
    }))

  it.scopedLive("the Promise facade: submitJobAndWait and jobResult", () =>
    Effect.gen(function*() {
      const url = yield* startBroker({ store: yield* MemoryStore.make })
      const { context } = yield* clientFor(transports.http(url))
      yield* worker(context, {
        resize: handler(Resize, ({ width }) => Effect.succeed({ pixels: width, at: new Date(3) })),
        doomed: () => Effect.fail(new NonRetryable({ message: "no" }))
      })
      yield* Effect.promise(async () => {
        const client = new PromiseClient({ brokerUrl: url, transport: { kind: "ws" } })
        try {
          expect(await client.submitJobAndWait(Resize, { width: 4 })).toEqual({ pixels: 4, at: new Date(3) })
          const job = await client.submitJob("doomed", null)
          const failed = await client.jobResult(job.id).then(
            () => undefined,
            (error: unknown) => error
          )
          expect(failed).toBeInstanceOf(Error)
          expect(failed).toMatchObject({
            _tag: "JobFailed",
            jobId: job.id,
            state: "dead",
            lastError: "NonRetryable: no"
          })
          const idle = await client.submitJob("idle", null)
          await expect(client.jobResult(idle.id, { waitMs: 100 })).rejects.toMatchObject({ _tag: "WaitTimeout" })
        } finally {
          await client.close()
        }
      })
    }))
})
