/**
 * What a request may put in the state, against a real broker: numbers that would make queue.json
 * unreadable are refused and change nothing; strings have caps; a mutation with a field it does not
 * know is refused; a lease token cannot be made from what the job's answers show.
 */
import { describe, expect, it } from "@effect/vitest"
import { MemoryStore } from "@osqueue/storage"
import { maxClaimTypes, maxJobTypeLength } from "@osqueue/types"
import { Effect, Scope } from "effect"
import { awaitLeader, rest, rpcHttp, startBroker } from "./fixtures.js"

interface Claimed {
  readonly job: { readonly id: string; readonly state: string; readonly lease?: Record<string, unknown> }
  readonly token: string
}

const huge = Number.MAX_SAFE_INTEGER

const messageOf = (body: unknown) => JSON.stringify(body)

describe("numbers a request may put in the state", () => {
  it.scopedLive("a refused request changes nothing, and a restarted broker reads the queue back", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const first = yield* startBroker({ store })
      yield* awaitLeader(first)
      const call = (method: string, path: string, body?: unknown) => rest(first.base, method, path, body)

      for (
        const body of [
          { type: "x", delayMs: huge },
          { type: "x", runAt: huge },
          { type: "x", backoff: { _tag: "exponential", baseMs: huge, maxMs: 1_000, jitter: 0 } },
          { type: "x", backoff: { _tag: "exponential", baseMs: 1_000, maxMs: huge, jitter: 0 } },
          { type: "x", backoff: { _tag: "fixed", delayMs: huge } }
        ]
      ) {
        const refused = yield* call("POST", "/v1/jobs", body)
        expect(refused.status, messageOf(body)).toBe(400)
        expect((yield* call("POST", "/v1/jobs/batch", { jobs: [{ type: "ok" }, body] })).status).toBe(400)
      }
      // The fast path and HttpApi alike: a chunked body goes through HttpApi.
      const chunked = yield* Effect.promise(() =>
        fetch(`${first.base}/v1/jobs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: new ReadableStream<Uint8Array>({
            start(controller) {
              controller.enqueue(new TextEncoder().encode(JSON.stringify({ type: "x", delayMs: huge })))
              controller.close()
            }
          }),
          duplex: "half"
        } as RequestInit).then((r) => r.status)
      )
      expect(chunked).toBe(400)
      expect((yield* call("GET", "/v1/stats")).body).toMatchObject({ enqueuedTotal: 0 })
      expect((yield* call("GET", "/v1/jobs/job-1")).status).toBe(404)

      // Delayed by a minute: still delayed after the restart on a slow machine.
      expect((yield* call("POST", "/v1/jobs", { type: "x", delayMs: 60_000 })).status).toBe(201)
      expect((yield* call("POST", "/v1/jobs", { type: "y" })).status).toBe(201)
      const [claimed] = (yield* call("POST", "/v1/jobs/claim", { workerId: "w", types: ["y"] })).body as Array<Claimed>
      const id = claimed!.job.id
      const failed = yield* call("POST", `/v1/jobs/${id}/fail`, {
        token: claimed!.token,
        error: "x",
        retryDelayMs: huge
      })
      expect(failed.status).toBe(400)
      expect(((yield* call("GET", `/v1/jobs/${id}`)).body as Claimed["job"]).state).toBe("running")
      expect(
        (yield* call("POST", `/v1/jobs/${id}/fail`, { token: claimed!.token, error: "x", retryDelayMs: 60_000 })).status
      )
        .toBe(200)

      yield* Scope.close(first.scope, Effect.void as never)
      const second = yield* startBroker({ store, url: "http://second.test" })
      yield* awaitLeader(second)
      const stats = (yield* rest(second.base, "GET", "/v1/stats")).body
      expect(stats).toMatchObject({ enqueuedTotal: 2, counts: { delayed: 1, "failed-waiting-retry": 1 } })
    }))
})

describe("strings and fields a mutation may carry", () => {
  it.scopedLive("unknown fields are refused, naming them; caps on types, claims and pauses name the limit", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const call = (method: string, path: string, body?: unknown) => rest(broker.base, method, path, body)

      const typo = yield* call("POST", "/v1/pause", { typ: "email" })
      expect(typo.status).toBe(400)
      expect(messageOf(typo.body)).toContain("typ")
      expect(((yield* call("GET", "/v1/stats")).body as { paused: unknown }).paused).toEqual({ all: false, types: [] })
      for (
        const [path, body] of [
          ["/v1/jobs", { type: "x", dleayMs: 5 }],
          ["/v1/jobs/batch", { jobs: [{ type: "x" }], extra: 1 }],
          ["/v1/jobs", { type: "x", backoff: { _tag: "fixed", delayMs: 5, maxMs: 9 } }],
          ["/v1/jobs/claim", { workerId: "w", maxx: 3 }],
          ["/v1/resume", { type: "x", all: true }],
          ["/v1/dead/retry", { types: ["x"] }]
        ] as const
      ) {
        const refused = yield* call("POST", path, body)
        expect(refused.status, `${path} ${messageOf(body)}`).toBe(400)
      }
      // Over RPC too: each line fails alone with InvalidRequest.
      const lines = [
        { _tag: "Request", id: "1", tag: "Pause", payload: { typ: "email" }, headers: [] },
        { _tag: "Request", id: "2", tag: "Enqueue", payload: { type: "x", delayMs: huge }, headers: [] },
        { _tag: "Request", id: "3", tag: "Claim", payload: { workerId: "w", maxx: 1 }, headers: [] }
      ]
      const answers = yield* Effect.promise(() =>
        fetch(`${broker.base}/rpc`, {
          method: "POST",
          headers: { "content-type": "application/ndjson" },
          body: lines.map((line) => JSON.stringify(line)).join("\n")
        }).then((r) => r.text())
      )
      const failures = answers.split("\n").filter((line) => line !== "").map((line) =>
        (JSON.parse(line) as { exit: { cause: { error: { _tag: string } } } }).exit.cause.error._tag
      )
      expect(failures).toEqual(["InvalidRequest", "InvalidRequest", "InvalidRequest"])
      expect(((yield* call("GET", "/v1/stats")).body as { enqueuedTotal: number }).enqueuedTotal).toBe(0)
      expect(((yield* call("GET", "/v1/stats")).body as { paused: unknown }).paused).toEqual({ all: false, types: [] })
      // Reads stay lenient.
      expect((yield* call("GET", "/v1/jobs?limit=5&colour=blue")).status).toBe(200)

      const long = "x".repeat(maxJobTypeLength + 1)
      for (
        const [path, body] of [
          ["/v1/pause", { type: long }],
          ["/v1/jobs/claim", { workerId: "w", types: [long] }],
          ["/v1/jobs/claim", { workerId: "w".repeat(201) }],
          ["/v1/jobs/claim", { workerId: "w", types: Array.from({ length: maxClaimTypes + 1 }, (_, i) => `t${i}`) }]
        ] as const
      ) {
        const refused = yield* call("POST", path, body)
        expect(refused.status, path).toBe(400)
        expect(messageOf(refused.body), path).toMatch(/at most/)
      }
      for (let i = 0; i < 100; i++) expect((yield* call("POST", "/v1/pause", { type: `t${i}` })).status).toBe(200)
      const tooMany = yield* call("POST", "/v1/pause", { type: "t100" })
      expect(tooMany.status).toBe(400)
      expect(messageOf(tooMany.body)).toContain("at most 100 types")
    }))
})

describe("lease tokens", () => {
  it.scopedLive("only the claim's answer carries the secret; a token made from the job's answers is LeaseLost", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const call = (method: string, path: string, body?: unknown) => rest(broker.base, method, path, body)
      yield* call("POST", "/v1/jobs", { type: "x" })
      const [claimed] = (yield* call("POST", "/v1/jobs/claim", { workerId: "w" })).body as Array<Claimed>
      const { job, token } = claimed!
      const parts = token.split("/")
      expect(parts).toHaveLength(4)
      const secret = parts[3]!
      expect(JSON.stringify(job)).not.toContain(secret)

      const shown = (yield* call("GET", `/v1/jobs/${job.id}`)).body as Claimed["job"] & { claims: number }
      expect(JSON.stringify(shown)).not.toContain(secret)
      expect(JSON.stringify((yield* call("GET", "/v1/jobs")).body)).not.toContain(secret)
      expect(JSON.stringify((yield* call("GET", "/state")).body)).not.toContain(secret)
      const client = yield* rpcHttp(broker.base)
      expect(JSON.stringify(yield* client.State())).not.toContain(secret)
      expect(JSON.stringify(yield* client.Get({ id: job.id as never }))).not.toContain(secret)

      const forged = `${shown.id}/${shown.claims}/${shown.lease!.epoch}`
      for (const attempt of [forged, `${forged}/${"A".repeat(22)}`]) {
        const refused = yield* call("POST", `/v1/jobs/${job.id}/complete`, { token: attempt })
        expect(refused.status, attempt).toBe(409)
        expect(refused.body).toMatchObject({ _tag: "LeaseLost" })
        expect(messageOf(refused.body)).not.toContain(secret)
      }
      const mismatch = yield* call("POST", "/v1/jobs/job-9/complete", { token })
      expect(mismatch.status).toBe(400)
      expect(messageOf(mismatch.body)).not.toContain(secret)
      expect((yield* call("POST", `/v1/jobs/${job.id}/complete`, { token })).status).toBe(200)
    }))
})
