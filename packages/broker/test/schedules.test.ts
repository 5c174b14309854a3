/**
 * Schedules through a real broker (docs/architecture.md, "Schedules"): set, listed and removed
 * over REST and RPC; bad rules refused with 400 `InvalidRequest` naming what is wrong, changing
 * nothing; a waiting claim gets a run at its slot; the OpenAPI document describes the routes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { awaitLeader, rest, rpcHttp, rpcWs, startBroker } from "./fixtures.js"

/** A TTL that a loaded machine's pauses do not outlast: a one-second one may depose the only broker mid-test. */
const steady = { engine: { electionTtl: Duration.seconds(10) } }

const paris = {
  id: "morning",
  cron: "0 9 * * 1-5",
  timezone: "Europe/Paris",
  job: { type: "report", payload: { to: "ops" } }
}

describe("schedules", () => {
  it.scopedLive("REST: set, list and remove; bad rules are 400 naming what is wrong, and change nothing", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker(steady)
      yield* awaitLeader(broker)
      const set = yield* rest(broker.base, "POST", "/v1/schedules", paris)
      expect(set.status).toBe(200)
      expect(set.body).toMatchObject({ ...paris, missed: "catch-up" })
      const { createdAt, nextAt } = set.body as { createdAt: number; nextAt: number }
      expect(nextAt).toBeGreaterThan(createdAt)
      // 09:00 in Paris is 07:00 or 08:00 UTC.
      expect([7, 8]).toContain(new Date(nextAt).getUTCHours())

      const refusals: ReadonlyArray<[unknown, RegExp]> = [
        [{ ...paris, cron: "0 25 * * *" }, /cron expression "0 25 \* \* \*" is not valid/],
        [{ ...paris, timezone: "Europe/Atlantis" }, /time zone "Europe\/Atlantis" is not an IANA time zone/],
        [{ id: "x", everyMs: 10, job: { type: "t" } }, /everyMs.*from 1000/],
        [{ id: "x", everyMs: 60_000, cron: "* * * * *", job: { type: "t" } }, /not both/],
        [{ id: "no spaces", everyMs: 60_000, job: { type: "t" } }, /a schedule id is/],
        [{ id: "x", everyMs: 60_000, job: { type: "t", delayMs: 5 } }, /delayMs/]
      ]
      for (const [body, message] of refusals) {
        const refused = yield* rest(broker.base, "POST", "/v1/schedules", body)
        expect(refused.status, JSON.stringify(body)).toBe(400)
        expect((refused.body as { message: string }).message).toMatch(message)
      }

      const listed = yield* rest(broker.base, "GET", "/v1/schedules")
      expect(listed).toMatchObject({ status: 200, body: [{ id: "morning", nextAt }] })
      expect((listed.body as ReadonlyArray<unknown>).length).toBe(1)

      const gone = yield* rest(broker.base, "DELETE", "/v1/schedules/nope")
      expect(gone).toMatchObject({ status: 404, body: { _tag: "ScheduleNotFound", id: "nope" } })
      const removed = yield* rest(broker.base, "DELETE", "/v1/schedules/morning")
      expect(removed).toMatchObject({ status: 200, body: { id: "morning" } })
      expect((yield* rest(broker.base, "GET", "/v1/schedules")).body).toEqual([])

      const openapi = yield* rest(broker.base, "GET", "/v1/openapi.json")
      const paths = (openapi.body as { paths: Record<string, Record<string, unknown>> }).paths
      expect(Object.keys(paths["/v1/schedules"] ?? {}).sort()).toEqual(["get", "post"])
      expect(Object.keys(paths["/v1/schedules/{id}"] ?? {})).toEqual(["delete"])
    }))

  for (const transport of ["RPC over HTTP", "RPC over WebSocket"] as const) {
    it.scopedLive(`${transport}: a waiting claim gets the run of the next slot, under the slot's key`, () =>
      Effect.gen(function*() {
        const broker = yield* startBroker(steady)
        yield* awaitLeader(broker)
        const client = transport === "RPC over HTTP" ? yield* rpcHttp(broker.base) : yield* rpcWs(broker.base)
        const set = yield* client.UpsertSchedule({
          id: "tick",
          everyMs: 1_000,
          job: { type: "tick", payload: { n: 1 } }
        })
        expect(set.nextAt! % 1_000).toBe(0)
        const [claimed] = yield* client.Claim({ workerId: "w", types: ["tick"], waitMs: 5_000 })
        expect(claimed?.job).toMatchObject({ type: "tick", payload: { n: 1 } })
        const slot = Number(claimed!.job.idempotencyKey!.split(":")[2])
        expect(slot % 1_000).toBe(0)
        expect(slot).toBeGreaterThanOrEqual(set.nextAt!)
        // Created at its slot's first commit: a waiting claim wakes for it.
        expect(claimed!.job.createdAt - slot).toBeLessThan(1_000)
        const [listed] = yield* client.ListSchedules()
        expect(listed?.lastRun?.slot).toBeGreaterThanOrEqual(slot)
        expect(yield* client.RemoveSchedule({ id: "tick" })).toMatchObject({ id: "tick" })
        expect(yield* client.RemoveSchedule({ id: "tick" }).pipe(Effect.flip)).toMatchObject({
          _tag: "ScheduleNotFound"
        })
        const refused = yield* client.UpsertSchedule({ id: "bad", cron: "nope", job: { type: "t" } }).pipe(Effect.flip)
        expect(refused).toMatchObject({ _tag: "InvalidRequest" })
        expect(refused.message).toMatch(/cron expression "nope" is not valid/)
      }))
  }
})
