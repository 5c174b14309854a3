/**
 * How the commit loop forms its batches on a slow store (docs/architecture.md, "Appends in
 * flight"): a batch waits for the callers the loop answered since its last write, for at most
 * a quarter of the store's recent answer time, so callers that come back one after another share one
 * write instead of one write each for the first few. A store below the engine takes 40 ms of
 * TestClock time for every log write once the broker leads, and records when each was made and
 * what it held.
 */
import { describe, expect, it } from "@effect/vitest"
import { LogEntry } from "@osqueue/core"
import { bodyBytes, MemoryStore, type ObjectStoreShape } from "@osqueue/storage"
import { Chunk, Clock, Duration, Effect, Either, Exit, Fiber, Option, Queue, Scope } from "effect"
import { advance, type StartedEngine, startEngine } from "./fixtures/engine.js"

const writeMs = 40

/** A log write: when the broker made it (TestClock, ms) and how many jobs it put. */
interface Write {
  readonly at: number
  readonly jobs: number
}

const slow = (memory: ObjectStoreShape) =>
  Effect.gen(function*() {
    const writes = yield* Queue.unbounded<Write>()
    let slowed = false
    const store: ObjectStoreShape = {
      ...memory,
      put: (key, body, condition, options) =>
        !slowed || LogEntry.positionOf(key) === undefined
          ? memory.put(key, body, condition, options)
          : Effect.gen(function*() {
            const entry = Either.getOrThrow(LogEntry.decode(key, bodyBytes(body)))
            yield* Queue.offer(writes, { at: yield* Clock.currentTimeMillis, jobs: LogEntry.putJobs(entry).length })
            yield* Effect.sleep(Duration.millis(writeMs))
            return yield* memory.put(key, body, condition, options)
          })
    }
    return { store, writes, slowDown: Effect.sync(() => void (slowed = true)) }
  })

const enqueue = (engine: StartedEngine, type: string) =>
  engine.commit.submit({ _tag: "Enqueue", jobs: [{ type }] }).pipe(Effect.fork)

/** Lets the store's write finish and every fiber waiting on it go on. */
const land = Effect.gen(function*() {
  yield* advance(writeMs)
  for (let i = 0; i < 5; i++) yield* advance(0)
})

describe("commit batching", () => {
  it.scoped("callers that come back one by one share one write; none waits more than a quarter of a write for the others", () =>
    Effect.gen(function*() {
      const { slowDown, store, writes } = yield* slow(yield* MemoryStore.make)
      const engine = yield* startEngine(store, "http://a:8080")
      yield* advance(0)
      expect((yield* engine.election.role)._tag).toBe("Leader")
      yield* slowDown

      // One caller alone goes at once (nothing answered is on its way back), and teaches the loop a write takes 40 ms.
      const lone = yield* enqueue(engine, "lone")
      const loneWrite = yield* Queue.take(writes)
      expect(loneWrite.jobs).toBe(1)
      yield* land
      yield* Fiber.join(lone)
      const again = yield* enqueue(engine, "again")
      const t0 = yield* Clock.currentTimeMillis
      expect((yield* Queue.take(writes)).at).toBe(t0)
      yield* land
      yield* Fiber.join(again)

      // Eight callers at once: one write, eight callers answered.
      const eight = yield* Effect.forEach(Array.from({ length: 8 }, (_, i) => `first-${i}`), (t) => enqueue(engine, t))
      expect((yield* Queue.take(writes)).jobs).toBe(8)
      yield* land
      yield* Fiber.joinAll(eight)

      // They come back one per ms. Sent at the first arrival, as before, the first would go alone
      // and the second behind it: here all eight wait for one another (7 ms < a quarter of a write) and go together.
      const back = yield* Clock.currentTimeMillis
      const returning: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
      for (let i = 0; i < 8; i++) {
        returning.push(yield* enqueue(engine, `back-${i}`))
        if (i < 7) yield* advance(1)
      }
      const together = yield* Queue.take(writes)
      expect(together).toEqual({ at: back + 7, jobs: 8 })
      yield* land
      yield* Fiber.joinAll(returning)
      expect(yield* Queue.size(writes)).toBe(0)

      // Three of the eight come back and the rest never do: they wait a quarter of a write (10 ms), no more.
      const few = yield* Clock.currentTimeMillis
      const three = yield* Effect.forEach(["x", "y", "z"], (t) => enqueue(engine, t))
      for (let i = 0; i < 9; i++) yield* advance(1)
      expect(yield* Queue.size(writes)).toBe(0)
      yield* advance(1)
      expect(yield* Queue.take(writes)).toEqual({ at: few + writeMs / 4, jobs: 3 })
      yield* land
      yield* Fiber.joinAll(three)
      expect(yield* engine.commit.read((s) => s.list({ limit: 100 }).jobs.length)).toBe(21)
    }))

  it.scoped("a worker's claim that comes back held is company that came: its round goes without waiting out the wait", () =>
    Effect.gen(function*() {
      const { slowDown, store, writes } = yield* slow(yield* MemoryStore.make)
      const engine = yield* startEngine(store, "http://a:8080")
      yield* advance(0)
      yield* slowDown
      yield* enqueue(engine, "lone")
      yield* Queue.take(writes)
      yield* land
      const claimNext = engine.commit.claimWaiting({ _tag: "Claim", workerId: "w", max: 1, types: ["work"] }, 60_000)

      // A worker's long poll is held; seven producers' jobs go in one write, one of them the
      // worker's: the claim joins that batch, so eight callers are answered.
      const held = yield* Effect.fork(claimNext)
      yield* advance(0)
      const first = yield* Effect.forEach(
        ["work", ...Array.from({ length: 6 }, (_, i) => `p-${i}`)],
        (t) => enqueue(engine, t)
      )
      expect((yield* Queue.take(writes)).jobs).toBe(7)
      yield* land
      yield* Fiber.joinAll(first)
      expect((yield* Fiber.join(held)).map(({ job }) => job.type)).toEqual(["work"])

      // All eight come back: the worker's claim first, held (nothing of its type is queued), then
      // the producers one per ms. The seventh completes the round: the write goes with it, not
      // at the end of the wait for company (a quarter of a write, 10 ms, after the first).
      const waiting = yield* Effect.fork(claimNext)
      yield* advance(0)
      const back = yield* Clock.currentTimeMillis
      const returning: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
      for (let i = 0; i < 7; i++) {
        returning.push(yield* enqueue(engine, `again-${i}`))
        if (i < 6) yield* advance(1)
      }
      yield* advance(0)
      expect(Option.getOrUndefined(yield* Queue.poll(writes))).toEqual({ at: back + 6, jobs: 7 })
      yield* land
      yield* Fiber.joinAll(returning)
      yield* Fiber.interrupt(waiting)
    }))
})

describe("commit batching on the live clock", () => {
  it.live("a batch waiting for callers that never come back goes once its wait is over", () =>
    Effect.gen(function*() {
      const { slowDown, store, writes } = yield* slow(yield* MemoryStore.make)
      const engine = yield* startEngine(store, "http://a:8080")
      while ((yield* engine.election.role)._tag !== "Leader") yield* Effect.sleep(Duration.millis(5))
      yield* slowDown
      const enqueueAll = (types: ReadonlyArray<string>) =>
        Effect.forEach(types, (type) => engine.commit.submit({ _tag: "Enqueue", jobs: [{ type }] }), {
          concurrency: "unbounded"
        })

      // A write teaches the loop how long one takes; eight callers answered at once are on their way back.
      yield* enqueueAll(["lone"])
      yield* enqueueAll(Array.from({ length: 8 }, (_, i) => `first-${i}`))
      // Three come back and the rest never do: the three wait for them up to a quarter of a write, then go.
      const sent = yield* Clock.currentTimeMillis
      yield* enqueueAll(["x", "y", "z"]).pipe(
        Effect.timeoutFail({ duration: Duration.seconds(5), onTimeout: () => new Error("the batch never went") })
      )
      const last = Chunk.unsafeLast(yield* Queue.takeAll(writes))
      expect(last.jobs).toBe(3)
      expect(last.at - sent).toBeGreaterThanOrEqual(writeMs / 4 - 2)
      yield* Scope.close(engine.scope, Exit.void)
    }))
})
