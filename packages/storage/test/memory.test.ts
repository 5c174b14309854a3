import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as MemoryStore from "../src/MemoryStore.js"
import { ObjectStore } from "../src/ObjectStore.js"
import { contractSuite } from "./contract.js"

contractSuite("memory", () => MemoryStore.layer)

describe("MemoryStore", () => {
  it.effect("make builds an instance that two separately provided programs share", () =>
    Effect.gen(function*() {
      const shared = Layer.succeed(ObjectStore, yield* MemoryStore.make)
      const write = ObjectStore.pipe(Effect.flatMap((s) => s.put("k", new Uint8Array([1]), { ifAbsent: true })))
      const read = ObjectStore.pipe(Effect.flatMap((s) => s.get("k")))
      const version = yield* write.pipe(Effect.provide(shared))
      const seen = yield* read.pipe(Effect.provide(shared))
      expect(Option.map(seen, (o) => o.version)).toEqual(Option.some(version))
    }))

  it.effect("two provides of MemoryStore.layer build two independent stores", () =>
    Effect.gen(function*() {
      const write = ObjectStore.pipe(Effect.flatMap((s) => s.put("k", new Uint8Array([1]), { ifAbsent: true })))
      const read = ObjectStore.pipe(Effect.flatMap((s) => s.get("k")))
      yield* write.pipe(Effect.provide(MemoryStore.layer))
      expect(Option.isNone(yield* read.pipe(Effect.provide(MemoryStore.layer)))).toBe(true)
    }))

  it.effect("every write gets a new version, even of identical bytes", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const v1 = yield* store.put("k", new Uint8Array([1]), { ifAbsent: true })
      const v2 = yield* store.put("k", new Uint8Array([1]), { ifMatch: v1 })
      expect(v2).not.toBe(v1)
      expect((yield* store.put("k", new Uint8Array([1]), { ifMatch: v1 }).pipe(Effect.flip))._tag).toBe(
        "PreconditionFailed"
      )
    }))

  it.effect("a version is never reused, even after delete and re-create", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const v1 = yield* store.put("k", new Uint8Array([1]), { ifAbsent: true })
      yield* store.delete("k")
      const v2 = yield* store.put("k", new Uint8Array([1]), { ifAbsent: true })
      expect(v2).not.toBe(v1)
      const stale = yield* store.put("k", new Uint8Array([2]), { ifMatch: v1 }).pipe(Effect.flip)
      expect(stale._tag).toBe("PreconditionFailed")
    }))
})
