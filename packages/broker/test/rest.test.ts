/** Every REST operation with plain fetch, against a real broker on an ephemeral port. */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { awaitLeader, rest, startBroker } from "./fixtures.js"

interface JobBody {
  readonly id: string
  readonly state: string
  readonly type: string
  readonly result?: unknown
  readonly progress?: unknown
}
interface Claimed {
  readonly job: JobBody
  readonly token: string
}

const broker = Effect.gen(function*() {
  const started = yield* startBroker()
  yield* awaitLeader(started)
  const call = (method: string, path: string, body?: unknown) => rest(started.base, method, path, body)
  return { ...started, call }
})

describe("REST /v1", () => {
  it.scopedLive("enqueue, batch, get, list, claim, heartbeat, complete", () =>
    Effect.gen(function*() {
      const { base, call } = yield* broker
      const one = yield* call("POST", "/v1/jobs", { type: "email", payload: { to: "a@b.c" }, priority: 1 })
      expect(one.status).toBe(201)
      const job = one.body as JobBody
      expect(job).toMatchObject({ type: "email", state: "queued" })

      // a chunked body (no content-length) under the limit goes through
      const streamed = yield* Effect.promise(() =>
        fetch(`${base}/v1/jobs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: new ReadableStream<Uint8Array>({
            start(controller) {
              controller.enqueue(new TextEncoder().encode("{\"type\":\"stre"))
              controller.enqueue(new TextEncoder().encode("amed\"}"))
              controller.close()
            }
          }),
          duplex: "half"
        } as RequestInit).then(async (r) => ({ status: r.status, body: await r.json() }))
      )
      expect(streamed.status).toBe(201)
      expect(streamed.body).toMatchObject({ type: "streamed" })

      const again = yield* call("POST", "/v1/jobs", { type: "email", idempotencyKey: "k1" })
      const same = yield* call("POST", "/v1/jobs", { type: "email", idempotencyKey: "k1" })
      expect((same.body as JobBody).id).toBe((again.body as JobBody).id)

      const batch = yield* call("POST", "/v1/jobs/batch", { jobs: [{ type: "sms" }, { type: "sms", delayMs: 60_000 }] })
      expect(batch.status).toBe(201)
      expect((batch.body as Array<JobBody>).map((j) => j.state)).toEqual(["queued", "delayed"])

      const got = yield* call("GET", `/v1/jobs/${job.id}`)
      expect(got.status).toBe(200)
      expect((got.body as JobBody).id).toBe(job.id)

      const listed = yield* call("GET", "/v1/jobs?type=sms&limit=1")
      const page = listed.body as { jobs: Array<JobBody>; next?: number }
      expect(page.jobs.length).toBe(1)
      expect(page.next).toBeDefined()
      const second = yield* call("GET", `/v1/jobs?type=sms&after=${page.next}`)
      expect((second.body as { jobs: Array<JobBody> }).jobs.map((j) => j.state)).toEqual(["delayed"])
      const delayed = yield* call("GET", "/v1/jobs?state=delayed")
      expect((delayed.body as { jobs: Array<JobBody> }).jobs.length).toBe(1)
      // Newest first, and a search (over id, payload and error); an empty search is refused, naming it.
      const newest = yield* call("GET", "/v1/jobs?order=desc&limit=1")
      expect((newest.body as { jobs: Array<JobBody> }).jobs.map((j) => j.state)).toEqual(["delayed"])
      const found = yield* call("GET", `/v1/jobs?search=${encodeURIComponent(job.id)}`)
      expect((found.body as { jobs: Array<JobBody> }).jobs.map((j) => j.id)).toEqual([job.id])
      const empty = yield* call("GET", "/v1/jobs?search=")
      expect(empty.status).toBe(400)
      expect(JSON.stringify(empty.body)).toContain("a search must not be empty")
      expect((yield* call("GET", "/v1/jobs?order=sideways")).status).toBe(400)

      const claim = yield* call("POST", "/v1/jobs/claim", { workerId: "w1", types: ["email"], max: 10 })
      expect((claim.body as Array<Claimed>).every((c) => c.job.type === "email")).toBe(true)
      expect(claim.status).toBe(200)
      const claimed = claim.body as Array<Claimed>
      expect(claimed.length).toBe(2)
      const first = claimed[0]!
      expect(first.job.state).toBe("running")

      const beat = yield* call("POST", `/v1/jobs/${first.job.id}/heartbeat`, { token: first.token, progress: 50 })
      expect(beat.status).toBe(200)
      expect(beat.body).toMatchObject({ jobId: first.job.id })
      expect((yield* call("GET", `/v1/jobs/${first.job.id}`)).body).toMatchObject({ progress: 50 })

      const done = yield* call("POST", `/v1/jobs/${first.job.id}/complete`, { token: first.token, result: { ok: 1 } })
      expect(done.status).toBe(200)
      expect(done.body).toMatchObject({ state: "completed", result: { ok: 1 } })
    }))

  it.scopedLive("fail, release, cancel, retry, dead-letter redrive, pause and resume", () =>
    Effect.gen(function*() {
      const { call } = yield* broker
      const job = (yield* call("POST", "/v1/jobs", { type: "t", maxAttempts: 1 })).body as JobBody
      const [held] = (yield* call("POST", "/v1/jobs/claim", { workerId: "w" })).body as Array<Claimed>
      const released = yield* call("POST", `/v1/jobs/${job.id}/release`, { token: held!.token })
      expect(released.status).toBe(200)
      expect(released.body).toMatchObject({ state: "queued" })

      const [again] = (yield* call("POST", "/v1/jobs/claim", { workerId: "w" })).body as Array<Claimed>
      const failed = yield* call("POST", `/v1/jobs/${job.id}/fail`, {
        token: again!.token,
        error: "boom",
        retryable: false
      })
      expect(failed.status).toBe(200)
      expect(failed.body).toMatchObject({ state: "dead" })

      const redriven = yield* call("POST", "/v1/dead/retry", { type: "t" })
      expect(redriven.body).toEqual({ count: 1 })
      expect((yield* call("GET", `/v1/jobs/${job.id}`)).body).toMatchObject({ state: "queued" })

      const cancelled = yield* call("POST", `/v1/jobs/${job.id}/cancel`)
      expect(cancelled.status).toBe(200)
      expect(cancelled.body).toMatchObject({ state: "cancelled" })
      const retried = yield* call("POST", `/v1/jobs/${job.id}/retry`)
      expect(retried.body).toMatchObject({ state: "queued" })

      // an empty body pauses everything; a type pauses that type
      const paused = yield* call("POST", "/v1/pause")
      expect(paused.status).toBe(200)
      expect(paused.body).toMatchObject({ all: true })
      expect((yield* call("POST", "/v1/jobs/claim", { workerId: "w" })).body).toEqual([])
      expect((yield* call("POST", "/v1/resume")).body).toMatchObject({ all: false })
      expect((yield* call("POST", "/v1/pause", { type: "t" })).body).toEqual({ all: false, types: ["t"] })
      expect((yield* call("POST", "/v1/jobs/claim", { workerId: "w" })).body).toEqual([])
      expect((yield* call("POST", "/v1/resume", { type: "t" })).body).toEqual({ all: false, types: [] })
      expect(((yield* call("POST", "/v1/jobs/claim", { workerId: "w" })).body as Array<Claimed>).length).toBe(1)
    }))

  it.scopedLive("stats, leader, health, readiness, state, metrics, OpenAPI and docs", () =>
    Effect.gen(function*() {
      const { call } = yield* broker
      yield* call("POST", "/v1/jobs", { type: "x" })
      const stats = yield* call("GET", "/v1/stats")
      expect(stats.body).toMatchObject({ counts: { queued: 1 }, queuedByType: { x: 1 }, epoch: 1 })
      expect((yield* call("GET", "/v1/leader")).body).toMatchObject({
        self: "http://broker.test",
        role: "leader",
        leaderUrl: "http://broker.test",
        epoch: 1
      })
      expect((yield* call("GET", "/healthz")).status).toBe(200)
      const ready = yield* call("GET", "/readyz")
      expect(ready.status).toBe(200)
      expect(ready.body).toMatchObject({ ready: true, role: "leader" })

      const state = (yield* call("GET", "/state")).body as {
        version: string
        epoch: number
        seq: number
        state: { format: number; seq: number; jobs: Array<JobBody> }
      }
      expect(state.epoch).toBe(1)
      expect(state.state.format).toBe(5)
      expect(state.state.seq).toBe(state.seq)
      expect(state.state.jobs.map((j) => j.type)).toEqual(["x"])
      expect(typeof state.version).toBe("string")

      const metrics = yield* call("GET", "/metrics")
      expect(metrics.headers.get("content-type")).toContain("text/plain")
      const text = metrics.body as string
      expect(text).toContain("# TYPE osqueue_requests_total counter")
      expect(text).toMatch(/osqueue_requests_total\{operation="enqueue",outcome="ok"\} \d+/)
      expect(text).toMatch(/osqueue_commits_total \d+/)
      expect(text).toContain("# TYPE osqueue_commit_batch_size histogram")
      expect(text).toMatch(/osqueue_commit_latency_seconds_bucket\{le="\+Inf"\} \d+/)
      expect(text).toContain("osqueue_jobs{state=\"queued\"} 1")
      expect(text).toContain("osqueue_leader 1")
      expect(text).toMatch(/osqueue_storage_requests_total\{backend="memory",kind="put",outcome="ok"\} \d+/)
      expect(text).toMatch(/osqueue_storage_latency_seconds_count\{kind="get"\} \d+/)
      expect(text).toMatch(/osqueue_storage_put_bytes_total\{backend="memory"\} [1-9]\d*/)

      const openapi = yield* call("GET", "/v1/openapi.json")
      const spec = openapi.body as { openapi: string; paths: Record<string, unknown> }
      expect(spec.openapi).toMatch(/^3\./)
      expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining([
        "/v1/jobs",
        "/v1/jobs/batch",
        "/v1/jobs/claim",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/heartbeat",
        "/v1/jobs/{id}/complete",
        "/v1/jobs/{id}/fail",
        "/v1/jobs/{id}/release",
        "/v1/jobs/{id}/cancel",
        "/v1/jobs/{id}/retry",
        "/v1/dead/retry",
        "/v1/pause",
        "/v1/resume",
        "/v1/limits",
        "/v1/limits/clear",
        "/v1/stats",
        "/v1/leader"
      ]))

      const docs = yield* call("GET", "/docs")
      expect(docs.status).toBe(200)
      const html = docs.body as string
      expect(html).toContain("swagger-ui")
      // offline: no script or stylesheet from elsewhere
      expect(html).not.toMatch(/<script[^>]+src=["']?https?:/i)
      expect(html).not.toMatch(/<link[^>]+href=["']?https?:/i)
    }))
})

describe("single claims that do not wait", () => {
  it.scopedLive("sent at once, each gets a job of its own and counts as a claim; a claim past the jobs gets none", () =>
    Effect.gen(function*() {
      const { call } = yield* broker
      const claimsOk = Effect.map(
        call("GET", "/metrics"),
        (reply) =>
          Number(/osqueue_requests_total\{operation="claim",outcome="ok"\} (\d+)/.exec(reply.body as string)?.[1] ?? 0)
      )
      const before = yield* claimsOk
      yield* call("POST", "/v1/jobs/batch", {
        jobs: Array.from({ length: 6 }, (_, i) => ({ type: "gathered", payload: i }))
      })
      // Eight claims in flight together (gathered into one submit where they arrive in one turn).
      const replies = yield* Effect.all(
        Array.from({ length: 8 }, (_, i) => call("POST", "/v1/jobs/claim", { workerId: `w${i}`, max: 1 })),
        { concurrency: "unbounded" }
      )
      expect(replies.map((reply) => reply.status)).toEqual(Array(8).fill(200))
      const claimed = replies.flatMap((reply) => reply.body as Array<Claimed>)
      expect(claimed).toHaveLength(6)
      expect(new Set(claimed.map((c) => c.job.id)).size).toBe(6)
      expect(new Set(claimed.map((c) => c.token)).size).toBe(6)
      // Each claim's job is leased to the worker that sent it.
      for (const [i, reply] of replies.entries()) {
        for (const { job } of reply.body as Array<Claimed>) {
          const got = yield* call("GET", `/v1/jobs/${job.id}`)
          expect(got.body).toMatchObject({ state: "running", lease: { workerId: `w${i}` } })
        }
      }
      expect((yield* claimsOk) - before).toBe(8)
    }))
})

describe("complete and claim", () => {
  it.scopedLive("each call completes its job and claims the next in one commit; refused ones change nothing", () =>
    Effect.gen(function*() {
      const { call } = yield* broker
      const counted = Effect.map(
        call("GET", "/metrics"),
        (reply) =>
          Number(
            /osqueue_requests_total\{operation="completeAndClaim",outcome="ok"\} (\d+)/.exec(reply.body as string)
              ?.[1] ?? 0
          )
      )
      yield* call("POST", "/v1/jobs/batch", { jobs: Array.from({ length: 4 }, (_, i) => ({ type: "c", payload: i })) })
      const first = yield* Effect.all(
        [0, 1].map((i) => call("POST", "/v1/jobs/claim", { workerId: `w${i}` })),
        { concurrency: "unbounded" }
      )
      const held = first.map((reply) => (reply.body as Array<Claimed>)[0]!)
      const state = () =>
        Effect.map(call("GET", "/state"), (reply) => (reply.body as { state: { jobs: unknown } }).state.jobs)
      const before = yield* state()

      // Refused: the token of another job than the path's, a wait (it never waits), an unknown key.
      const wrongJob = yield* call("POST", `/v1/jobs/${held[1]!.job.id}/complete-and-claim`, {
        token: held[0]!.token,
        workerId: "w0"
      })
      expect(wrongJob.status).toBe(400)
      expect(JSON.stringify(wrongJob.body)).toContain(`the lease token is for job ${held[0]!.job.id}`)
      const waiting = yield* call("POST", `/v1/jobs/${held[0]!.job.id}/complete-and-claim`, {
        token: held[0]!.token,
        workerId: "w0",
        waitMs: 1_000
      })
      expect(waiting.status).toBe(400)
      expect(JSON.stringify(waiting.body)).toContain("waitMs")
      expect(yield* state()).toEqual(before)

      // Two calls together (gathered into one submit): each its own next job, leased to its worker.
      const okBefore = yield* counted
      const next = yield* Effect.all(
        held.map(({ job, token }, i) =>
          call("POST", `/v1/jobs/${job.id}/complete-and-claim`, { token, result: i, workerId: `n${i}` })
        ),
        { concurrency: "unbounded" }
      )
      expect(next.map((reply) => reply.status)).toEqual([200, 200])
      const claimed = next.map((reply) => reply.body as Array<Claimed>)
      expect(claimed.map((jobs) => jobs.length)).toEqual([1, 1])
      expect(new Set(claimed.map((jobs) => jobs[0]!.job.id)).size).toBe(2)
      for (const [i, jobs] of claimed.entries()) {
        expect((yield* call("GET", `/v1/jobs/${jobs[0]!.job.id}`)).body).toMatchObject({
          state: "running",
          lease: { workerId: `n${i}` }
        })
        expect((yield* call("GET", `/v1/jobs/${held[i]!.job.id}`)).body).toMatchObject({
          state: "completed",
          result: i
        })
      }
      expect((yield* counted) - okBefore).toBe(2)
    }))
})
