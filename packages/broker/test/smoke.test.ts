import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { awaitLeader, rest, rpcHttp, rpcWs, startBroker } from "./fixtures.js"

describe("smoke", () => {
  it.scopedLive("enqueue, claim, complete over REST, RPC-HTTP and RPC-WS", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const created = yield* rest(broker.base, "POST", "/v1/jobs", { type: "email", payload: { to: "a" } })
      expect(created.status).toBe(201)
      const http = yield* rpcHttp(broker.base)
      const claimed = yield* http.Claim({ workerId: "w1" })
      expect(claimed.length).toBe(1)
      const ws = yield* rpcWs(broker.base)
      const done = yield* ws.Complete({ token: claimed[0]!.token, result: 42 })
      expect(done.state).toBe("completed")
      const stats = yield* rest(broker.base, "GET", "/v1/stats")
      console.log(JSON.stringify(stats.body))
    }))
})
