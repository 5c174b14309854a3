/**
 * An `ObjectStore` in one process's memory: for tests, demos and single-process runs that need
 * no durability. Conditional writes are atomic because every operation completes inside one
 * synchronous step of the JavaScript event loop.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import {
  type Body,
  type Metadata,
  ObjectStore,
  type ObjectStoreShape,
  PreconditionFailed,
  type StoredObject,
  type WriteCondition
} from "./ObjectStore.js"

interface Entry {
  readonly bytes: Uint8Array
  readonly version: string
  readonly metadata: Metadata
}

const expectedOf = (condition: WriteCondition): string => "ifMatch" in condition ? condition.ifMatch : "absent"

/**
 * Builds a fresh, empty store. Everything that uses the returned value shares one map, so a
 * test can hand the same instance to two "engines" (e.g. two brokers racing for leadership):
 *
 * ```ts
 * const store = yield* MemoryStore.make
 * const shared = Layer.succeed(ObjectStore, store)
 * ```
 */
export const make: Effect.Effect<ObjectStoreShape> = Effect.sync(() => {
  const objects = new Map<string, Entry>()
  // One counter for the whole store: a version is never reused, not even after a delete and a
  // re-create of the same key, so a stale `ifMatch` can never match a newer object (no ABA).
  let counter = 0
  const nextVersion = () => `m${++counter}`

  // Callers may reuse or mutate their buffers; the store keeps and hands out its own copies,
  // like a real object store would.
  const copy = (bytes: Uint8Array) => Uint8Array.from(bytes)
  const copyBody = (body: Body): Uint8Array => (body instanceof Uint8Array ? copy(body) : Buffer.concat(body))

  const conditionHolds = (key: string, condition: WriteCondition): boolean => {
    const current = objects.get(key)
    return "ifMatch" in condition ? current?.version === condition.ifMatch : current === undefined
  }

  const store: ObjectStoreShape = {
    backend: "memory",
    minWriteInterval: Duration.zero,
    get: (key) =>
      Effect.sync(() => {
        const entry = objects.get(key)
        return entry === undefined
          ? Option.none<StoredObject>()
          : Option.some({ bytes: copy(entry.bytes), version: entry.version, metadata: entry.metadata })
      }),
    head: (key) =>
      Effect.sync(() => {
        const entry = objects.get(key)
        return entry === undefined
          ? Option.none()
          : Option.some({ version: entry.version, metadata: entry.metadata })
      }),
    put: (key, bytes, condition, options) =>
      Effect.suspend(() => {
        if (!conditionHolds(key, condition)) {
          return Effect.fail(new PreconditionFailed({ key, expected: expectedOf(condition) }))
        }
        const version = nextVersion()
        objects.set(key, { bytes: copyBody(bytes), version, metadata: { ...options?.metadata } })
        return Effect.succeed(version)
      }),
    delete: (key, ifMatch) =>
      Effect.suspend(() => {
        if (ifMatch !== undefined && objects.get(key)?.version !== ifMatch) {
          return Effect.fail(new PreconditionFailed({ key, expected: ifMatch }))
        }
        objects.delete(key)
        return Effect.void
      }),
    list: (prefix) => Effect.sync(() => Array.from(objects.keys()).filter((key) => key.startsWith(prefix)).sort())
  }
  return store
})

/**
 * A layer with one empty store per build. Effect memoizes a layer value within one `provide`:
 * every service built from the same `Effect.provide(program, appLayer)` shares one store, but
 * two separate `Effect.provide(..., MemoryStore.layer)` calls build two independent stores.
 * To share one store between two separately provided programs, build it once with `make`.
 */
export const layer: Layer.Layer<ObjectStore> = Layer.effect(ObjectStore, make)
