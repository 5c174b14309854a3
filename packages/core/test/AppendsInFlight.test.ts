/**
 * Two appends in flight (docs/architecture.md, "Appends in flight"): the leader sends the next
 * batch while one is being written. A store below the engine holds each log write until the
 * test decides it (lands, or is refused without landing), so every interleaving the design
 * names is played on purpose: in order, out of order, the first refused while the second
 * lands, a refused one that lands late after all, a takeover while both are in flight, and a
 * reader that asks for the state meanwhile. Each ends with what the store holds (checkpoint +
 * log, read as a fresh broker would) equal to what the leader holds.
 */
import { describe, expect, it } from "@effect/vitest"
import { LogEntry } from "@osqueue/core"
import { bodyBytes, MemoryStore, type ObjectStoreShape, StoreUnavailable } from "@osqueue/storage"
import type { Job, OsqueueError } from "@osqueue/types"
import { Deferred, Effect, Either, Exit, Fiber, Option, Queue } from "effect"
import { durable } from "./fixtures/durable.js"
import { advance, type StartedEngine, startEngine } from "./fixtures/engine.js"

/** A log write the store holds until the test decides it. */
interface Held {
  readonly position: number
  readonly entry: LogEntry.LogEntry
  /** Writes it and answers the broker. */
  readonly land: Effect.Effect<void>
  /** Answers the broker StoreUnavailable without writing it. */
  readonly refuse: Effect.Effect<void>
  /** Writes it now, answering no one (a refused write that landed after all). */
  readonly landLate: Effect.Effect<void>
}

const gated = (memory: ObjectStoreShape) =>
  Effect.gen(function*() {
    let holding = 0
    const held = yield* Queue.unbounded<Held>()
    const store: ObjectStoreShape = {
      ...memory,
      put: (key, body, condition, options) => {
        const position = LogEntry.positionOf(key)
        if (position === undefined || holding === 0) return memory.put(key, body, condition, options)
        holding--
        return Effect.gen(function*() {
          const decided = yield* Deferred.make<boolean>()
          const write = memory.put(key, body, condition, options)
          yield* Queue.offer(held, {
            position,
            entry: Either.getOrThrow(LogEntry.decode(key, bodyBytes(body))),
            land: Deferred.succeed(decided, true),
            refuse: Deferred.succeed(decided, false),
            landLate: Effect.ignore(write)
          })
          return (yield* Deferred.await(decided))
            ? yield* write
            : yield* new StoreUnavailable({ operation: "put", key, cause: "refused by the test" })
        })
      }
    }
    return {
      store,
      /** Holds the next `n` log writes. */
      hold: (n: number) => Effect.sync(() => void (holding += n)),
      /** The next held write, once the broker has sent it. */
      next: Effect.zipLeft(Queue.take(held), advance(0))
    }
  })

const enqueue = (engine: StartedEngine, type: string) =>
  engine.commit.submit({ _tag: "Enqueue", jobs: [{ type }] }).pipe(
    Effect.map((jobs) => jobs[0]!),
    Effect.exit,
    Effect.fork
  )

const answered = <A>(fiber: Fiber.RuntimeFiber<Exit.Exit<A, OsqueueError>>) =>
  Effect.map(fiber.poll, Option.map(Exit.flatten))

const ok = <A>(fiber: Fiber.RuntimeFiber<Exit.Exit<A, OsqueueError>>) =>
  Effect.flatMap(Fiber.join(fiber), (exit) => exit)

/** The jobs' types, as the leader holds them and as the store holds them: they must agree. */
const types = (engine: StartedEngine, store: ObjectStoreShape) =>
  Effect.gen(function*() {
    const held = yield* engine.commit.read((s) => s.list({ limit: 100 }).jobs.map((j: Job) => j.type).sort())
    const stored = Option.getOrThrow(yield* durable(store)).file.jobs.map((j) => j.type).sort()
    expect(stored).toEqual(held)
    return held
  })

const leader = Effect.gen(function*() {
  const gate = yield* gated(yield* MemoryStore.make)
  const a = yield* startEngine(gate.store, "http://a:8080")
  yield* advance(0)
  expect((yield* a.election.role)._tag).toBe("Leader")
  return { gate, a }
})

/** Two enqueues, "first" and "second", each held in flight by the store. */
const twoInFlight = (a: StartedEngine, gate: Effect.Effect.Success<ReturnType<typeof gated>>) =>
  Effect.gen(function*() {
    yield* gate.hold(2)
    const first = yield* enqueue(a, "first")
    const one = yield* gate.next
    const second = yield* enqueue(a, "second")
    const two = yield* gate.next
    return { first, one, second, two }
  })

/** The first append refused, the one behind it landed: both answered `CommitFailed`. */
const firstRefusedSecondLanded = Effect.gen(function*() {
  const { a, gate } = yield* leader
  const { first, one, second, two } = yield* twoInFlight(a, gate)
  yield* two.land
  yield* one.refuse
  yield* advance(0)
  expect((yield* Effect.flip(ok(first)))._tag).toBe("CommitFailed")
  expect((yield* Effect.flip(ok(second)))._tag).toBe("CommitFailed")
  return { a, gate, one }
})

describe("appends in flight", () => {
  it.scoped("a batch arriving while one is written goes out behind it; each is answered once it and the one before landed", () =>
    Effect.gen(function*() {
      const { a, gate } = yield* leader
      const { first, one, second, two } = yield* twoInFlight(a, gate)
      expect(two.position).toBe(one.position + 1)
      // the second lands first: it waits for the first
      yield* two.land
      yield* advance(0)
      expect(Option.isNone(yield* answered(second))).toBe(true)
      yield* one.land
      yield* advance(0)
      expect((yield* ok(first)).type).toBe("first")
      expect((yield* ok(second)).type).toBe("second")
      expect(yield* types(a, gate.store)).toEqual(["first", "second"])
    }))

  it.scoped("a refused append voids the one sent behind it, which landed; the next entry skips it", () =>
    Effect.gen(function*() {
      const { a, gate, one } = yield* firstRefusedSecondLanded
      // the next entry takes the refused one's position and skips the orphan behind it
      yield* gate.hold(1)
      const third = yield* enqueue(a, "third")
      const three = yield* gate.next
      expect(three.position).toBe(one.position)
      expect(three.entry.skip).toBe(1)
      yield* three.land
      yield* advance(0)
      expect((yield* ok(third)).type).toBe("third")
      expect(yield* types(a, gate.store)).toEqual(["third"])
      // and the log goes on past the skipped position
      const fourth = yield* enqueue(a, "fourth")
      yield* advance(0)
      expect((yield* ok(fourth)).type).toBe("fourth")
      expect(yield* a.commit.read((s) => s.seq)).toBe(one.position + 2)
      expect(yield* types(a, gate.store)).toEqual(["fourth", "third"])
    }))

  it.scoped("a refused append that landed after all is found where the next one goes, with the one behind it: both are kept", () =>
    Effect.gen(function*() {
      const { a, gate, one } = yield* firstRefusedSecondLanded
      // the refused write lands after all (an answer lost on the way)
      yield* one.landLate
      const third = yield* enqueue(a, "third")
      yield* advance(0)
      yield* advance(0)
      // its position and the next were taken by our own entries: replayed, then the batch applied on top
      expect((yield* ok(third)).type).toBe("third")
      expect(yield* types(a, gate.store)).toEqual(["first", "second", "third"])
    }))

  it.scoped("a takeover while two appends are in flight: the first is refused, the second is skipped, neither is acknowledged", () =>
    Effect.gen(function*() {
      const { a, gate } = yield* leader
      const b = yield* startEngine(gate.store, "http://b:8080")
      yield* advance(0)
      const { first, one, second, two } = yield* twoInFlight(a, gate)
      // a goes silent with both in flight; b takes over at the first one's position
      yield* a.election.abdicate
      for (let i = 0; i < 10; i++) yield* advance(600)
      expect((yield* b.election.role)._tag).toBe("Leader")
      const taken = Option.getOrThrow(yield* gate.store.get(LogEntry.logKey(one.position)))
      expect(Either.getOrThrow(LogEntry.decode(LogEntry.logKey(one.position), taken.bytes))).toMatchObject({
        kind: "epoch",
        skip: 1
      })
      // then both writes arrive: the first finds b's takeover there; the second lands where b's entry skips
      yield* two.land
      yield* one.land
      yield* advance(0)
      expect((yield* Effect.flip(ok(first)))._tag).toBe("NotLeader")
      expect((yield* Effect.flip(ok(second)))._tag).toBe("NotLeader")
      // a does not take the queue back: it learnt of b's takeover from its own refused append
      for (let i = 0; i < 10; i++) yield* advance(600)
      expect((yield* a.election.role)._tag).toBe("Follower")
      const after = yield* b.commit.submit({ _tag: "Enqueue", jobs: [{ type: "after" }] }).pipe(Effect.fork)
      yield* advance(0)
      expect((yield* Fiber.join(after))[0]!.type).toBe("after")
      expect(yield* types(b, gate.store)).toEqual(["after"])
    }))

  it.scoped("a reader waits for a moment with nothing in flight, and nothing is sent behind while it waits", () =>
    Effect.gen(function*() {
      const { a, gate } = yield* leader
      yield* gate.hold(2)
      const first = yield* enqueue(a, "first")
      const one = yield* gate.next
      // the counts stay the durable ones while the batch is in flight
      expect(yield* a.commit.stats.pipe(Effect.map((s) => s.counts.queued))).toBe(0)
      const reading = yield* a.commit.read((s) => s.list({ limit: 10 }).jobs.map((j) => j.type)).pipe(Effect.fork)
      const second = yield* enqueue(a, "second")
      yield* advance(0)
      expect(Option.isNone(yield* answered(second))).toBe(true)
      yield* one.land
      yield* advance(0)
      // the reader saw the first batch durable, and not the second
      expect(yield* Fiber.join(reading)).toEqual(["first"])
      expect((yield* ok(first)).type).toBe("first")
      const two = yield* gate.next
      yield* two.land
      yield* advance(0)
      expect((yield* ok(second)).type).toBe("second")
      expect(yield* a.commit.stats.pipe(Effect.map((s) => s.counts.queued))).toBe(2)
    }))
})
