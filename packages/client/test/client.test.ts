import { RpcClient } from "@effect/rpc"
import { describe, expect, it } from "@effect/vitest"
import { startBroker } from "@osqueue/broker/testing"
import { JobDefinition, OsqueueClient, Protocols } from "@osqueue/client"
import { Election } from "@osqueue/core"
import { MemoryStore, ObjectStore } from "@osqueue/storage"
import { preferHeader } from "@osqueue/types"
import {
  Chunk,
  ConfigProvider,
  Context,
  Deferred,
  Effect,
  Either,
  ExecutionStrategy,
  Exit,
  Fiber,
  Layer,
  Schedule,
  Schema,
  Scope,
  Stream
} from "effect"
import * as Http from "node:http"

const Email = JobDefinition.make({
  type: "email",
  payload: Schema.Struct({ to: Schema.String, at: Schema.DateFromString })
})

const transports = {
  http: (url: string) => OsqueueClient.layerHttp({ urls: [url] }),
  ws: (url: string) => OsqueueClient.layerWebSocket({ urls: [url] }),
  rest: (url: string) => OsqueueClient.layerRest({ urls: [url] })
} as const

/** Builds the client into the test's scope (providing it would close it when `provide` returns). */
const clientIn = <E>(layer: Layer.Layer<OsqueueClient, E>) => Effect.map(Layer.build(layer), Context.get(OsqueueClient))

/** The broker's request counters by operation (all outcomes), from its Prometheus page. */
const requestCounts = (url: string) =>
  Effect.promise(async () => {
    const text = await (await fetch(`${url}/metrics`)).text()
    const count = (operation: string) =>
      text.split("\n")
        .filter((line) => line.startsWith(`osqueue_requests_total{operation="${operation}",`))
        .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0)
    return { enqueue: count("enqueue"), enqueueMany: count("enqueueMany"), completeMany: count("completeMany") }
  })

/** A broker on a fresh store and a client to it over `transport`. */
const withClient = <A, E>(
  transport: keyof typeof transports,
  body: (client: OsqueueClient["Type"]) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const url = yield* startBroker({ store: yield* MemoryStore.make })
    const client = yield* clientIn(transports[transport](url))
    return yield* body(client)
  })

for (const transport of ["http", "ws", "rest"] as const) {
  describe(`OsqueueClient over ${transport}`, () => {
    it.scopedLive("enqueue, get, list, stats, idempotency", () =>
      withClient(transport, (client) =>
        Effect.gen(function*() {
          const job = yield* client.enqueue("plain", { n: 1 }, { priority: 3 })
          expect(job.state).toBe("queued")
          expect(job.idempotencyKey).toBeDefined()
          const again = yield* client.get(job.id)
          expect(again.payload).toEqual({ n: 1 })
          const same = yield* client.enqueue("plain", { n: 2 }, { idempotencyKey: job.idempotencyKey! })
          expect(same.id).toBe(job.id)
          // One enqueue effect run twice is two jobs: its generated idempotency key is made per run.
          const enqueueOne = client.enqueue("rerun")
          const [first, second] = [yield* enqueueOne, yield* enqueueOne]
          expect(second.id).not.toBe(first.id)
          expect(second.idempotencyKey).not.toBe(first.idempotencyKey)
          const many = yield* client.enqueueMany([{ type: "plain", payload: 1 }, { type: "other" }])
          expect(many).toHaveLength(2)
          const page = yield* client.list({ type: "plain" })
          expect(page.jobs.map((j) => j.id)).toEqual([job.id, many[0]!.id])
          const stats = yield* client.stats
          expect(stats.counts.queued).toBe(5)
          const missing = yield* Effect.flip(client.get("job-nope"))
          expect(missing._tag).toBe("JobNotFound")
        })))

    it.scopedLive("enqueueManyIds: the jobs enqueued as enqueueMany would, answered by their ids", () =>
      withClient(transport, (client) =>
        Effect.gen(function*() {
          const ids = yield* client.enqueueManyIds([{ type: "bulk", payload: { n: 1 } }, { type: "bulk", priority: 2 }])
          const page = yield* client.list({ type: "bulk" })
          expect(page.jobs.map((job) => job.id)).toEqual(ids)
          expect(page.jobs.map((job) => [job.payload, job.priority])).toEqual([[{ n: 1 }, 0], [null, 2]])
          const typed = yield* client.enqueueManyIds(Email, [{ to: "x", at: new Date(1) }])
          expect((yield* client.get(typed[0]!)).payload).toEqual({ to: "x", at: "1970-01-01T00:00:00.001Z" })
          // An idempotency key already taken answers the id of the job that holds it.
          const [held] = yield* client.enqueueMany([{ type: "bulk", idempotencyKey: "once" }])
          expect(yield* client.enqueueManyIds([{ type: "bulk", idempotencyKey: "once" }])).toEqual([held!.id])
          const tooMany = Array.from({ length: 10_001 }, () => ({ type: "t" }))
          expect((yield* Effect.flip(client.enqueueManyIds(tooMany)))._tag).toBe("InvalidRequest")
          // A key the options do not have is refused, `__proto__` too (JSON makes it an own key):
          // it must not become the prototype of what is sent.
          for (const proto of ["{}", `{"priority":1}`, "null", "5"]) {
            const text = `{"type":"bulk","__proto__":${proto}}`
            const refused = yield* Effect.flip(client.enqueueManyIds([JSON.parse(text) as { type: string }]))
            expect([refused._tag, refused.message]).toEqual(["InvalidRequest", expect.stringContaining("__proto__")])
          }
        })))

    it.scopedLive("typed definitions encode and validate before sending", () =>
      withClient(transport, (client) =>
        Effect.gen(function*() {
          const job = yield* client.enqueue(Email, { to: "a@b.c", at: new Date(0) })
          expect(job.payload).toEqual({ to: "a@b.c", at: "1970-01-01T00:00:00.000Z" })
          const bad = yield* Effect.flip(client.enqueue(Email, { to: 1 } as never))
          expect(bad._tag).toBe("InvalidRequest")
          expect(bad.message).toContain("email")
          const empty = yield* Effect.flip(client.enqueue(""))
          expect(empty._tag).toBe("InvalidRequest")
          const many = yield* client.enqueueMany(Email, [{ to: "x", at: new Date(1) }, { to: "y", at: new Date(2) }])
          expect(many.map((j) => j.type)).toEqual(["email", "email"])
          expect((yield* client.stats).counts.queued).toBe(3)
        })))

    it.scopedLive("claim, heartbeat, complete, fail, release, stale tokens", () =>
      withClient(transport, (client) =>
        Effect.gen(function*() {
          const a = yield* client.enqueue("work", { i: 1 }, { maxAttempts: 2 })
          const b = yield* client.enqueue("work", { i: 2 })
          const claimed = yield* client.claim({ workerId: "w1", max: 5, leaseMs: 5_000 })
          expect(claimed.map((c) => c.job.id)).toEqual([a.id, b.id])
          const [ca, cb] = [claimed[0]!, claimed[1]!]
          const beat = yield* client.heartbeat(ca.token, { progress: { pct: 50 } })
          expect(beat.jobId).toBe(a.id)
          expect((yield* client.get(a.id)).progress).toEqual({ pct: 50 })
          const done = yield* client.complete(ca.token, { ok: true })
          expect(done.state).toBe("completed")
          expect(done.result).toEqual({ ok: true })
          const stale = yield* Effect.flip(client.complete(ca.token))
          expect(stale._tag).toBe("LeaseLost")
          const released = yield* client.release(cb.token)
          expect(released.state).toBe("queued")
          const [again] = yield* client.claim({ workerId: "w1" })
          const dead = yield* client.fail(again!.token, "boom", { retryable: false })
          expect(dead.state).toBe("dead")
          expect(dead.lastError).toBe("boom")
          expect(yield* client.retryDead()).toBe(1)
          expect((yield* client.get(b.id)).state).toBe("queued")
          const badToken = yield* Effect.flip(client.heartbeat("not-a-token"))
          expect(badToken._tag).toBe("InvalidRequest")
          // Caught before sending, as typed errors (not defects)
          expect((yield* Effect.flip(client.claim({ workerId: "w1", max: 5_000 })))._tag).toBe("InvalidRequest")
          expect((yield* Effect.flip(client.claim({ workerId: "" })))._tag).toBe("InvalidRequest")
          expect((yield* Effect.flip(client.fail(cb.token, "x".repeat(10_001))))._tag).toBe("InvalidRequest")
          expect((yield* Effect.flip(client.list({ limit: 0 })))._tag).toBe("InvalidRequest")
          const tooMany = Array.from({ length: 10_001 }, () => ({ type: "t" }))
          expect((yield* Effect.flip(client.enqueueMany(tooMany)))._tag).toBe("InvalidRequest")
        })))

    it.scopedLive("completeAndClaim completes a job and claims the next in one call; a refused one claims nothing", () =>
      withClient(transport, (client) =>
        Effect.gen(function*() {
          const [a, b, c] = yield* client.enqueueMany([
            { type: "chain", payload: 1 },
            { type: "chain", payload: 2 },
            { type: "chain", payload: 3 }
          ])
          const [first] = yield* client.claim({ workerId: "w1", types: ["chain"] })
          expect(first!.job.id).toBe(a!.id)
          const next = yield* client.completeAndClaim(first!.token, { n: 1 }, {
            workerId: "w2",
            types: ["chain"],
            max: 5
          })
          expect(next.map((claimed) => [claimed.job.id, claimed.job.payload])).toEqual([[b!.id, 2], [c!.id, 3]])
          expect(yield* client.get(a!.id)).toMatchObject({ state: "completed", result: { n: 1 } })
          expect(yield* client.get(b!.id)).toMatchObject({ state: "running", lease: { workerId: "w2" } })
          // The workers list knows the claimer.
          expect((yield* client.workers).map((worker) => worker.id)).toContain("w2")
          // The completed token again: LeaseLost, and the queue is as it was.
          const d = yield* client.enqueue("chain", 4)
          const refused = yield* Effect.flip(client.completeAndClaim(first!.token, undefined, { workerId: "w1" }))
          expect(refused._tag).toBe("LeaseLost")
          expect((yield* client.get(d.id)).state).toBe("queued")
          // Bad input is refused before it is sent, naming what is wrong.
          const bad = yield* Effect.flip(client.completeAndClaim(next[0]!.token, undefined, { workerId: "" }))
          expect([bad._tag, bad.message]).toEqual(["InvalidRequest", expect.stringContaining("worker id")])
          expect((yield* client.get(b!.id)).state).toBe("running")
          // With nothing left to claim: the completion alone, answered at once.
          yield* client.complete(next[1]!.token)
          expect(yield* client.completeAndClaim(next[0]!.token, undefined, { workerId: "w2", types: ["none"] }))
            .toEqual([])
          expect((yield* client.get(b!.id)).state).toBe("completed")
        })))

    it.scopedLive("long-poll claim wakes on enqueue", () =>
      withClient(transport, (client) =>
        Effect.gen(function*() {
          const waiting = yield* Effect.fork(client.claim({ workerId: "w", waitMs: 5_000 }))
          yield* Effect.sleep("200 millis")
          const job = yield* client.enqueue("late")
          const claimed = yield* Fiber.join(waiting)
          expect(claimed.map((c) => c.job.id)).toEqual([job.id])
          const none = yield* client.claim({ workerId: "w", waitMs: 100 })
          expect(none).toEqual([])
        })))

    it.scopedLive("single calls made together share one batch call, and each caller gets its own answer", () =>
      Effect.gen(function*() {
        const url = yield* startBroker({ store: yield* MemoryStore.make })
        const client = yield* clientIn(transports[transport](url))
        const before = yield* requestCounts(url)
        const jobs = yield* Effect.all(Array.from({ length: 40 }, (_, i) => client.enqueue("together", { i })), {
          concurrency: "unbounded"
        })
        expect(new Set(jobs.map((job) => job.id)).size).toBe(40)
        expect(jobs.map((job) => job.payload)).toEqual(Array.from({ length: 40 }, (_, i) => ({ i })))
        const afterEnqueues = yield* requestCounts(url)
        expect(afterEnqueues.enqueue - before.enqueue).toBe(0)
        expect(afterEnqueues.enqueueMany - before.enqueueMany).toBeGreaterThan(0)
        expect(afterEnqueues.enqueueMany - before.enqueueMany).toBeLessThanOrEqual(4)

        // The broker refuses the batch for one job: that caller alone gets the error.
        const mixed = yield* Effect.all(
          [
            ...Array.from({ length: 5 }, (_, i) => client.enqueue("together", { late: i })),
            client.enqueue("together", "x".repeat(300 * 1024))
          ].map(Effect.either),
          { concurrency: "unbounded" }
        )
        expect(mixed.slice(0, 5).every(Either.isRight)).toBe(true)
        expect(Either.isLeft(mixed[5]!) && mixed[5].left._tag).toBe("PayloadTooLarge")
        expect((yield* client.stats).counts.queued).toBe(45)

        const claimed = yield* client.claim({ workerId: "w", types: ["together"], max: 20 })
        expect(claimed).toHaveLength(20)
        yield* client.complete(claimed[0]!.token)
        const beforeCompletes = yield* requestCounts(url)
        // One of them was completed already: only that one fails.
        const outcomes = yield* Effect.all(
          claimed.map((c) => Effect.either(client.complete(c.token, { done: c.job.id }))),
          { concurrency: "unbounded" }
        )
        expect(Either.isLeft(outcomes[0]!) && outcomes[0].left._tag).toMatch(/InvalidTransition|LeaseLost/)
        for (const [i, outcome] of outcomes.slice(1).entries()) {
          expect(Either.isRight(outcome) && outcome.right.state).toBe("completed")
          expect(Either.isRight(outcome) && outcome.right.result).toEqual({ done: claimed[i + 1]!.job.id })
        }
        const afterCompletes = yield* requestCounts(url)
        expect(afterCompletes.completeMany - beforeCompletes.completeMany).toBeGreaterThan(0)
        expect(afterCompletes.completeMany - beforeCompletes.completeMany).toBeLessThanOrEqual(2)
        expect((yield* client.stats).counts.completed).toBe(20)
      }))

    it.scopedLive("completeId completes as complete does, merged or alone, and answers each job's id", () =>
      Effect.gen(function*() {
        const url = yield* startBroker({ store: yield* MemoryStore.make })
        const client = yield* clientIn(transports[transport](url))
        yield* client.enqueueMany(Array.from({ length: 6 }, (_, n) => ({ type: "ack", payload: n })))
        const claimed = yield* client.claim({ workerId: "w", types: ["ack"], max: 6 })
        expect(claimed).toHaveLength(6)
        const before = yield* requestCounts(url)
        // Five in one turn (one CompleteMany), one of them a token already used: that one alone fails.
        yield* client.completeId(claimed[0]!.token)
        const outcomes = yield* Effect.all(
          claimed.slice(0, 5).map((c) => Effect.either(client.completeId(c.token, { done: c.job.payload }))),
          { concurrency: "unbounded" }
        )
        expect(Either.isLeft(outcomes[0]!) && outcomes[0].left._tag).toMatch(/InvalidTransition|LeaseLost/)
        expect(outcomes.slice(1)).toEqual(claimed.slice(1, 5).map((c) => Either.right(c.job.id)))
        expect((yield* requestCounts(url)).completeMany - before.completeMany).toBe(1)
        // Alone in its turn: a single Complete.
        expect(yield* client.completeId(claimed[5]!.token, "last")).toBe(claimed[5]!.job.id)
        for (const c of claimed.slice(1)) {
          const job = yield* client.get(c.job.id)
          expect([job.state, job.result]).toEqual(["completed", c === claimed[5] ? "last" : { done: c.job.payload }])
        }
        const bad = yield* Effect.either(client.completeId("not-a-token"))
        expect(Either.isLeft(bad) && bad.left._tag).toBe("InvalidRequest")
      }))

    it.scopedLive("a value that cannot travel as JSON is refused as InvalidRequest, alone, before it is sent", () =>
      withClient(transport, (client) =>
        Effect.gen(function*() {
          const [bad, good] = yield* Effect.all(
            [client.enqueue("json", { n: 1n }), client.enqueue("json", { n: 1 })].map(Effect.either),
            { concurrency: "unbounded" }
          )
          expect(Either.isLeft(bad!) && bad.left._tag).toBe("InvalidRequest")
          expect(Either.isLeft(bad!) && bad.left.message).toContain("payload of a json job cannot be sent as JSON")
          expect(Either.isRight(good!) && good.right.payload).toEqual({ n: 1 })
          const many = yield* Effect.either(client.enqueueMany([{ type: "json", payload: 1n }]))
          expect(Either.isLeft(many) && many.left._tag).toBe("InvalidRequest")
          const [claimed] = yield* client.claim({ workerId: "w", types: ["json"] })
          const cycle: Record<string, unknown> = {}
          cycle.self = cycle
          const progress = yield* Effect.either(client.heartbeat(claimed!.token, { progress: cycle }))
          expect(Either.isLeft(progress) && progress.left.message).toContain("progress cannot be sent as JSON")
          const result = yield* Effect.either(client.complete(claimed!.token, { total: 2n }))
          expect(Either.isLeft(result) && result.left.message).toContain("result cannot be sent as JSON")
          expect((yield* client.get(claimed!.job.id)).state).toBe("running")
          expect((yield* client.stats).counts.queued + (yield* client.stats).counts.running).toBe(1)
          // Past the depth the client looks into, and behind what it does not look into: the
          // verdict is still JSON's.
          const deep = (inner: unknown) => Array.from({ length: 40 }).reduce<unknown>((v) => ({ v }), inner)
          const deepCycle: Record<string, unknown> = {}
          deepCycle.self = deep(deepCycle)
          const throwing = [
            deepCycle,
            {
              toJSON: () => {
                throw new Error("no")
              }
            },
            {
              get x() {
                throw new Error("no")
              }
            },
            [new Date(0), { n: 2n }]
          ]
          for (const payload of throwing) {
            const refused = yield* Effect.either(client.enqueueManyIds([{ type: "json" }, { type: "json", payload }]))
            expect(Either.isLeft(refused) && refused.left.message).toContain("cannot be sent as JSON")
          }
          const plain = Object.assign(Object.create(null) as Record<string, unknown>, { a: [1, "b", null, true] })
          const writable = [deep({ end: 1 }), new Date(0), { toJSON: () => "t" }, plain, [undefined, () => 1]]
          const sent = yield* client.enqueueMany(writable.map((payload) => ({ type: "json", payload })))
          expect(sent.map((job) => job.payload)).toEqual(JSON.parse(JSON.stringify(writable)))
        })))

    it.scopedLive("cancel, retry, pause, resume, leader", () =>
      withClient(transport, (client) =>
        Effect.gen(function*() {
          const job = yield* client.enqueue("c")
          expect((yield* client.cancel(job.id)).state).toBe("cancelled")
          expect((yield* client.retry(job.id)).state).toBe("queued")
          expect(yield* client.pause("c")).toEqual({ all: false, types: ["c"] })
          expect(yield* client.claim({ workerId: "w" })).toEqual([])
          expect(yield* client.resume("c")).toEqual({ all: false, types: [] })
          expect(yield* client.claim({ workerId: "w" })).toHaveLength(1)
          const leader = yield* client.leader
          expect(leader.role).toBe("leader")
          expect(leader.leaderUrl).toBe(leader.self)
        })))

    // REST has no streaming endpoint (see the "auth" suite for its refusal)
    if (transport !== "rest") {
      it.scopedLive("watch streams job events", () =>
        withClient(transport, (client) =>
          Effect.gen(function*() {
            // The watch answers with the leader first: from then on it is subscribed to job events.
            const subscribed = yield* Deferred.make<void>()
            const events = yield* client.watch().pipe(
              Stream.tap(() => Deferred.succeed(subscribed, undefined)),
              Stream.filter((e) => e._tag === "Job"),
              Stream.take(2),
              Stream.runCollect,
              Effect.fork
            )
            yield* Deferred.await(subscribed)
            const job = yield* client.enqueue("watched")
            yield* client.cancel(job.id)
            const seen = Chunk.toReadonlyArray(yield* Fiber.join(events))
            expect(seen.map((e) => (e._tag === "Job" ? `${e.event.kind}:${e.event.jobId}` : e._tag))).toEqual([
              `enqueued:${job.id}`,
              `cancelled:${job.id}`
            ])
          })))
    }
  })
}

type Headers = ReadonlyArray<[string, string]>

/**
 * `protocol` with each request's headers passed through `rewrite` on their way out; those of
 * each `EnqueueMany`, as sent, are kept in `sent`.
 */
const rewriting = (
  protocol: Layer.Layer<RpcClient.Protocol>,
  rewrite: (headers: Headers) => Headers,
  sent: Array<Headers>
): Layer.Layer<RpcClient.Protocol> =>
  Layer.map(protocol, (context) => {
    const inner = Context.get(context, RpcClient.Protocol)
    return Context.add(context, RpcClient.Protocol, {
      ...inner,
      send: (request, transferables) => {
        if (request._tag !== "Request") return inner.send(request, transferables)
        const headers = rewrite(request.headers)
        if (request.tag === "EnqueueMany") sent.push(headers)
        return inner.send({ ...request, headers }, transferables)
      }
    })
  })

describe("enqueueManyIds over RPC", () => {
  it.scopedLive("asks for a minimal answer (prefer: return=minimal); enqueueMany does not", () =>
    Effect.gen(function*() {
      const url = yield* startBroker({ store: yield* MemoryStore.make })
      const sent: Array<Headers> = []
      const client = yield* clientIn(
        OsqueueClient.layerProtocol(rewriting(Protocols.webSocketProtocol(url), (headers) => headers, sent))
      )
      const ids = yield* client.enqueueManyIds([{ type: "min", payload: 1 }])
      const whole = yield* client.enqueueMany([{ type: "min", payload: 2 }])
      expect(sent.map((headers) => headers.filter(([name]) => name === preferHeader))).toEqual([
        [[preferHeader, "return=minimal"]],
        []
      ])
      expect((yield* client.list({ type: "min" })).jobs.map((job) => job.id)).toEqual([...ids, whole[0]!.id])
    }))

  it.scopedLive("from a broker that ignores the header (as one that predates it) keeps the ids of the whole jobs it answers", () =>
    Effect.gen(function*() {
      const url = yield* startBroker({ store: yield* MemoryStore.make })
      // The header taken off on its way out: the broker answers whole jobs, as an older one does.
      const withoutPrefer = (headers: Headers) => headers.filter(([name]) => name !== preferHeader)
      for (const protocol of [Protocols.webSocketProtocol(url), Protocols.httpProtocol(url)]) {
        const client = yield* clientIn(OsqueueClient.layerProtocol(rewriting(protocol, withoutPrefer, [])))
        const ids = yield* client.enqueueManyIds([{ type: "old", payload: 1 }, { type: "old", payload: 2 }])
        const whole = yield* client.enqueueMany([{ type: "old", payload: 3 }])
        expect(whole.map((job) => job.payload)).toEqual([3])
        const listed = (yield* client.list({ type: "old" })).jobs.map((job) => job.id)
        expect(listed.slice(-3)).toEqual([...ids, whole[0]!.id])
      }
    }))
})

describe("completeId over RPC", () => {
  /** `protocol` with the headers of each `CompleteMany` sent kept in `sent` and the answers to them in `answers`. */
  const watching = (protocol: Layer.Layer<RpcClient.Protocol>, sent: Array<Headers>, answers: Array<unknown>) =>
    Layer.map(protocol, (context) => {
      const inner = Context.get(context, RpcClient.Protocol)
      const completeManyIds = new Set<string>()
      return Context.add(context, RpcClient.Protocol, {
        ...inner,
        send: (request, transferables) => {
          if (request._tag === "Request" && request.tag === "CompleteMany") {
            sent.push(request.headers)
            completeManyIds.add(String(request.id))
          }
          return inner.send(request, transferables)
        },
        run: (f) =>
          inner.run((message) => {
            if (message._tag === "Exit" && completeManyIds.has(String(message.requestId))) answers.push(message.exit)
            return f(message)
          })
      })
    })

  const claimThree = (client: OsqueueClient["Type"], type: string) =>
    Effect.flatMap(
      client.enqueueMany([1, 2, 3].map((n) => ({ type, payload: n }))),
      () => client.claim({ workerId: "w", types: [type], max: 3 })
    )

  it.scopedLive("asks for a minimal answer (prefer: return=minimal) and gets ids; complete gets whole jobs", () =>
    Effect.gen(function*() {
      const url = yield* startBroker({ store: yield* MemoryStore.make })
      const sent: Array<Headers> = []
      const answers: Array<unknown> = []
      const client = yield* clientIn(
        OsqueueClient.layerProtocol(watching(Protocols.webSocketProtocol(url), sent, answers))
      )
      const [a, b, c] = yield* claimThree(client, "min")
      const ids = yield* Effect.all([client.completeId(a!.token), client.completeId(b!.token, 2)], {
        concurrency: "unbounded"
      })
      expect(ids).toEqual([a!.job.id, b!.job.id])
      const whole = yield* Effect.all([client.complete(c!.token), Effect.either(client.complete(a!.token))], {
        concurrency: "unbounded"
      })
      expect(whole[0]!.state).toBe("completed")
      expect(sent.map((headers) => headers.filter(([name]) => name === preferHeader))).toEqual([
        [[preferHeader, "return=minimal"]],
        []
      ])
      // On the wire: the ids alone, then a whole job.
      expect(answers[0]).toEqual({
        _tag: "Success",
        value: [{ _tag: "Right", right: a!.job.id }, { _tag: "Right", right: b!.job.id }]
      })
      expect(answers[1]).toMatchObject({
        _tag: "Success",
        value: [{ _tag: "Right", right: { id: c!.job.id, state: "completed" } }, { _tag: "Left" }]
      })
    }))

  it.scopedLive("from a broker that ignores the header (as one that predates it) keeps the ids of the whole jobs it answers", () =>
    Effect.gen(function*() {
      const url = yield* startBroker({ store: yield* MemoryStore.make })
      const withoutPrefer = (headers: Headers) => headers.filter(([name]) => name !== preferHeader)
      for (const protocol of [Protocols.webSocketProtocol(url), Protocols.httpProtocol(url)]) {
        const answers: Array<unknown> = []
        const client = yield* clientIn(
          OsqueueClient.layerProtocol(watching(rewriting(protocol, withoutPrefer, []), [], answers))
        )
        const claimed = yield* claimThree(client, "old")
        const ids = yield* Effect.all(claimed.map((c) => client.completeId(c.token)), { concurrency: "unbounded" })
        expect(ids).toEqual(claimed.map((c) => c.job.id))
        expect(answers[0]).toMatchObject({
          _tag: "Success",
          value: claimed.map((c) => ({ _tag: "Right", right: { id: c.job.id, state: "completed" } }))
        })
      }
    }))
})

describe("leader discovery", () => {
  for (const transport of ["http", "ws", "rest"] as const) {
    it.scopedLive(`follows NotLeader and skips dead URLs (${transport})`, () =>
      Effect.gen(function*() {
        const store = yield* MemoryStore.make
        const leader = yield* startBroker({ store })
        const follower = yield* startBroker({ store })
        const urls = ["http://127.0.0.1:1", follower, leader]
        const layer = transport === "http"
          ? OsqueueClient.layerHttp({ urls })
          : transport === "ws"
          ? OsqueueClient.layerWebSocket({ urls })
          : OsqueueClient.layerRest({ urls })
        const client = yield* clientIn(layer)
        const job = yield* client.enqueue("x")
        expect(yield* client.currentBroker).toBe(leader)
        expect((yield* client.get(job.id)).id).toBe(job.id)
      }))
  }

  it.scopedLive("keeps working when the leader hands over", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const leaderScope = yield* Effect.flatMap(Effect.scope, (s) => Scope.fork(s, ExecutionStrategy.sequential))
      const first = yield* startBroker({ store, electionTtl: "1 second" }).pipe(Scope.extend(leaderScope))
      const second = yield* startBroker({ store, electionTtl: "1 second" })
      const client = yield* clientIn(OsqueueClient.layerHttp({ urls: [first, second] }))
      const before = yield* client.enqueue("x")
      expect(yield* client.currentBroker).toBe(first)
      yield* Scope.close(leaderScope, Exit.void)
      const after = yield* client.enqueue("x")
      expect(yield* client.currentBroker).toBe(second)
      const page = yield* client.list()
      expect(page.jobs.map((j) => j.id)).toEqual([before.id, after.id])
    }))

  it.scopedLive("given only the store, finds the leader from queue.json's metadata", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const leader = yield* startBroker({ store })
      yield* startBroker({ store })
      const discover = Election.leaderFromStore().pipe(Effect.provideService(ObjectStore, store))
      expect(yield* discover).toBe(leader)
      const client = yield* clientIn(OsqueueClient.layerHttp({ urls: [], discover }))
      yield* client.enqueue("x")
      expect(yield* client.currentBroker).toBe(leader)
    }))

  it.scopedLive("with a dead URL and the store, goes to the leader the store names", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const leader = yield* startBroker({ store })
      const discover = Election.leaderFromStore().pipe(Effect.provideService(ObjectStore, store))
      // Without discovery the client would wait on its retry schedule before trying the next URL.
      const client = yield* clientIn(
        OsqueueClient.layerHttp({ urls: ["http://127.0.0.1:1"], discover, retry: Schedule.spaced("1 minute") })
      )
      yield* client.enqueue("x").pipe(Effect.timeout("10 seconds"))
      expect(yield* client.currentBroker).toBe(leader)
    }))

  it.scopedLive("a released leader is named by no one in the metadata", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const scope = yield* Effect.flatMap(Effect.scope, (s) => Scope.fork(s, ExecutionStrategy.sequential))
      const leader = yield* startBroker({ store }).pipe(Scope.extend(scope))
      const discover = Election.leaderFromStore().pipe(Effect.provideService(ObjectStore, store))
      expect(yield* discover).toBe(leader)
      yield* Scope.close(scope, Exit.void)
      expect(yield* discover).toBeNull()
    }))

  it.scopedLive("a broker that is starting or stopping (503, not an RPC answer) is skipped, not a defect", () =>
    Effect.gen(function*() {
      const stopping = yield* Effect.acquireRelease(
        Effect.async<Http.Server>((resume) => {
          const server = Http.createServer((_request, response) => {
            response.writeHead(503, { "content-type": "application/json" })
            response.end(JSON.stringify({ error: "the broker is starting or stopping" }))
          })
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
      )
      const address = stopping.address()
      const url = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`
      const leader = yield* startBroker({ store: yield* MemoryStore.make })
      const client = yield* clientIn(
        OsqueueClient.layerHttp({ urls: [url, leader], retry: Schedule.spaced("10 millis") })
      )
      yield* client.enqueue("x")
      expect(yield* client.currentBroker).toBe(leader)
    }))

  it.scopedLive("a call in flight when its broker stops is retried elsewhere, not ended as an interruption", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const leaderScope = yield* Effect.flatMap(Effect.scope, (s) => Scope.fork(s, ExecutionStrategy.sequential))
      const first = yield* startBroker({ store, electionTtl: "1 second" }).pipe(Scope.extend(leaderScope))
      const second = yield* startBroker({ store, electionTtl: "1 second" })
      const client = yield* clientIn(
        OsqueueClient.layerHttp({ urls: [first, second], retry: Schedule.spaced("50 millis") })
      )
      // A long poll is in flight at the leader when it stops.
      const claim = yield* Effect.fork(client.claim({ workerId: "w", waitMs: 3_000 }))
      yield* Effect.sleep("300 millis")
      yield* Scope.close(leaderScope, Exit.void)
      const exit = yield* Fiber.await(claim)
      expect(Exit.isInterrupted(exit)).toBe(false)
      expect(yield* client.currentBroker).toBe(second)
    }))

  it.scopedLive("gives up with BrokerUnreachable when nothing answers", () =>
    Effect.gen(function*() {
      const client = yield* clientIn(
        OsqueueClient.layerHttp({ urls: ["http://127.0.0.1:1"], retry: Schedule.recurs(2) })
      )
      const error = yield* Effect.flip(client.stats)
      expect(error._tag).toBe("BrokerUnreachable")
    }))
})

describe("auth", () => {
  const layers = {
    http: OsqueueClient.layerHttp,
    ws: OsqueueClient.layerWebSocket,
    rest: OsqueueClient.layerRest
  } as const
  for (const transport of ["http", "ws", "rest"] as const) {
    it.scopedLive(`sends the token, and without it fails with Unauthorized (${transport})`, () =>
      Effect.gen(function*() {
        const url = yield* startBroker({ store: yield* MemoryStore.make, token: "s3cret" })
        const good = yield* clientIn(layers[transport]({ urls: url, token: "s3cret" }))
        const job = yield* good.enqueue("x")
        expect((yield* good.get(job.id)).id).toBe(job.id)
        const bad = yield* clientIn(layers[transport]({ urls: url, token: "wrong", retry: Schedule.recurs(1) }))
        const error = yield* Effect.flip(bad.stats)
        expect(error._tag).toBe("Unauthorized")
      }))
  }

  it.scopedLive("watch is refused over REST with a clear error", () =>
    withClient("rest", (client) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Stream.runDrain(client.watch()))
        expect(error._tag).toBe("InvalidRequest")
        expect(error.message).toContain("RPC")
      })))

  it.scopedLive("layerConfig reads OSQUEUE_BROKERS, OSQUEUE_TOKEN and OSQUEUE_TRANSPORT", () =>
    Effect.gen(function*() {
      const url = yield* startBroker({ store: yield* MemoryStore.make, token: "t0k" })
      const env = new Map([["OSQUEUE_BROKERS", `http://127.0.0.1:1,${url}`], ["OSQUEUE_TOKEN", "t0k"], [
        "OSQUEUE_TRANSPORT",
        "rest"
      ]])
      const client = yield* clientIn(
        OsqueueClient.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(env))))
      )
      const job = yield* client.enqueue("configured")
      expect((yield* client.get(job.id)).type).toBe("configured")
      expect(yield* client.currentBroker).toBe(url)
    }))
})
