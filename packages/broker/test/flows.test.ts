/**
 * Flows against a real broker (docs/flows.md): enqueued over REST and RPC, refused whole with a
 * 400 that names the problem, the parent claimable once its children completed with their
 * results, and a flow half done carried across a restart from the store.
 */
import { describe, expect, it } from "@effect/vitest"
import { MemoryStore } from "@osqueue/storage"
import { maxFlowDepth } from "@osqueue/types"
import { Effect, Scope } from "effect"
import { awaitLeader, rest, rpcHttp, startBroker } from "./fixtures.js"

interface WireJob {
  readonly id: string
  readonly type: string
  readonly state: string
  readonly parentId?: string
  readonly children?: ReadonlyArray<string>
  readonly childResults?: Record<string, unknown>
}

interface Claimed {
  readonly job: WireJob
  readonly token: string
}

const flow = {
  job: {
    type: "report",
    payload: { month: 11 },
    children: [{ type: "part", payload: 1 }, { type: "part", payload: 2 }]
  }
}

const deep = (levels: number): Record<string, unknown> =>
  levels === 1 ? { type: "leaf" } : { type: "level", children: [deep(levels - 1)] }

describe("flows over REST and RPC", () => {
  it.scopedLive("POST /v1/flows enqueues the tree; the parent runs after its children with their results", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const call = (method: string, path: string, body?: unknown) => rest(broker.base, method, path, body)
      const created = yield* call("POST", "/v1/flows", flow)
      expect(created.status).toBe(201)
      const jobs = created.body as ReadonlyArray<WireJob>
      expect(jobs.map((job) => [job.id, job.state])).toEqual([
        ["job-1", "waiting-children"],
        ["job-2", "queued"],
        ["job-3", "queued"]
      ])
      expect(jobs[0]!.children).toEqual(["job-2", "job-3"])
      expect(jobs[2]!.parentId).toBe("job-1")
      expect(((yield* call("GET", "/v1/stats")).body as { counts: Record<string, number> }).counts).toMatchObject({
        "waiting-children": 1,
        queued: 2
      })
      expect((yield* call("POST", "/v1/jobs/claim", { workerId: "w", types: ["report"] })).body).toEqual([])

      const parts = (yield* call("POST", "/v1/jobs/claim", { workerId: "w", types: ["part"], max: 2 })).body as Array<
        Claimed
      >
      for (const { job, token } of parts) {
        expect((yield* call("POST", `/v1/jobs/${job.id}/complete`, { token, result: { part: job.id } })).status).toBe(
          200
        )
      }
      const [parent] = (yield* call("POST", "/v1/jobs/claim", { workerId: "w", types: ["report"] })).body as Array<
        Claimed
      >
      expect(parent!.job.childResults).toEqual({
        "job-2": { state: "completed", result: { part: "job-2" } },
        "job-3": { state: "completed", result: { part: "job-3" } }
      })
    }))

  it.scopedLive("a refused flow is a 400 naming what is wrong, and changes nothing", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const call = (method: string, path: string, body?: unknown) => rest(broker.base, method, path, body)
      const cases: ReadonlyArray<readonly [unknown, RegExp]> = [
        [{ job: deep(maxFlowDepth + 1) }, new RegExp(`at most ${maxFlowDepth} levels`)],
        [
          { job: { type: "r", children: [{ type: "c", idempotencyKey: "k" }, { type: "c", idempotencyKey: "k" }] } },
          /named twice/
        ],
        [{ job: { type: "r", children: [{ type: "c", colour: "red" }] } }, /colour/],
        [{ job: { type: "r" }, onChildFailure: "retry" }, /onChildFailure/],
        [{ job: { type: "r", children: "c" } }, /children/]
      ]
      for (const [body, message] of cases) {
        const refused = yield* call("POST", "/v1/flows", body)
        expect(refused.status, JSON.stringify(body)).toBe(400)
        expect(JSON.stringify(refused.body)).toMatch(message)
      }
      expect((yield* call("GET", "/v1/stats")).body).toMatchObject({ enqueuedTotal: 0 })
      const spec = (yield* call("GET", "/v1/openapi.json")).body as { paths: Record<string, unknown> }
      expect(Object.keys(spec.paths)).toContain("/v1/flows")
    }))

  it.scopedLive("RPC EnqueueFlow answers the jobs; a flow whose root key is held answers that flow again", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const client = yield* rpcHttp(broker.base)
      const request = { job: { ...flow.job, idempotencyKey: "nov" }, onChildFailure: "ignore" as const }
      const jobs = yield* client.EnqueueFlow(request)
      expect(jobs.map((job) => job.id)).toEqual(["job-1", "job-2", "job-3"])
      expect(jobs[0]!.onChildFailure).toBe("ignore")
      const again = yield* client.EnqueueFlow(request)
      expect(again.map((job) => job.id)).toEqual(["job-1", "job-2", "job-3"])
      // A key held outside the flow: the broker's refusal (a bad shape the client's encoder refuses).
      const refused = yield* Effect.flip(
        client.EnqueueFlow({ job: { type: "r", children: [{ type: "c", idempotencyKey: "nov" }] } })
      )
      expect(refused).toMatchObject({ _tag: "InvalidRequest", message: expect.stringMatching(/held by job-1/) })
    }))

  it.scopedLive("a flow half done survives a restart: the next broker releases the parent when the last child completes", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const first = yield* startBroker({ store })
      yield* awaitLeader(first)
      expect((yield* rest(first.base, "POST", "/v1/flows", flow)).status).toBe(201)
      const [one] = (yield* rest(first.base, "POST", "/v1/jobs/claim", { workerId: "w", types: ["part"] }))
        .body as Array<Claimed>
      yield* rest(first.base, "POST", `/v1/jobs/${one!.job.id}/complete`, { token: one!.token, result: "first" })
      yield* Scope.close(first.scope, Effect.void as never)

      const second = yield* startBroker({ store, url: "http://second.test" })
      yield* awaitLeader(second)
      const call = (method: string, path: string, body?: unknown) => rest(second.base, method, path, body)
      expect(((yield* call("GET", "/v1/jobs/job-1")).body as WireJob).childResults).toEqual({
        "job-2": { state: "completed", result: "first" }
      })
      const [two] = (yield* call("POST", "/v1/jobs/claim", { workerId: "w", types: ["part"] })).body as Array<Claimed>
      yield* call("POST", `/v1/jobs/${two!.job.id}/complete`, { token: two!.token, result: "second" })
      const [parent] = (yield* call("POST", "/v1/jobs/claim", { workerId: "w", types: ["report"] })).body as Array<
        Claimed
      >
      expect(parent!.job.id).toBe("job-1")
      expect(Object.keys(parent!.job.childResults!)).toEqual(["job-2", "job-3"])
    }))
})
