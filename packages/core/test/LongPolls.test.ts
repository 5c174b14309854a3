/**
 * Long-poll claims held by the commit loop (`GroupCommit.claimWaiting`, docs/architecture.md
 * "Long-poll claims"), over a real in-memory store with TestClock: a held claim costs no commit,
 * is answered by the very commit that made a job claimable for it, wakes when a delayed job
 * comes due, answers `[]` at its deadline and `NotLeader` at a handoff, and is dropped when its caller goes.
 */
import { describe, expect, it } from "@effect/vitest"
import { MemoryStore } from "@osqueue/storage"
import type { EnqueueOptions } from "@osqueue/types"
import { Effect, Fiber, Option } from "effect"
import { advance, settle, startEngine, startLeaderAndFollower } from "./fixtures/engine.js"

const job = (type: string, extra: Partial<EnqueueOptions> = {}): EnqueueOptions =>
  ({ type, ...extra }) as EnqueueOptions

const leader = Effect.gen(function*() {
  const store = yield* MemoryStore.make
  const engine = yield* startEngine(store, "http://a:8080")
  yield* advance(0)
  return engine
})

const seq = (engine: Effect.Effect.Success<typeof leader>) => engine.commit.read((state) => state.seq)

describe("long-poll claims", () => {
  it.scoped("a held claim costs no commit, and is answered by the commit that enqueues its job", () =>
    Effect.gen(function*() {
      const engine = yield* leader
      const before = yield* seq(engine)
      const waiting = yield* Effect.fork(
        engine.commit.claimWaiting({ _tag: "Claim", workerId: "w", max: 1, types: ["email"] }, 30_000)
      )
      yield* advance(100)
      // held: nothing was committed for it, and it is not answered
      expect(yield* seq(engine)).toBe(before)
      expect(Option.isNone(yield* waiting.poll)).toBe(true)
      // a job of another type does not take it
      yield* settle(engine.commit.submit({ _tag: "Enqueue", jobs: [job("sms")] }))
      expect(Option.isNone(yield* waiting.poll)).toBe(true)
      const [created] = yield* settle(engine.commit.submit({ _tag: "Enqueue", jobs: [job("email")] }))
      const enqueuedAt = yield* seq(engine)
      const [claimed] = yield* Fiber.join(waiting)
      expect(claimed!.job.id).toBe(created!.id)
      // in the very commit that enqueued it: no commit after the enqueue's
      expect(yield* seq(engine)).toBe(enqueuedAt)
      expect((yield* engine.commit.read((state) => state.get(created!.id)))?.state).toBe("running")
    }))

  it.scoped("a claim for a job already there goes in the next batch, without waiting", () =>
    Effect.gen(function*() {
      const engine = yield* leader
      const [created] = yield* settle(engine.commit.submit({ _tag: "Enqueue", jobs: [job("t")] }))
      const [claimed] = yield* settle(engine.commit.claimWaiting({ _tag: "Claim", workerId: "w", max: 1 }, 30_000))
      expect(claimed!.job.id).toBe(created!.id)
    }))

  it.scoped("a held claim answers [] at its deadline, and wakes when a delayed job comes due", () =>
    Effect.gen(function*() {
      const engine = yield* leader
      const empty = yield* Effect.fork(engine.commit.claimWaiting({ _tag: "Claim", workerId: "w", max: 1 }, 500))
      yield* advance(499)
      expect(Option.isNone(yield* empty.poll)).toBe(true)
      yield* advance(1)
      expect(yield* Fiber.join(empty)).toEqual([])

      const [later] = yield* settle(engine.commit.submit({ _tag: "Enqueue", jobs: [job("t", { delayMs: 200 })] }))
      const waiting = yield* Effect.fork(engine.commit.claimWaiting({ _tag: "Claim", workerId: "w", max: 1 }, 5_000))
      yield* advance(100)
      expect(Option.isNone(yield* waiting.poll)).toBe(true)
      yield* advance(100)
      yield* advance(0)
      const [claimed] = yield* Fiber.join(waiting)
      expect(claimed!.job.id).toBe(later!.id)
    }))

  it.scoped("a caller that goes is dropped: its claim takes no job", () =>
    Effect.gen(function*() {
      const engine = yield* leader
      const waiting = yield* Effect.fork(engine.commit.claimWaiting({ _tag: "Claim", workerId: "w", max: 1 }, 30_000))
      yield* advance(10)
      yield* Fiber.interrupt(waiting)
      const [created] = yield* settle(engine.commit.submit({ _tag: "Enqueue", jobs: [job("t")] }))
      yield* advance(10)
      expect((yield* engine.commit.read((state) => state.get(created!.id)))?.state).toBe("queued")
    }))

  it.scoped("a handoff answers held claims NotLeader at once; a follower refuses a long poll with NotLeader at once", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const [a, b] = yield* startLeaderAndFollower(store)
      const refused = yield* Effect.flip(b.commit.claimWaiting({ _tag: "Claim", workerId: "w", max: 1 }, 30_000))
      expect(refused._tag).toBe("NotLeader")
      const waiting = yield* Effect.fork(a.commit.claimWaiting({ _tag: "Claim", workerId: "w", max: 1 }, 30_000))
      yield* advance(10)
      yield* settle(a.commit.handoff)
      expect((yield* Effect.flip(Fiber.join(waiting)))._tag).toBe("NotLeader")
    }))
})
