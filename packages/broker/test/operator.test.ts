/**
 * The operator's verbs against a real broker over HTTP: delete, purge, promote, priority and the
 * workers list on REST and RPC, bad requests answered 4xx naming the problem (and changing
 * nothing), and a full queue that sheds finished jobs before refusing with a Retry-After.
 */
import { describe, expect, it } from "@effect/vitest"
import { defaultLimits } from "@osqueue/core"
import { Effect } from "effect"
import { awaitLeader, rest, rpcHttp, startBroker, wholeJobs } from "./fixtures.js"

interface JobBody {
  readonly id: string
  readonly state: string
  readonly priority: number
}
interface Claimed {
  readonly job: JobBody
  readonly token: string
}

const started = (limits: Partial<typeof defaultLimits> = {}) =>
  Effect.gen(function*() {
    const broker = yield* startBroker({ engine: { limits: { ...defaultLimits, ...limits } } })
    yield* awaitLeader(broker)
    const call = (method: string, path: string, body?: unknown) => rest(broker.base, method, path, body)
    return { ...broker, call }
  })

describe("operator verbs over REST", () => {
  it.scopedLive("delete: any state but running (409 saying to cancel first), then 404; the idempotency key is free again", () =>
    Effect.gen(function*() {
      const { call } = yield* started()
      const queued = (yield* call("POST", "/v1/jobs", { type: "a", idempotencyKey: "k" })).body as JobBody
      const deleted = yield* call("DELETE", `/v1/jobs/${queued.id}`)
      expect(deleted).toMatchObject({ status: 200, body: { id: queued.id, state: "queued" } })
      expect((yield* call("GET", `/v1/jobs/${queued.id}`)).status).toBe(404)
      expect((yield* call("DELETE", `/v1/jobs/${queued.id}`)).body).toMatchObject({
        _tag: "JobNotFound",
        id: queued.id
      })
      const again = (yield* call("POST", "/v1/jobs", { type: "a", idempotencyKey: "k" })).body as JobBody
      expect(again.id).not.toBe(queued.id)

      const [claimed] = (yield* call("POST", "/v1/jobs/claim", { workerId: "w1" })).body as Array<Claimed>
      const refused = yield* call("DELETE", `/v1/jobs/${claimed!.job.id}`)
      expect(refused.status).toBe(409)
      expect(refused.body).toMatchObject({ _tag: "InvalidTransition", state: "running", action: "delete" })
      expect((refused.body as { hint: string }).hint).toContain("cancel it first")
      expect((yield* call("GET", `/v1/jobs/${claimed!.job.id}`)).body).toMatchObject({ state: "running" })
      yield* call("POST", `/v1/jobs/${claimed!.job.id}/cancel`)
      expect(yield* call("DELETE", `/v1/jobs/${claimed!.job.id}`)).toMatchObject({
        status: 200,
        body: { state: "cancelled" }
      })
      // the worker's lease went with the cancel
      const late = yield* call("POST", `/v1/jobs/${claimed!.job.id}/complete`, { token: claimed!.token })
      expect(late.status).toBe(404)
    }))

  it.scopedLive("purge: by state and type, answering a count; running, an unknown state or field is a 400 that changes nothing", () =>
    Effect.gen(function*() {
      const { call } = yield* started()
      yield* call("POST", "/v1/jobs/batch", {
        jobs: [{ type: "a" }, { type: "b" }, { type: "a" }, { type: "a", delayMs: 60_000 }]
      })
      for (const body of [{ state: "running" }, { state: "gone" }, { state: "queued", typ: "a" }, {}]) {
        const refused = yield* call("POST", "/v1/jobs/purge", body)
        expect(refused.status, JSON.stringify(body)).toBe(400)
      }
      const running = yield* call("POST", "/v1/jobs/purge", { state: "running" })
      expect(JSON.stringify(running.body)).toContain("cancel them first")
      expect(((yield* call("GET", "/v1/stats")).body as { counts: object }).counts).toMatchObject({
        queued: 3,
        delayed: 1
      })

      expect((yield* call("POST", "/v1/jobs/purge", { state: "queued", type: "a" })).body).toEqual({ count: 2 })
      expect((yield* call("POST", "/v1/jobs/purge", { state: "queued" })).body).toEqual({ count: 1 })
      expect((yield* call("POST", "/v1/jobs/purge", { state: "dead" })).body).toEqual({ count: 0 })
      expect(((yield* call("GET", "/v1/stats")).body as { counts: object }).counts).toMatchObject({
        queued: 0,
        delayed: 1
      })
    }))

  it.scopedLive("promote a delayed job, change a queued job's priority, list the workers holding jobs and polling", () =>
    Effect.gen(function*() {
      const { call } = yield* started()
      const [later, low, high] = (yield* call("POST", "/v1/jobs/batch", {
        jobs: [{ type: "a", delayMs: 3_600_000 }, { type: "a" }, { type: "a" }]
      })).body as Array<JobBody>
      const promoted = yield* call("POST", `/v1/jobs/${later!.id}/promote`)
      expect(promoted).toMatchObject({ status: 200, body: { state: "queued" } })
      const twice = yield* call("POST", `/v1/jobs/${later!.id}/promote`)
      expect(twice).toMatchObject({ status: 409, body: { _tag: "InvalidTransition", hint: "it is claimable already" } })

      expect((yield* call("POST", `/v1/jobs/${high!.id}/priority`, { priority: -10 })).body).toMatchObject({
        priority: -10
      })
      expect((yield* call("POST", `/v1/jobs/${low!.id}/priority`, { priority: 9_999_999 })).status).toBe(400)
      expect((yield* call("POST", `/v1/jobs/${low!.id}/priority`, {})).status).toBe(400)
      expect((yield* call("POST", "/v1/jobs/job-404/priority", { priority: 1 })).status).toBe(404)

      const [first] = (yield* call("POST", "/v1/jobs/claim", { workerId: "busy", max: 1 })).body as Array<Claimed>
      expect(first!.job.id).toBe(high!.id)
      yield* call("POST", "/v1/jobs/claim", { workerId: "busy", max: 1 })
      expect((yield* call("POST", `/v1/jobs/${later!.id}/priority`, { priority: 1 })).status).toBe(409)

      // an idle worker long-polling holds nothing, and is listed while it waits
      const polling = yield* Effect.fork(
        call("POST", "/v1/jobs/claim", { workerId: "idle", types: ["none"], waitMs: 3_000 })
      )
      yield* Effect.sleep("300 millis")
      const listed = yield* call("GET", "/v1/workers")
      expect(listed.status).toBe(200)
      const workers = listed.body as Array<{ id: string; jobs: number; lastSeenAt: number }>
      expect(workers.map(({ id, jobs }) => ({ id, jobs }))).toEqual([{ id: "busy", jobs: 2 }, { id: "idle", jobs: 0 }])
      for (const worker of workers) expect(Math.abs(Date.now() - worker.lastSeenAt)).toBeLessThan(10_000)
      yield* polling.await
    }))

  it.scopedLive("RPC: the same verbs, and a bad request is a typed InvalidRequest", () =>
    Effect.gen(function*() {
      const { base, call } = yield* started()
      const client = yield* rpcHttp(base)
      const [delayed] = wholeJobs(
        yield* client.EnqueueMany({ jobs: [{ type: "r", delayMs: 3_600_000 }, { type: "r" }] })
      )
      expect((yield* client.Promote({ id: delayed!.id })).state).toBe("queued")
      expect((yield* client.SetPriority({ id: delayed!.id, priority: -4 })).priority).toBe(-4)
      yield* client.Claim({ workerId: "rpc-worker", max: 1 })
      expect((yield* client.Workers()).map((w) => [w.id, w.jobs])).toEqual([["rpc-worker", 1]])
      expect(yield* client.Purge({ state: "queued", type: "r" })).toEqual({ count: 1 })
      const refused = yield* client.Delete({ id: delayed!.id }).pipe(Effect.flip)
      expect(refused).toMatchObject({ _tag: "InvalidTransition", state: "running" })
      const raw = yield* Effect.promise(() =>
        fetch(`${base}/rpc`, {
          method: "POST",
          headers: { "content-type": "application/ndjson" },
          body: `${
            JSON.stringify({ _tag: "Request", id: "7", tag: "Purge", payload: { state: "running" }, headers: [] })
          }\n`
        }).then((r) => r.text())
      )
      expect(raw).toContain("InvalidRequest")
      expect(raw).toContain("cancel them first")
      expect(((yield* call("GET", "/v1/stats")).body as { counts: object }).counts).toMatchObject({ running: 1 })
    }))
})

describe("a full queue", () => {
  it.scopedLive("sheds completed jobs before refusing; refused, it is 503 QueueFull with a Retry-After until the next lease ends", () =>
    Effect.gen(function*() {
      const { call } = yield* started({ maxStateBytes: 40_000, keepFinished: 1_000_000, keepFinishedMs: 1e12 })
      const payload = "x".repeat(2_000)
      // completed jobs fill the state to its cap…
      let completed = 0
      for (let i = 0; i < 40; i++) {
        const put = yield* call("POST", "/v1/jobs", { type: "fill", payload })
        if (put.status !== 201) break
        const [claimed] = (yield* call("POST", "/v1/jobs/claim", { workerId: "w", types: ["fill"] })).body as Array<
          Claimed
        >
        yield* call("POST", `/v1/jobs/${claimed!.job.id}/complete`, { token: claimed!.token })
        completed++
      }
      // …and every enqueue is accepted: the oldest completed jobs make room
      expect(completed).toBe(40)
      const first = yield* call("GET", "/v1/jobs/job-1")
      expect(first.status).toBe(404)

      // live jobs alone: one running with a 20 s lease, the rest queued
      yield* call("POST", "/v1/jobs", { type: "live", payload })
      yield* call("POST", "/v1/jobs/claim", { workerId: "w", types: ["live"], leaseMs: 20_000 })
      let full: { status: number; headers: Headers; body: unknown } | undefined
      for (let i = 0; i < 40 && full === undefined; i++) {
        const put = yield* call("POST", "/v1/jobs", { type: "live", payload })
        if (put.status !== 201) full = put
      }
      expect(full?.status).toBe(503)
      expect(full?.body, JSON.stringify(full?.body)).toMatchObject({ _tag: "QueueFull", limit: 40_000 })
      const seconds = Number(full!.headers.get("retry-after"))
      expect(seconds, JSON.stringify(full?.body)).toBeGreaterThan(10)
      expect(seconds).toBeLessThanOrEqual(20)
      const stats = (yield* call("GET", "/v1/stats")).body as { counts: { completed: number }; stateBytes: number }
      expect(stats.counts.completed).toBe(0)
    }))
})
