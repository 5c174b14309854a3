import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, Layer, Option, TestClock } from "effect"
import * as FaultyStore from "../src/FaultyStore.js"
import * as MemoryStore from "../src/MemoryStore.js"
import { ObjectStore } from "../src/ObjectStore.js"
import { contractSuite } from "./contract.js"

contractSuite("faulty(memory), no faults", () => FaultyStore.layer().pipe(Layer.provide(MemoryStore.layer)))
contractSuite(
  "faulty(memory), latency only",
  () => FaultyStore.layer({ latencyMs: 1, jitterMs: 2, seed: 7 }).pipe(Layer.provide(MemoryStore.layer))
)

const bytes = (text: string) => new TextEncoder().encode(text)

/** A faulty store over a fresh memory store, plus direct access to the memory store underneath. */
const setup = (options: FaultyStore.FaultOptions) =>
  Effect.gen(function*() {
    const underlying = yield* MemoryStore.make
    const { control, store } = yield* FaultyStore.wrap(underlying, options)
    return { underlying, control, store }
  })

const outcomes = <A, E extends { readonly _tag: string }>(effects: ReadonlyArray<Effect.Effect<A, E>>) =>
  Effect.forEach(
    effects,
    (effect) => Effect.either(effect).pipe(Effect.map(Either.match({ onLeft: (e) => e._tag, onRight: () => "ok" })))
  )

const tally = (tags: ReadonlyArray<string>) =>
  tags.reduce<Record<string, number>>((acc, tag) => ({ ...acc, [tag]: (acc[tag] ?? 0) + 1 }), {})

describe("FaultyStore", () => {
  it.effect("reads fail at the configured rate, from a seeded generator", () =>
    Effect.gen(function*() {
      const run = Effect.gen(function*() {
        const { control, store } = yield* setup({ seed: 42, readFailureRate: 0.2 })
        const tags = yield* outcomes(
          Array.from({ length: 2000 }, (_, i) => (i % 2 === 0 ? store.get("k") : store.head("k")))
        )
        return { tags, counts: yield* control.counts }
      })
      const first = yield* run
      const failures = tally(first.tags)["StoreUnavailable"] ?? 0
      expect(failures / 2000).toBeGreaterThan(0.17)
      expect(failures / 2000).toBeLessThan(0.23)
      expect(first.counts).toMatchObject({ reads: 2000, readFailures: failures, writes: 0 })
      // Same seed, same run.
      expect((yield* run).tags).toEqual(first.tags)
    }))

  it.effect("write faults happen at their configured rates and are counted", () =>
    Effect.gen(function*() {
      const { control, store } = yield* setup({
        seed: 3,
        writeFailureRate: 0.1,
        ambiguousWriteRate: 0.1,
        lostWriteRate: 0.1
      })
      const tags = yield* outcomes(
        Array.from({ length: 3000 }, (_, i) => store.put(`k${i}`, bytes("x"), { ifAbsent: true }))
      )
      const counts = yield* control.counts
      const byTag = tally(tags)
      expect(counts.writes).toBe(3000)
      expect(byTag["StoreUnavailable"]).toBe(counts.writeFailures)
      expect(byTag["OutcomeUnknown"]).toBe(counts.ambiguousWrites + counts.lostWrites)
      for (const injected of [counts.writeFailures, counts.ambiguousWrites, counts.lostWrites]) {
        expect(injected / 3000).toBeGreaterThan(0.08)
        expect(injected / 3000).toBeLessThan(0.12)
      }
    }))

  it.effect("an ambiguous put lands, a lost put does not, a refused put does not", () =>
    Effect.gen(function*() {
      const { control, store, underlying } = yield* setup({ ambiguousWriteRate: 1 })
      const ambiguous = yield* store.put("ambiguous", bytes("landed"), { ifAbsent: true }).pipe(Effect.flip)
      expect(ambiguous._tag).toBe("OutcomeUnknown")
      const landed = yield* underlying.get("ambiguous").pipe(Effect.map(Option.getOrThrow))
      expect(new TextDecoder().decode(landed.bytes)).toBe("landed")

      yield* control.set({ lostWriteRate: 1 })
      const lost = yield* store.put("lost", bytes("never"), { ifAbsent: true }).pipe(Effect.flip)
      expect(lost._tag).toBe("OutcomeUnknown")
      expect(Option.isNone(yield* underlying.get("lost"))).toBe(true)
      // A lost CAS on an existing object leaves it at its old version.
      const lostUpdate = yield* store.put("ambiguous", bytes("changed"), { ifMatch: landed.version }).pipe(Effect.flip)
      expect(lostUpdate._tag).toBe("OutcomeUnknown")
      expect(Option.map(yield* underlying.head("ambiguous"), (h) => h.version)).toEqual(Option.some(landed.version))

      yield* control.set({ writeFailureRate: 1 })
      const refused = yield* store.put("refused", bytes("x"), { ifAbsent: true }).pipe(Effect.flip)
      expect(refused._tag).toBe("StoreUnavailable")
      expect(Option.isNone(yield* underlying.get("refused"))).toBe(true)

      // Deletes are writes too.
      yield* control.set({ lostWriteRate: 1 })
      expect((yield* store.delete("ambiguous").pipe(Effect.flip))._tag).toBe("OutcomeUnknown")
      expect(Option.isSome(yield* underlying.get("ambiguous"))).toBe(true)
      yield* control.set({ ambiguousWriteRate: 1 })
      expect((yield* store.delete("ambiguous").pipe(Effect.flip))._tag).toBe("OutcomeUnknown")
      expect(Option.isNone(yield* underlying.get("ambiguous"))).toBe(true)

      expect(yield* control.counts).toMatchObject({ ambiguousWrites: 2, lostWrites: 3, writeFailures: 1 })
    }))

  it.effect("faults can be switched off and on at run time through Control", () =>
    Effect.gen(function*() {
      const { control, store } = yield* setup({ readFailureRate: 1 })
      expect((yield* store.get("k").pipe(Effect.flip))._tag).toBe("StoreUnavailable")
      yield* control.set({})
      expect(Option.isNone(yield* store.get("k"))).toBe(true)
      yield* control.update({ writeFailureRate: 1 })
      expect(yield* control.options).toEqual({ writeFailureRate: 1 })
      expect(Option.isNone(yield* store.get("k"))).toBe(true)
      expect((yield* store.put("k", bytes("x"), { ifAbsent: true }).pipe(Effect.flip))._tag).toBe("StoreUnavailable")
      yield* control.resetCounts
      expect(yield* control.counts).toEqual({
        reads: 0,
        writes: 0,
        readFailures: 0,
        writeFailures: 0,
        ambiguousWrites: 0,
        lostWrites: 0,
        spikes: 0
      })
    }))

  it.effect("latency goes through Effect.sleep, so the TestClock drives it", () =>
    Effect.gen(function*() {
      const { store } = yield* setup({ latencyMs: 1000, jitterMs: 500, seed: 9 })
      const fiber = yield* Effect.fork(store.get("k"))
      yield* TestClock.adjust("999 millis")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("501 millis")
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isSuccess(exit)).toBe(true)
    }))

  it.effect("latency spikes: a share of calls stall for spikeMs more", () =>
    Effect.gen(function*() {
      const { control, store } = yield* setup({ seed: 3, spikeRate: 0.1, spikeMs: 5000 })
      const fibers = yield* Effect.forEach(Array.from({ length: 1000 }), () => Effect.fork(store.head("k")))
      yield* TestClock.adjust("1 millis")
      const quick = (yield* Effect.forEach(fibers, Fiber.poll)).filter(Option.isSome).length
      const { spikes } = yield* control.counts
      expect(spikes).toBeGreaterThan(70)
      expect(spikes).toBeLessThan(130)
      expect(quick).toBe(1000 - spikes)
      yield* TestClock.adjust("5000 millis")
      expect((yield* Effect.forEach(fibers, Fiber.poll)).every(Option.isSome)).toBe(true)
    }))

  it.effect("the layer provides the decorated store and its Control", () =>
    Effect.gen(function*() {
      const store = yield* ObjectStore
      const control = yield* FaultyStore.Control
      yield* control.set({ lostWriteRate: 1 })
      expect((yield* store.put("k", bytes("x"), { ifAbsent: true }).pipe(Effect.flip))._tag).toBe("OutcomeUnknown")
      yield* control.set({})
      yield* store.put("k", bytes("x"), { ifAbsent: true })
      expect(store.backend).toBe("memory")
      expect((yield* control.counts).lostWrites).toBe(1)
    }).pipe(Effect.provide(FaultyStore.layer({ seed: 1 }).pipe(Layer.provide(MemoryStore.layer)))))

  it.effect("invalid options are a defect", () =>
    Effect.gen(function*() {
      const underlying = yield* MemoryStore.make
      const exit = yield* Effect.exit(FaultyStore.wrap(underlying, { ambiguousWriteRate: 0.6, lostWriteRate: 0.6 }))
      expect(Exit.isFailure(exit) && !Exit.isInterrupted(exit)).toBe(true)
      const { control } = yield* FaultyStore.wrap(underlying, {})
      expect(Exit.isFailure(yield* Effect.exit(control.set({ readFailureRate: 2 })))).toBe(true)
    }))
})
