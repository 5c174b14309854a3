/**
 * Named queues (docs/architecture.md, "Named queues"): one broker serves several queues, each an
 * engine of its own under its own key prefix, named by the REST path prefix `/queues/<name>` or
 * an RPC message's `osqueue-queue` header; different brokers may lead different queues.
 */
import { describe, expect, it } from "@effect/vitest"
import { FileStore, MemoryStore } from "@osqueue/storage"
import { QueueNames } from "@osqueue/types"
import { Duration, Effect, Schedule, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { awaitLeader, rest, rpcHttp, rpcWs, startBroker, type Started } from "./fixtures.js"

const inQueue = (name: string) => ({ headers: { [QueueNames.queueHeader]: name } })

/** Waits until the broker leads `name`. */
const awaitLeading = (broker: Started, name: string) =>
  Effect.suspend(() => {
    const queue = broker.queues.all.find((q) => q.name === name)
    return queue === undefined ? Effect.dieMessage(`no queue ${name}`) : queue.election.role
  }).pipe(
    Effect.filterOrFail((role) => role._tag === "Leader"),
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("10 seconds"))),
    Effect.orDieWith(() => new Error(`the broker never led ${name}`))
  )

describe("named queues", () => {
  it.scopedLive("two queues on one broker are independent: a job is claimed only from its queue, a pause holds only its queue", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const broker = yield* startBroker({ store, queues: ["default", "emails", "reports"] })
      yield* awaitLeading(broker, "emails")
      yield* awaitLeading(broker, "reports")

      // REST: the same job type in two queues
      const email = yield* rest(broker.base, "POST", "/queues/emails/v1/jobs", { type: "send", payload: { to: "a" } })
      expect(email.status).toBe(201)
      const none = yield* rest(broker.base, "POST", "/queues/reports/v1/jobs/claim", { workerId: "w", max: 10 })
      expect(none.body).toEqual([])
      expect((yield* rest(broker.base, "POST", "/v1/jobs/claim", { workerId: "w", max: 10 })).body).toEqual([])
      const claimed = yield* rest(broker.base, "POST", "/queues/emails/v1/jobs/claim", { workerId: "w", max: 10 })
      expect(claimed.body).toMatchObject([{ job: { id: (email.body as { id: string }).id, type: "send" } }])
      // a job id is its queue's: the other queue does not know it
      expect((yield* rest(broker.base, "GET", `/queues/reports/v1/jobs/${(email.body as { id: string }).id}`)).status)
        .toBe(404)

      // RPC over HTTP and over WebSocket: the queue rides in each message's header
      const http = yield* rpcHttp(broker.base)
      const ws = yield* rpcWs(broker.base)
      expect(yield* http.Pause({}, inQueue("reports"))).toMatchObject({ all: true })
      yield* http.Enqueue({ type: "render" }, inQueue("reports"))
      yield* ws.Enqueue({ type: "send" }, inQueue("emails"))
      // reports is paused: nothing to claim there; emails goes on
      expect(yield* ws.Claim({ workerId: "w", max: 10 }, inQueue("reports"))).toEqual([])
      expect(yield* http.Claim({ workerId: "w", max: 10 }, inQueue("emails"))).toHaveLength(1)
      const stats = {
        emails: yield* ws.Stats(undefined, inQueue("emails")),
        reports: yield* http.Stats(undefined, inQueue("reports")),
        default: yield* http.Stats()
      }
      expect(stats.emails.paused.all).toBe(false)
      expect(stats.reports.paused.all).toBe(true)
      expect(stats.emails.counts.running).toBe(2)
      expect(stats.reports.counts.queued).toBe(1)
      expect(stats.default.counts).toMatchObject({ queued: 0, running: 0 })

      // each queue is its own root object and log under its prefix; the default queue's keys are unprefixed
      const keys = yield* store.list("")
      expect(keys).toContain("queue.json")
      expect(keys).toContain("queues/emails/queue.json")
      expect(keys).toContain("queues/reports/queue.json")
      expect(keys.some((key) => key.startsWith("queues/emails/log/"))).toBe(true)
      expect(keys.some((key) => key.startsWith("log/"))).toBe(true)

      // metrics: a named queue's series are labelled, the default queue's are as they were
      const metrics = (yield* rest(broker.base, "GET", "/metrics")).body as string
      expect(metrics).toMatch(/osqueue_jobs\{queue="reports",state="queued"\} 1/)
      expect(metrics).toMatch(/osqueue_jobs\{state="queued"\} 0/)
      expect(metrics).toMatch(/osqueue_requests_total\{operation="enqueue",outcome="ok",queue="emails"\} \d/)

      // readiness covers every queue; /state takes ?queue=
      const ready = (yield* rest(broker.base, "GET", "/readyz")).body as {
        ready: boolean
        queues: Record<string, { role: string }>
      }
      expect(ready.ready).toBe(true)
      expect(Object.keys(ready.queues)).toEqual(["default", "emails", "reports"])
      const state = (yield* rest(broker.base, "GET", "/state?queue=reports")).body as { state: { paused: unknown } }
      expect(state.state.paused).toBeDefined()
    }))

  it.scopedLive("a queue the broker does not serve is UnknownQueue naming it and the ones served, on every transport", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker({ queues: ["emails"] })
      yield* awaitLeading(broker, "emails")
      const unknown = { _tag: "UnknownQueue", queue: "nope", served: ["emails"] }
      const restReply = yield* rest(broker.base, "POST", "/queues/nope/v1/jobs", { type: "t" })
      expect(restReply.status).toBe(404)
      expect(restReply.body).toEqual(unknown)
      // the default queue is not served here either: the unprefixed routes name it
      const unprefixed = yield* rest(broker.base, "GET", "/v1/stats")
      expect(unprefixed.status).toBe(404)
      expect(unprefixed.body).toEqual({ ...unknown, queue: "default" })
      // a bad name is simply unknown (no queue is created by a request)
      expect((yield* rest(broker.base, "GET", "/queues/..%2F/v1/stats")).status).toBe(404)
      const http = yield* rpcHttp(broker.base)
      const ws = yield* rpcWs(broker.base)
      expect(yield* http.Enqueue({ type: "t" }, inQueue("nope")).pipe(Effect.flip)).toMatchObject(unknown)
      expect(yield* ws.Stats(undefined, inQueue("nope")).pipe(Effect.flip)).toMatchObject(unknown)
      // a served queue on the same connections works
      expect(yield* http.Enqueue({ type: "t" }, inQueue("emails"))).toMatchObject({ type: "t" })
      // the OpenAPI document describes the prefixed routes with their queue parameter
      const spec = (yield* rest(broker.base, "GET", "/v1/openapi.json")).body as {
        paths: Record<string, { post?: { operationId: string; parameters: Array<{ name: string; in: string }> } }>
      }
      const prefixed = spec.paths["/queues/{queue}/v1/jobs"]?.post
      expect(prefixed?.parameters).toContainEqual(expect.objectContaining({ name: "queue", in: "path" }))
      expect(prefixed?.operationId).not.toBe(spec.paths["/v1/jobs"]?.post?.operationId)
    }))

  it.scopedLive("the default queue keeps its keys: a single-queue broker's queue.json is the default queue of a broker of several", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const before = yield* startBroker({ store, url: "http://one.test" })
      yield* awaitLeader(before)
      const job = (yield* rest(before.base, "POST", "/v1/jobs", { type: "kept" })).body as { id: string }
      expect((yield* store.list("")).filter((key) => key.startsWith("queues/"))).toEqual([])
      yield* Scope.close(before.scope, Effect.void as never)

      const after = yield* startBroker({ store, url: "http://many.test", queues: ["default", "emails"] })
      yield* awaitLeading(after, "default")
      expect((yield* rest(after.base, "GET", `/v1/jobs/${job.id}`)).body).toMatchObject({ id: job.id, type: "kept" })
      expect((yield* rest(after.base, "GET", `/queues/default/v1/jobs/${job.id}`)).body).toMatchObject({ id: job.id })
      expect((yield* rest(after.base, "GET", `/queues/emails/v1/jobs/${job.id}`)).status).toBe(404)
    }))

  it.scopedLive("two brokers on one file store lead different queues; a follower of one queue redirects it, and takes it over when its leader goes", () =>
    Effect.gen(function*() {
      const directory = fs.mkdtempSync(path.join(os.tmpdir(), "osqueue-queues-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true })))
      const storeA = yield* FileStore.make({ directory })
      const storeB = yield* FileStore.make({ directory })
      // a serves "orders" alone and starts first: it leads orders; b serves both and leads "emails"
      // a TTL that a loaded machine's file store keeps: the handoff below does not wait for it
      const engine = { electionTtl: Duration.seconds(5) }
      const a = yield* startBroker({ store: storeA, url: "http://a.test", queues: ["orders"], engine })
      yield* awaitLeading(a, "orders")
      const b = yield* startBroker({ store: storeB, url: "http://b.test", queues: ["orders", "emails"], engine })
      yield* awaitLeading(b, "emails")
      expect((yield* b.queues.all[0]!.election.role)._tag).toBe("Follower")

      const created = yield* rest(a.base, "POST", "/queues/orders/v1/jobs", { type: "ship" })
      expect(created.body).toMatchObject({ type: "ship" })
      const order = created.body as { id: string }
      expect((yield* rest(b.base, "POST", "/queues/emails/v1/jobs", { type: "send" })).status).toBe(201)
      // b follows orders: NotLeader naming a, per queue, on REST and RPC
      const refused = yield* rest(b.base, "POST", "/queues/orders/v1/jobs", { type: "ship" })
      expect(refused.status).toBe(421)
      expect(refused.body).toEqual({ _tag: "NotLeader", leaderUrl: "http://a.test" })
      const http = yield* rpcHttp(b.base)
      expect(yield* http.Enqueue({ type: "ship" }, inQueue("orders")).pipe(Effect.flip))
        .toMatchObject({ _tag: "NotLeader", leaderUrl: "http://a.test" })
      expect((yield* http.Leader(undefined, inQueue("orders"))).leaderUrl).toBe("http://a.test")
      expect((yield* http.Leader(undefined, inQueue("emails"))).role).toBe("leader")
      // a does not serve emails at all
      expect((yield* rest(a.base, "GET", "/queues/emails/v1/stats")).body).toMatchObject({ _tag: "UnknownQueue" })

      // a stops (a clean handoff): b takes orders over, with its job, and keeps emails
      yield* Scope.close(a.scope, Effect.void as never)
      yield* awaitLeading(b, "orders")
      expect((yield* rest(b.base, "GET", `/queues/orders/v1/jobs/${order.id}`)).body).toMatchObject({
        id: order.id,
        type: "ship"
      })
      expect((yield* rest(b.base, "POST", "/queues/orders/v1/jobs", { type: "ship" })).status).toBe(201)
      expect(fs.existsSync(path.join(directory, "objects"))).toBe(true)
    }))
})
