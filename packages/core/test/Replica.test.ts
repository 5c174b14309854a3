/**
 * The replica's own guard on what it writes (docs/ha.md, "The log and the fence"): only the broker
 * the state names as its leader appends entries of its epoch, whatever its caller believes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cas, EngineConfig, Log, LogEntry, Replica } from "@osqueue/core"
import { MemoryStore, ObjectStore, type ObjectStoreShape } from "@osqueue/storage"
import { Context, Effect, Either, Layer } from "effect"
import { advance, startEngine } from "./fixtures/engine.js"

const replicaOver = (store: ObjectStoreShape) =>
  Layer.build(
    Replica.layer.pipe(
      Layer.provide(Layer.merge(Cas.layer(), Log.layer)),
      Layer.provide(Layer.succeed(ObjectStore, store)),
      Layer.provide(EngineConfig.layer({ advertisedUrl: "http://a:8080" }))
    )
  ).pipe(Effect.map((context) => Context.get(context, Replica.Replica)))

const logKeys = (store: ObjectStoreShape) =>
  Effect.map(store.list(LogEntry.logPrefix), (keys) => keys.filter((key) => LogEntry.positionOf(key) !== undefined))

describe("replica", () => {
  it.scoped("an append is refused, and nothing applied or written, unless the state names this broker as its leader", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const b = yield* startEngine(store, "http://b:8080")
      yield* advance(0)
      expect((yield* b.election.role)._tag).toBe("Leader")
      const replica = yield* replicaOver(store)
      const before = yield* logKeys(store)
      const seq = replica.current().seq

      const refused = yield* replica.append(
        "a:8080#someone",
        "batch",
        (state) => state.apply({ _tag: "Enqueue", jobs: [{ type: "t" }] }, 0, () => "secret")
      ).pipe(Effect.flip)
      expect(refused).toMatchObject({ _tag: "Deposed", leader: { url: "http://b:8080" } })
      expect(replica.current().seq).toBe(seq)
      expect(replica.current().stats().counts.queued).toBe(0)
      expect(yield* logKeys(store)).toEqual(before)

      // The leader it names goes on as before.
      const applied = yield* replica.append(
        b.election.id,
        "batch",
        (state) => state.apply({ _tag: "Enqueue", jobs: [{ type: "t" }] }, 0, () => "secret")
      )
      expect(Either.isRight(applied.result)).toBe(true)
      expect(yield* logKeys(store)).toHaveLength(before.length + 1)
    }))
})
