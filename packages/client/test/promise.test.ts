import { describe, expect, it } from "@effect/vitest"
import { startBroker } from "@osqueue/broker/testing"
import { JobDefinition } from "@osqueue/client"
import { OsqueueClient } from "@osqueue/client/promise"
import { MemoryStore } from "@osqueue/storage"
import { Effect, Schema } from "effect"

const Email = JobDefinition.make({ type: "email", payload: Schema.Struct({ to: Schema.String }) })

/** Runs `body` with a facade client on a fresh broker, closing the client afterwards. */
const withFacade = (kind: "http" | "ws" | "rest", body: (client: OsqueueClient) => Promise<void>) =>
  Effect.gen(function*() {
    const url = yield* startBroker({ store: yield* MemoryStore.make })
    const client = new OsqueueClient({ brokerUrl: url, transport: { kind } })
    yield* Effect.promise(() => body(client).finally(() => client.close()))
  })

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected a rejection")
    },
    (error: unknown) => error as { readonly _tag: string; readonly message: string }
  )

describe("Promise facade", () => {
  for (const kind of ["http", "ws", "rest"] as const) {
    it.scopedLive(`submit, claim, heartbeat, complete, fail, cancel, retry (${kind})`, () =>
      withFacade(kind, async (client) => {
        const job = await client.submitJob("email", { to: "a@b.c" }, { maxAttempts: 2 })
        expect(job.state).toBe("queued")
        const typed = await client.submitJob(Email, { to: "x@y.z" })
        expect(typed.payload).toEqual({ to: "x@y.z" })
        const claimed = await client.claimJob("w1", { leaseMs: 5_000 })
        expect(claimed?.job.id).toBe(job.id)
        const beat = await client.heartbeat(claimed!.token, { pct: 10 })
        expect(beat.jobId).toBe(job.id)
        const done = await client.completeJob(claimed!.token, { sent: true })
        expect(done.state).toBe("completed")
        const stale = await rejection(client.completeJob(claimed!.token))
        expect(stale._tag).toBe("LeaseLost")
        expect(stale).toBeInstanceOf(Error)
        const second = await client.claimJob("w1")
        const failed = await client.failJob(second!.token, new Error("smtp down"), { retryable: false })
        expect(failed.state).toBe("dead")
        expect(failed.lastError).toBe("Error: smtp down")
        expect(await client.retryDeadJobs()).toBe(1)
        expect((await client.cancelJob(typed.id)).state).toBe("cancelled")
        expect((await client.retryJob(typed.id)).state).toBe("queued")
        expect((await client.getJob(typed.id)).id).toBe(typed.id)
        expect((await client.listJobs({ state: "queued" })).jobs).toHaveLength(1)
        const ids = await client.submitJobIds([{ type: "bulk", payload: 1 }, { type: "bulk", payload: 2 }])
        expect((await client.listJobs({ type: "bulk" })).jobs.map((j) => j.id)).toEqual(ids)
        expect((await client.submitJobs([{ type: "bulk", payload: 3 }]))[0]!.payload).toBe(3)
        await client.purgeJobs("queued", "bulk")
        expect((await client.getStats()).counts.completed).toBe(1)
        expect((await client.getLeader()).role).toBe("leader")
        expect(await client.claimJob("w2", { types: ["nothing"], waitMs: 50 })).toBeNull()
        const missing = await rejection(client.getJob("job-404"))
        expect(missing._tag).toBe("JobNotFound")
        const invalid = await rejection(client.submitJob(Email, { to: 5 } as never))
        expect(invalid._tag).toBe("InvalidRequest")
      }))
  }

  for (const kind of ["http", "ws", "rest"] as const) {
    it.scopedLive(`a worker loop of one call per job with completeAndClaimJobs (${kind})`, () =>
      withFacade(kind, async (client) => {
        const ids = (await client.submitJobs([1, 2, 3].map((n) => ({ type: "loop", payload: n })))).map((j) => j.id)
        const done: Array<string> = []
        let claimed = await client.claimJob("looper", { types: ["loop"], waitMs: 1_000 })
        while (claimed !== null) {
          done.push(claimed.job.id)
          const next = await client.completeAndClaimJobs(claimed.token, { n: claimed.job.payload }, "looper", {
            types: ["loop"]
          })
          claimed = next[0] ?? null
        }
        expect(done).toEqual(ids)
        for (const id of ids) expect((await client.getJob(id)).state).toBe("completed")
        // A token no claim could have returned is refused before it is sent.
        const bad = await rejection(client.completeAndClaimJobs("not a token", undefined, "looper"))
        expect([bad._tag, bad.message]).toEqual(["InvalidRequest", expect.stringContaining("lease token")])
      }))

    it.scopedLive(`promote, priority, delete, purge, workers (${kind})`, () =>
      withFacade(kind, async (client) => {
        const later = await client.submitJob("report", {}, { delayMs: 3_600_000 })
        const now = await client.submitJob("report", {})
        expect((await client.promoteJob(later.id)).state).toBe("queued")
        expect((await client.setJobPriority(later.id, -1)).priority).toBe(-1)
        const claimed = await client.claimJob("facade-worker")
        expect(claimed?.job.id).toBe(later.id)
        expect((await client.getWorkers()).map((w) => [w.id, w.jobs])).toEqual([["facade-worker", 1]])
        const running = await rejection(client.deleteJob(later.id))
        expect(running._tag).toBe("InvalidTransition")
        expect(running.message).toContain("cancel it first")
        expect((await client.deleteJob(now.id)).id).toBe(now.id)
        await client.submitJob("report", {})
        expect(await client.purgeJobs("queued", "report")).toBe(1)
        const refused = await rejection(client.purgeJobs("running"))
        expect(refused._tag).toBe("InvalidRequest")
        expect((await client.getStats()).counts).toMatchObject({ queued: 0, running: 1 })
      }))
  }

  for (const kind of ["http", "ws", "rest"] as const) {
    it.scopedLive(`upsert, list and remove schedules; a bad one is refused before it is sent (${kind})`, () =>
      withFacade(kind, async (client) => {
        const set = await client.upsertSchedule({
          id: "nightly",
          cron: "0 3 * * *",
          timezone: "America/New_York",
          job: { type: "report" }
        })
        expect(set).toMatchObject({ id: "nightly", missed: "catch-up", job: { type: "report" } })
        // 03:00 in New York is 07:00 or 08:00 UTC.
        expect([7, 8]).toContain(new Date(set.nextAt!).getUTCHours())
        const replaced = await client.upsertSchedule({
          id: "nightly",
          everyMs: 3_600_000,
          job: { type: "report" },
          missed: "skip"
        })
        expect(replaced).toMatchObject({ everyMs: 3_600_000, missed: "skip", createdAt: set.createdAt })
        expect((await client.listSchedules()).map((s) => s.id)).toEqual(["nightly"])
        expect((await client.removeSchedule("nightly")).id).toBe("nightly")
        expect(await client.listSchedules()).toEqual([])
        const missing = await rejection(client.removeSchedule("nightly"))
        expect(missing._tag).toBe("ScheduleNotFound")
        const tooFast = await rejection(client.upsertSchedule({ id: "fast", everyMs: 5, job: { type: "t" } }))
        expect(tooFast).toMatchObject({ _tag: "InvalidRequest" })
        expect(tooFast.message).toMatch(/invalid schedule.*everyMs/s)
        const badZone = await rejection(
          client.upsertSchedule({ id: "z", cron: "0 3 * * *", timezone: "Nowhere/City", job: { type: "t" } })
        )
        expect(badZone.message).toMatch(/time zone "Nowhere\/City"/)
      }))
  }

  for (const kind of ["http", "ws", "rest"] as const) {
    it.scopedLive(`limits on claims: set, listed, cleared; a bad one is refused before it leaves (${kind})`, () =>
      withFacade(kind, async (client) => {
        expect(await client.setLimit({ type: "email", concurrency: 1, rate: { max: 5, windowMs: 60_000 } }))
          .toEqual([{ type: "email", concurrency: 1, rate: { max: 5, windowMs: 60_000 } }])
        await client.submitJob("email", { to: "a@b.c" })
        await client.submitJob("email", { to: "d@e.f" })
        expect((await client.claimJobs("w1", { max: 5 })).map((c) => c.job.payload)).toEqual([{ to: "a@b.c" }])
        expect(await client.getLimits())
          .toEqual([{
            type: "email",
            concurrency: 1,
            rate: { max: 5, windowMs: 60_000 },
            running: 1,
            startsInWindow: 1
          }])
        const invalid = await rejection(client.setLimit({ type: "email", rate: { max: 5, windowMs: 0 } }))
        expect(invalid._tag).toBe("InvalidRequest")
        expect(invalid.message).toMatch(/window/)
        expect(await client.clearLimit("email")).toEqual([])
        expect((await client.claimJobs("w1", { max: 5 })).map((c) => c.job.payload)).toEqual([{ to: "d@e.f" }])
      }))
  }

  it.scopedLive("watch is an async iterable", () =>
    withFacade("ws", async (client) => {
      const seen: Array<string> = []
      // The broker's first event (its leader info) says the subscription is live.
      let subscribed!: () => void
      const live = new Promise<void>((resolve) => (subscribed = resolve))
      const watching = (async () => {
        for await (const event of client.watch()) {
          subscribed()
          if (event._tag === "Job") seen.push(event.event.kind)
          if (seen.length === 2) break
        }
      })()
      await live
      const job = await client.submitJob("w")
      await client.cancelJob(job.id)
      await watching
      expect(seen).toEqual(["enqueued", "cancelled"])
    }))

  it.scopedLive("watch over REST rejects with InvalidRequest", () =>
    withFacade("rest", async (client) => {
      const error = await rejection((async () => {
        for await (const _ of client.watch()) break
      })())
      expect(error._tag).toBe("InvalidRequest")
    }))

  it("needs a broker URL", () => {
    expect(() => new OsqueueClient({})).toThrow(/brokerUrl/)
  })
})
