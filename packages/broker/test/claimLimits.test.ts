/**
 * Limits on claims against a real broker (docs/architecture.md, "Limits on claims"): set, listed
 * and cleared over REST and RPC; bad values refused with `InvalidRequest` naming what was wrong,
 * changing nothing; claims past a limit get fewer jobs; a long poll held back by a limit wakes
 * when a running job ends, or when a rate's window frees a slot; a restarted broker keeps them.
 */
import { describe, expect, it } from "@effect/vitest"
import { MemoryStore } from "@osqueue/storage"
import { Duration, Effect, Scope } from "effect"
import { awaitLeader, rest, rpcHttp, startBroker } from "./fixtures.js"

interface Claimed {
  readonly job: { readonly id: string; readonly type: string }
  readonly token: string
}

describe("limits on claims", () => {
  it.scopedLive("set, listed and cleared over REST; bad values are refused and change nothing; claims keep to them", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const broker = yield* startBroker({ store })
      yield* awaitLeader(broker)
      const call = (method: string, path: string, body?: unknown) => rest(broker.base, method, path, body)

      expect(
        (yield* call("POST", "/v1/limits", { type: "mail", concurrency: 2, rate: { max: 10, windowMs: 60_000 } })).body
      )
        .toEqual([{ type: "mail", concurrency: 2, rate: { max: 10, windowMs: 60_000 } }])
      for (
        const [body, named] of [
          [{ type: "mail" }, "concurrency, a rate or both"],
          [{ type: "mail", concurrency: 0 }, "concurrency limit is a whole number"],
          [{ type: "mail", rate: { max: 5, windowMs: 0 } }, "window"],
          [{ type: "mail", rate: { max: 0, windowMs: 1_000 } }, "starts from 1"],
          [{ type: "mail", concurency: 3 }, "concurency"],
          [{ type: "", concurrency: 1 }, "job type must not be empty"]
        ] as const
      ) {
        const refused = yield* call("POST", "/v1/limits", body)
        expect(refused.status, JSON.stringify(body)).toBe(400)
        expect(JSON.stringify(refused.body), JSON.stringify(body)).toContain(named)
      }
      expect((yield* call("GET", "/v1/limits")).body)
        .toEqual([{ type: "mail", concurrency: 2, rate: { max: 10, windowMs: 60_000 }, running: 0, startsInWindow: 0 }])

      yield* call("POST", "/v1/jobs/batch", {
        jobs: [{ type: "mail" }, { type: "mail" }, { type: "mail" }, { type: "sms" }]
      })
      const first = (yield* call("POST", "/v1/jobs/claim", { workerId: "w1", max: 10 })).body as Array<Claimed>
      expect(first.map((c) => c.job.id)).toEqual(["job-1", "job-2", "job-4"])
      expect((yield* call("POST", "/v1/jobs/claim", { workerId: "w2", max: 10 })).body).toEqual([])
      const stats = (yield* call("GET", "/v1/stats")).body as { limits: unknown }
      expect(stats.limits).toEqual([{
        type: "mail",
        concurrency: 2,
        rate: { max: 10, windowMs: 60_000 },
        running: 2,
        startsInWindow: 2
      }])

      // The limits survive a restart (checkpoint or log), with the starts of the window.
      yield* Scope.close(broker.scope, Effect.void as never)
      const second = yield* startBroker({ store, url: "http://second.test" })
      yield* awaitLeader(second)
      expect((yield* rest(second.base, "GET", "/v1/limits")).body)
        .toEqual([{ type: "mail", concurrency: 2, rate: { max: 10, windowMs: 60_000 }, running: 2, startsInWindow: 2 }])
      expect((yield* rest(second.base, "POST", "/v1/jobs/claim", { workerId: "w2", max: 10 })).body).toEqual([])
      expect((yield* rest(second.base, "POST", "/v1/limits/clear", { type: "mail" })).body).toEqual([])
      const rest3 = (yield* rest(second.base, "POST", "/v1/jobs/claim", { workerId: "w2", max: 10 })).body as Array<
        Claimed
      >
      expect(rest3.map((c) => c.job.id)).toEqual(["job-3"])
    }))

  it.scopedLive("over RPC; a long poll held back wakes when a running job ends, and when a rate's window frees a slot", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const client = yield* rpcHttp(broker.base)
      expect(yield* client.SetLimit({ type: "a", concurrency: 1 })).toEqual([{ type: "a", concurrency: 1 }])
      // A bad value over RPC (sent as it is: the typed client would not encode it) fails alone.
      const answer = yield* Effect.promise(() =>
        fetch(`${broker.base}/rpc`, {
          method: "POST",
          headers: { "content-type": "application/ndjson" },
          body: JSON.stringify({
            _tag: "Request",
            id: "1",
            tag: "SetLimit",
            payload: { type: "a", concurrency: -1 },
            headers: []
          })
        }).then((r) => r.text())
      )
      expect(answer).toContain("InvalidRequest")
      expect(answer).toContain("a concurrency limit is a whole number")
      expect((yield* client.Limits()).map((limit) => limit.concurrency)).toEqual([1])
      yield* client.EnqueueMany({ jobs: [{ type: "a" }, { type: "a" }, { type: "b" }, { type: "b" }, { type: "b" }] })
      const [held] = yield* client.Claim({ workerId: "w1", types: ["a"] })

      // Held back by the concurrency limit: answered once the running job completes.
      const waiting = yield* Effect.fork(Effect.timed(client.Claim({ workerId: "w2", types: ["a"], waitMs: 20_000 })))
      yield* Effect.sleep("300 millis")
      yield* client.Complete({ token: held!.token })
      const [waited, claimed] = yield* waiting.await.pipe(Effect.flatten)
      expect(claimed.map((c) => c.job.id)).toEqual(["job-2"])
      expect(Duration.toMillis(waited)).toBeLessThan(10_000)

      // A rate of one start per 1.5 s on the whole queue: the second claim waits for the window.
      yield* client.ClearLimit({ type: "a" })
      yield* client.SetLimit({ rate: { max: 1, windowMs: 1_500 } })
      expect((yield* client.Claim({ workerId: "w3", types: ["b"] })).map((c) => c.job.id)).toEqual(["job-3"])
      const started = Date.now()
      const next = yield* client.Claim({ workerId: "w3", types: ["b"], waitMs: 20_000 })
      expect(next.map((c) => c.job.id)).toEqual(["job-4"])
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_000)
      expect(Date.now() - started).toBeLessThan(10_000)
      const limits = yield* client.Limits()
      expect(limits).toEqual([{ rate: { max: 1, windowMs: 1_500 }, running: 3, startsInWindow: 1 }])
    }))
})
