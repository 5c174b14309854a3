/**
 * Bad input over REST and RPC gets the documented status and tagged error, the broker keeps
 * serving, and the queue is unchanged (compared through /state before and after).
 */
import { describe, expect, it } from "@effect/vitest"
import { type JobId, type LeaseToken, WebSocketAuth } from "@osqueue/types"
import { Duration, Effect } from "effect"
import { type IncomingMessage, request as httpRequest } from "node:http"
import { awaitLeader, rest, rpcHttp, rpcWs, startBroker, type Started } from "./fixtures.js"

/** The queue's content, without what renewals change (seq, commitId, leader timestamps). */
const content = (broker: Started) =>
  rest(broker.base, "GET", "/state", undefined, { authorization: "Bearer secret" }).pipe(
    Effect.map((reply) => {
      const { state } = reply.body as { state: { jobs: unknown; totals: unknown; paused: unknown; nextJobSeq: number } }
      return { jobs: state.jobs, totals: state.totals, paused: state.paused, nextJobSeq: state.nextJobSeq }
    })
  )

const rawRpc = (base: string, line: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(`${base}/rpc`, {
      method: "POST",
      headers: { "content-type": "application/ndjson", ...headers },
      body: line
    })
    return { status: response.status, text: await response.text() }
  })

/** The status a WebSocket upgrade gets (fetch cannot upgrade; a bare HTTP request can ask). */
const upgradeStatus = (base: string, path: string, headers: Record<string, string> = {}) =>
  Effect.map(upgrade(base, path, headers), (answer) => answer.status)

/** The status of a WebSocket upgrade, and the subprotocol the broker selected. */
const upgrade = (base: string, path: string, headers: Record<string, string> = {}) =>
  Effect.async<{ readonly status: number; readonly protocol: string | undefined }>((resume) => {
    const url = new URL(path, base)
    const req = httpRequest(url, {
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        ...headers
      }
    })
    const answer = (res: IncomingMessage) => ({
      status: res.statusCode ?? 0,
      protocol: res.headers["sec-websocket-protocol"]
    })
    req.on("upgrade", (res, socket) => {
      socket.destroy()
      resume(Effect.succeed(answer(res)))
    })
    req.on("response", (res) => {
      res.resume()
      resume(Effect.succeed(answer(res)))
    })
    req.on("error", (e) => resume(Effect.die(e)))
    req.end()
  })

describe("bad input", () => {
  it.scopedLive("REST: malformed JSON, wrong types, oversize, unknown id, stale lease → 400/400/413/404/409, nothing changes", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker({ maxBodyBytes: 4_096, maxPayloadBytes: 1_024 })
      yield* awaitLeader(broker)
      const call = (method: string, path: string, body?: unknown) => rest(broker.base, method, path, body)
      const job = (yield* call("POST", "/v1/jobs", { type: "t" })).body as { id: string }
      const [first] = (yield* call("POST", "/v1/jobs/claim", { workerId: "w", leaseMs: 60_000 })).body as Array<
        { token: string }
      >
      yield* call("POST", `/v1/jobs/${job.id}/release`, { token: first!.token })
      const [current] = (yield* call("POST", "/v1/jobs/claim", { workerId: "w", leaseMs: 60_000 })).body as Array<
        { token: string }
      >
      const before = yield* content(broker)

      const malformed = yield* call("POST", "/v1/jobs", "{\"type\": \"t\",")
      expect(malformed.status).toBe(400)
      expect(malformed.body).toMatchObject({
        _tag: "InvalidRequest",
        message: expect.stringContaining("not valid JSON")
      })

      // curl -d without -H: a form content type
      const form = yield* Effect.promise(() =>
        fetch(`${broker.base}/v1/jobs/claim`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: "{\"workerId\":\"w\"}"
        }).then(async (r) => ({ status: r.status, body: await r.json() }))
      )
      expect(form.status).toBe(400)
      expect(form.body).toMatchObject({ _tag: "InvalidRequest", message: expect.stringContaining("application/json") })

      const wrongType = yield* call("POST", "/v1/jobs", { type: 42 })
      expect(wrongType.status).toBe(400)
      expect(wrongType.body).toMatchObject({ _tag: "HttpApiDecodeError", issues: [{ path: ["type"] }] })
      const missing = yield* call("POST", "/v1/jobs/claim", {})
      expect(missing.status).toBe(400)
      expect(missing.body).toMatchObject({ _tag: "HttpApiDecodeError" })
      const badQuery = yield* call("GET", "/v1/jobs?limit=lots")
      expect(badQuery.status).toBe(400)
      const badToken = yield* call("POST", `/v1/jobs/${job.id}/complete`, { token: "not-a-token" })
      expect(badToken.status).toBe(400)
      const otherJobsToken = yield* call("POST", "/v1/jobs/job-999/complete", { token: current!.token })
      expect(otherJobsToken.status).toBe(400)
      expect(otherJobsToken.body).toMatchObject({ _tag: "InvalidRequest" })

      const hugeBody = yield* call("POST", "/v1/jobs", { type: "t", payload: "x".repeat(10_000) })
      expect(hugeBody.status).toBe(413)
      expect(hugeBody.body).toMatchObject({ _tag: "PayloadTooLarge", limit: 4_096 })
      // no declared length (chunked): cut off at the limit
      const chunked = yield* Effect.promise(() => {
        const text = JSON.stringify({ type: "t", payload: "x".repeat(10_000) })
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            const bytes = new TextEncoder().encode(text)
            for (let i = 0; i < bytes.length; i += 1_000) controller.enqueue(bytes.subarray(i, i + 1_000))
            controller.close()
          }
        })
        return fetch(`${broker.base}/v1/jobs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          duplex: "half"
        } as RequestInit).then(async (r) => ({ status: r.status, body: await r.json() }))
      })
      expect(chunked.status).toBe(413)
      expect(chunked.body).toMatchObject({ _tag: "PayloadTooLarge", limit: 4_096, bytes: expect.any(Number) })
      const bigPayload = yield* call("POST", "/v1/jobs", { type: "t", payload: "x".repeat(2_000) })
      expect(bigPayload.status).toBe(413)
      expect(bigPayload.body).toMatchObject({ _tag: "PayloadTooLarge", limit: 1_024 })

      const unknown = yield* call("GET", "/v1/jobs/job-999")
      expect(unknown.status).toBe(404)
      expect(unknown.body).toEqual({ _tag: "JobNotFound", id: "job-999" })
      expect((yield* call("POST", "/v1/jobs/job-999/cancel")).status).toBe(404)

      const stale = yield* call("POST", `/v1/jobs/${job.id}/complete`, { token: first!.token })
      expect(stale.status).toBe(409)
      expect(stale.body).toMatchObject({ _tag: "LeaseLost", jobId: job.id })
      const staleBeat = yield* call("POST", `/v1/jobs/${job.id}/heartbeat`, { token: first!.token })
      expect(staleBeat.status).toBe(409)

      expect(yield* content(broker)).toEqual(before)
      // still serving: the current lease completes
      const done = yield* call("POST", `/v1/jobs/${job.id}/complete`, { token: current!.token })
      expect(done.status).toBe(200)
      const cancelDone = yield* call("POST", `/v1/jobs/${job.id}/cancel`)
      expect(cancelDone.status).toBe(409)
      expect(cancelDone.body).toMatchObject({ _tag: "InvalidTransition", jobId: job.id, state: "completed" })
    }))

  it.scopedLive("RPC: wrong types, oversize, unknown id, stale lease → InvalidRequest/PayloadTooLarge/JobNotFound/LeaseLost, nothing changes", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker({ maxBodyBytes: 4_096, maxPayloadBytes: 1_024 })
      yield* awaitLeader(broker)
      const http = yield* rpcHttp(broker.base)
      const ws = yield* rpcWs(broker.base)
      const job = yield* http.Enqueue({ type: "t" })
      const [first] = yield* http.Claim({ workerId: "w", leaseMs: 60_000 })
      yield* http.Release({ token: first!.token })
      const [current] = yield* http.Claim({ workerId: "w", leaseMs: 60_000 })
      const before = yield* content(broker)

      for (const client of [http, ws]) {
        expect(yield* client.Get({ id: "job-999" as JobId }).pipe(Effect.flip)).toMatchObject({
          _tag: "JobNotFound",
          id: "job-999"
        })
        expect(yield* client.Complete({ token: first!.token }).pipe(Effect.flip)).toMatchObject({ _tag: "LeaseLost" })
        expect(yield* client.Enqueue({ type: "t", payload: "x".repeat(2_000) }).pipe(Effect.flip))
          .toMatchObject({ _tag: "PayloadTooLarge", limit: 1_024 })
        expect(yield* client.Heartbeat({ token: `${job.id}/9/9` as LeaseToken }).pipe(Effect.flip))
          .toMatchObject({ _tag: "LeaseLost" })
      }
      // over the body limit on HTTP: the gate answers the request itself, typed
      expect(yield* http.Enqueue({ type: "t", payload: "x".repeat(10_000) }).pipe(Effect.flip))
        .toMatchObject({ _tag: "PayloadTooLarge", limit: 4_096 })

      // a payload of the wrong type (only an untyped client can send one) fails with the schema's message
      const wrong = yield* rawRpc(
        broker.base,
        JSON.stringify({ _tag: "Request", id: "7", tag: "Get", payload: { id: 5 }, headers: [] }) + "\n"
      )
      expect(wrong.status).toBe(200)
      expect(JSON.parse(wrong.text)).toMatchObject({
        _tag: "Exit",
        requestId: "7",
        exit: { _tag: "Failure", cause: { _tag: "Fail", error: { _tag: "InvalidRequest" } } }
      })
      expect(wrong.text).toContain("Expected string, actual 5")
      const garbage = yield* rawRpc(broker.base, "{oops\n")
      expect(JSON.parse(garbage.text)).toMatchObject({
        _tag: "Exit",
        requestId: "-1",
        exit: { cause: { error: { _tag: "InvalidRequest" } } }
      })

      expect(yield* content(broker)).toEqual(before)
      expect((yield* ws.Complete({ token: current!.token })).state).toBe("completed")
    }))
})

describe("nesting", () => {
  it.scopedLive("REST: a body nested past OSQUEUE_MAX_JSON_DEPTH is refused with 400 before it is parsed, on every route that takes one", () =>
    Effect.gen(function*() {
      {
        const broker = yield* startBroker()
        yield* awaitLeader(broker)
        const before = yield* content(broker)
        const deep = "[".repeat(100_000) + "]".repeat(100_000)
        const paths = [
          "/v1/jobs",
          "/v1/jobs/batch",
          "/v1/jobs/job-1/complete",
          "/v1/jobs/batch/complete",
          "/v1/jobs/claim",
          "/v1/pause"
        ]
        for (const path of paths) {
          const reply = yield* rest(broker.base, "POST", path, deep)
          expect(reply.status, path).toBe(400)
          expect(reply.body, path).toMatchObject({ _tag: "InvalidRequest" })
          expect((reply.body as { message: string }).message, path).toContain("levels deep")
        }
        // a payload deep enough to pass the body's check is still bounded by it
        const payload = JSON.parse("[".repeat(70) + "]".repeat(70)) as unknown
        expect((yield* rest(broker.base, "POST", "/v1/jobs", { type: "t", payload })).status).toBe(400)
        expect(
          (yield* rest(broker.base, "POST", "/v1/jobs", {
            type: "t",
            payload: JSON.parse("[".repeat(40) + "]".repeat(40))
          })).status
        ).toBe(201)
        expect((yield* content(broker)).jobs).toHaveLength((before.jobs as Array<unknown>).length + 1)
      }
    }))

  it.scopedLive("a refusal quotes at most a clip of the value it refused, however big, on REST and RPC", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const before = yield* content(broker)
      const huge = "abcdefghij-ÄÖÜ-日本語-🙂".repeat(20_000)

      const restReply = yield* Effect.promise(() =>
        fetch(`${broker.base}/v1/resume`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(huge)
        }).then(async (r) => ({ status: r.status, text: await r.text() }))
      )
      expect(restReply.status).toBe(400)
      expect(restReply.text.length).toBeLessThan(10_000)
      const decodeError = JSON.parse(restReply.text) as { _tag: string; message: string }
      expect(decodeError._tag).toBe("HttpApiDecodeError")
      expect(decodeError.message).toContain("characters left out")

      const line = JSON.stringify({ _tag: "Request", id: "1", tag: "ClearLimit", payload: huge, headers: [] })
      const rpcReply = yield* rawRpc(broker.base, line)
      expect(rpcReply.text.length).toBeLessThan(5_000)
      expect(rpcReply.text).toContain("InvalidRequest")
      expect(rpcReply.text).toContain("characters left out")

      expect(yield* content(broker)).toEqual(before)
    }))
})

describe("odd requests", () => {
  it.scopedLive("a target that is no path (///) is 404, an empty body typed as something else 400, both at once", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      for (const method of ["GET", "POST", "PUT", "DELETE"]) {
        const reply = yield* rest(
          broker.base,
          method,
          "///",
          method === "GET" || method === "DELETE" ? undefined : "{}"
        )
        expect(reply.status, method).toBe(404)
        expect(reply.body, method).toMatchObject({ _tag: "NoSuchRoute" })
      }
      for (const type of ["multipart/form-data; boundary=x", "application/ndjson", "text/plain"]) {
        const reply = yield* rest(broker.base, "POST", "/v1/pause", undefined, { "content-type": type }).pipe(
          Effect.timeout("2 seconds")
        )
        expect(reply.status, type).toBe(400)
        expect(reply.body, type).toMatchObject({ _tag: "InvalidRequest" })
      }
      expect((yield* rest(broker.base, "GET", "/v1/stats")).body).toMatchObject({ paused: { all: false } })
    }))
})

describe("overload", () => {
  it.scopedLive("past the pending cap: 429 Overloaded with Retry-After, never a 500, and the broker recovers", () =>
    Effect.gen(function*() {
      // a slow store keeps a write in flight while the burst piles up behind it
      const broker = yield* startBroker({ engine: { maxPending: 2, minCommitInterval: Duration.millis(200) } })
      yield* awaitLeader(broker)
      const replies = yield* Effect.all(
        Array.from({ length: 40 }, (_, i) => rest(broker.base, "POST", "/v1/jobs", { type: "burst", payload: i })),
        { concurrency: "unbounded" }
      )
      const statuses = replies.map((r) => r.status)
      expect(statuses.every((s) => s === 201 || s === 429)).toBe(true)
      const overloaded = replies.filter((r) => r.status === 429)
      expect(overloaded.length).toBeGreaterThan(0)
      expect(overloaded[0]!.headers.get("retry-after")).toMatch(/^\d+$/)
      expect(overloaded[0]!.body).toMatchObject({ _tag: "Overloaded", retryAfterMs: expect.any(Number) })
      const accepted = statuses.filter((s) => s === 201).length
      const stats = (yield* rest(broker.base, "GET", "/v1/stats")).body as { counts: { queued: number } }
      expect(stats.counts.queued).toBe(accepted)
      expect((yield* rest(broker.base, "POST", "/v1/jobs", { type: "after" })).status).toBe(201)
    }))
})

describe("auth", () => {
  it.scopedLive("with OSQUEUE_TOKEN set, calls without it get 401 / Unauthorized on every transport", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker({ token: "secret" })
      yield* awaitLeader(broker)
      const before = yield* content(broker)

      const none = yield* rest(broker.base, "POST", "/v1/jobs", { type: "t" })
      expect(none.status).toBe(401)
      expect(none.body).toEqual({ _tag: "Unauthorized", reason: "no bearer token was sent" })
      expect(none.headers.get("www-authenticate")).toBe("Bearer")
      const wrong = yield* rest(broker.base, "GET", "/v1/stats", undefined, { authorization: "Bearer nope" })
      expect(wrong.status).toBe(401)
      expect(wrong.body).toMatchObject({ reason: "the bearer token is wrong" })
      for (const path of ["/metrics", "/state", "/v1/jobs"]) {
        expect((yield* rest(broker.base, "GET", path)).status).toBe(401)
      }
      // probes and the API description stay open
      for (const path of ["/healthz", "/readyz", "/v1/openapi.json"]) {
        expect((yield* rest(broker.base, "GET", path)).status).toBe(200)
      }

      // RPC over HTTP: a typed client gets the tagged error (not a hang)
      const anonymous = yield* rpcHttp(broker.base)
      expect(yield* anonymous.Stats().pipe(Effect.flip)).toMatchObject({ _tag: "Unauthorized" })
      expect(yield* anonymous.Enqueue({ type: "t" }).pipe(Effect.flip)).toMatchObject({ _tag: "Unauthorized" })
      const raw = yield* rawRpc(
        broker.base,
        JSON.stringify({ _tag: "Request", id: "1", tag: "Stats", payload: {}, headers: [] }) + "\n"
      )
      expect(raw.status).toBe(401)

      // WebSocket: the upgrade is refused without the token, accepted with it (header, subprotocol, or
      // ?token= from older clients); the broker selects the plain protocol, never echoing the token
      expect(yield* upgradeStatus(broker.base, "/rpc/ws")).toBe(401)
      const offered = (token: string) => ({ "sec-websocket-protocol": WebSocketAuth.protocols(token).join(", ") })
      expect(yield* upgrade(broker.base, "/rpc/ws", offered("secret"))).toEqual({ status: 101, protocol: "osqueue" })
      expect(yield* upgradeStatus(broker.base, "/rpc/ws", offered("nope"))).toBe(401)
      expect(yield* upgradeStatus(broker.base, "/rpc/ws", { "sec-websocket-protocol": "osqueue, osqueue.bearer.%%%" }))
        .toBe(401)
      expect(yield* upgradeStatus(broker.base, "/rpc/ws?token=nope")).toBe(401)
      expect(yield* upgradeStatus(broker.base, "/rpc/ws?token=secret")).toBe(101)
      expect(yield* upgradeStatus(broker.base, "/rpc/ws", { authorization: "Bearer secret" })).toBe(101)

      expect(yield* content(broker)).toEqual(before)

      // with the token, all three transports work
      const ok = yield* rest(broker.base, "POST", "/v1/jobs", { type: "t" }, { authorization: "Bearer secret" })
      expect(ok.status).toBe(201)
      const http = yield* rpcHttp(broker.base, "secret")
      expect((yield* http.Stats()).counts.queued).toBe(1)
      const ws = yield* rpcWs(broker.base, "?token=secret")
      expect((yield* ws.Stats()).counts.queued).toBe(1)
    }))
})
