/**
 * The behaviour every ObjectStore layer must have, whatever the backend. Run it from a
 * `*.test.ts` file: `contractSuite("memory", () => MemoryStore.layer)`.
 *
 * Each test writes under its own random prefix, so the suite can run against a shared, long-lived
 * server (S3, GCS) without cleanup and without tests seeing each other's objects.
 */
import { describe, expect, it as globalIt, layer } from "@effect/vitest"
import { Effect, Either, Layer, Option } from "effect"
import { randomUUID } from "node:crypto"
import { ObjectStore } from "../src/ObjectStore.js"

const encode = (text: string) => new TextEncoder().encode(text)
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

/** A fresh prefix per test: the suite must not depend on an empty store. */
const freshPrefix = () => `contract/${randomUUID()}/`

const tagOf = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>) =>
  effect.pipe(
    Effect.flip,
    Effect.map((e) => e._tag)
  )

export const contractSuite = (name: string, makeLayer: () => Layer.Layer<ObjectStore, unknown, never>): void => {
  describe(`ObjectStore contract: ${name}`, () => {
    // @effect/vitest 0.30's layer() installs its test methods on the global `it` object and
    // leaves them there, so every later `it.effect` in the same file would silently run on this
    // suite's layer without the TestClock. Put the originals back once the tests are registered.
    const { effect, flakyTest, layer: nestedLayer, prop, scoped } = globalIt
    try {
      suite(makeLayer)
    } finally {
      Object.assign(globalIt, { effect, flakyTest, layer: nestedLayer, prop, scoped })
    }
  })
}

const suite = (makeLayer: () => Layer.Layer<ObjectStore, unknown, never>) =>
  // Real I/O: the TestClock would freeze any backend that sleeps (retries, rate limits).
  layer(makeLayer(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("get and head of a missing key are None", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${freshPrefix()}missing`
        expect(Option.isNone(yield* store.get(key))).toBe(true)
        expect(Option.isNone(yield* store.head(key))).toBe(true)
      }))

    it.effect("create-only (ifAbsent) succeeds once, then PreconditionFailed", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${freshPrefix()}create-once`
        const version = yield* store.put(key, encode("first"), { ifAbsent: true })
        expect(version.length).toBeGreaterThan(0)
        expect(yield* tagOf(store.put(key, encode("second"), { ifAbsent: true }))).toBe("PreconditionFailed")
        const stored = yield* store.get(key).pipe(Effect.map(Option.getOrThrow))
        expect(decode(stored.bytes)).toBe("first")
        expect(stored.version).toBe(version)
      }))

    it.effect("CAS with the current version succeeds and returns a new version", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${freshPrefix()}cas`
        const v1 = yield* store.put(key, encode("one"), { ifAbsent: true })
        const v2 = yield* store.put(key, encode("two"), { ifMatch: v1 })
        expect(v2).not.toBe(v1)
        const stored = yield* store.get(key).pipe(Effect.map(Option.getOrThrow))
        expect(decode(stored.bytes)).toBe("two")
        expect(stored.version).toBe(v2)
      }))

    it.effect("CAS with a stale version fails with PreconditionFailed and changes nothing", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${freshPrefix()}stale`
        const v1 = yield* store.put(key, encode("one"), { ifAbsent: true })
        const v2 = yield* store.put(key, encode("two"), { ifMatch: v1 })
        const error = yield* store.put(key, encode("three"), { ifMatch: v1 }).pipe(Effect.flip)
        expect(error._tag).toBe("PreconditionFailed")
        const stored = yield* store.get(key).pipe(Effect.map(Option.getOrThrow))
        expect(decode(stored.bytes)).toBe("two")
        expect(stored.version).toBe(v2)
      }))

    it.effect("the version changes on every write of new bytes; old versions stop matching", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${freshPrefix()}versions`
        const versions = [yield* store.put(key, encode("write 0"), { ifAbsent: true })]
        for (let i = 1; i < 5; i++) {
          versions.push(yield* store.put(key, encode(`write ${i}`), { ifMatch: versions[versions.length - 1]! }))
        }
        expect(new Set(versions).size).toBe(versions.length)
        for (const stale of versions.slice(0, -1)) {
          expect(yield* tagOf(store.put(key, encode("late"), { ifMatch: stale }))).toBe("PreconditionFailed")
        }
      }))

    it.effect("rewriting identical bytes succeeds and get reports the version the write returned", () =>
      Effect.gen(function*() {
        // Memory and file stores issue a new version even here; S3's ETag is the MD5 of the
        // bytes and stays the same (osqueue puts a new seq in every commit for that reason), so
        // the suite only asserts what holds for both.
        const store = yield* ObjectStore
        const key = `${freshPrefix()}same-bytes`
        const v1 = yield* store.put(key, encode("same"), { ifAbsent: true })
        const v2 = yield* store.put(key, encode("same"), { ifMatch: v1 })
        const stored = yield* store.get(key).pipe(Effect.map(Option.getOrThrow))
        expect(stored.version).toBe(v2)
        if (v2 !== v1) {
          expect(yield* tagOf(store.put(key, encode("late"), { ifMatch: v1 }))).toBe("PreconditionFailed")
        }
        const v3 = yield* store.put(key, encode("different"), { ifMatch: v2 })
        expect(v3).not.toBe(v2)
      }))

    it.effect("10 concurrent writers on one version: exactly one wins and its bytes are stored", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${freshPrefix()}race`
        const base = yield* store.put(key, encode("base"), { ifAbsent: true })
        const results = yield* Effect.all(
          Array.from({ length: 10 }, (_, i) => Effect.either(store.put(key, encode(`writer-${i}`), { ifMatch: base }))),
          { concurrency: "unbounded" }
        )
        const winners = results.flatMap((result, i) => (Either.isRight(result) ? [{ i, version: result.right }] : []))
        expect(winners).toHaveLength(1)
        // Some servers answer a lost race with an error of unknown outcome (radosgw: a 500) rather
        // than a 412; reading back below shows that none of those landed.
        for (const result of results) {
          if (Either.isLeft(result)) expect(["PreconditionFailed", "OutcomeUnknown"]).toContain(result.left._tag)
        }
        const stored = yield* store.get(key).pipe(Effect.map(Option.getOrThrow))
        expect(decode(stored.bytes)).toBe(`writer-${winners[0]!.i}`)
        expect(stored.version).toBe(winners[0]!.version)
      }))

    it.effect("10 concurrent creators (ifAbsent): exactly one wins", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${freshPrefix()}create-race`
        const results = yield* Effect.all(
          Array.from(
            { length: 10 },
            (_, i) => Effect.either(store.put(key, encode(`creator-${i}`), { ifAbsent: true }))
          ),
          { concurrency: "unbounded" }
        )
        const winners = results.flatMap((result, i) => (Either.isRight(result) ? [i] : []))
        expect(winners).toHaveLength(1)
        for (const result of results) {
          if (Either.isLeft(result)) expect(result.left._tag).toBe("PreconditionFailed")
        }
        const stored = yield* store.get(key).pipe(Effect.map(Option.getOrThrow))
        expect(decode(stored.bytes)).toBe(`creator-${winners[0]!}`)
      }))

    it.effect("head returns the same version and metadata as get", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${freshPrefix()}head`
        const version = yield* store.put(key, encode("x"), { ifAbsent: true }, { metadata: { kind: "state" } })
        const head = yield* store.head(key).pipe(Effect.map(Option.getOrThrow))
        const got = yield* store.get(key).pipe(Effect.map(Option.getOrThrow))
        expect(head.version).toBe(version)
        expect(got.version).toBe(version)
        expect(head.metadata).toEqual(got.metadata)
      }))

    it.effect("metadata round-trips and is replaced by the next write", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${freshPrefix()}metadata`
        const metadata = { "commit-id": "leader-1:42", format: "1" }
        const v1 = yield* store.put(key, encode("{}"), { ifAbsent: true }, { metadata })
        const stored = yield* store.get(key).pipe(Effect.map(Option.getOrThrow))
        expect(stored.metadata).toEqual(metadata)
        yield* store.put(key, encode("{}"), { ifMatch: v1 }, { metadata: { format: "2" } })
        const head = yield* store.head(key).pipe(Effect.map(Option.getOrThrow))
        expect(head.metadata).toEqual({ format: "2" })
      }))

    it.effect("bytes round-trip exactly (all byte values, empty and 1 MiB objects)", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const prefix = freshPrefix()
        const every = Uint8Array.from({ length: 512 }, (_, i) => i % 256)
        const large = Uint8Array.from({ length: 1024 * 1024 }, (_, i) => (i * 31 + 7) % 251)
        for (const [name, bytes] of [["every", every], ["empty", new Uint8Array(0)], ["large", large]] as const) {
          yield* store.put(`${prefix}${name}`, bytes, { ifAbsent: true })
          const stored = yield* store.get(`${prefix}${name}`).pipe(Effect.map(Option.getOrThrow))
          expect(stored.bytes.length).toBe(bytes.length)
          expect(Buffer.from(stored.bytes).equals(Buffer.from(bytes))).toBe(true)
        }
      }))

    it.effect("a body in parts is stored as their concatenation (3,000 parts, empty and large ones among them)", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${freshPrefix()}parts`
        // Uneven sizes, some empty, about 450 KiB of small parts and one of 300 KiB in the middle;
        // more parts than the file store's one `writev` takes (1,024).
        const parts = Array.from(
          { length: 3000 },
          (_, i) =>
            Uint8Array.from({ length: i === 1500 ? 300 * 1024 : i % 7 === 0 ? 0 : (i % 300) + 1 }, (_, j) =>
              (i + j) % 256)
        )
        const whole = Buffer.concat(parts)
        const v1 = yield* store.put(key, parts, { ifAbsent: true })
        const stored = yield* store.get(key).pipe(Effect.map(Option.getOrThrow))
        expect(stored.version).toBe(v1)
        expect(Buffer.from(stored.bytes).equals(whole)).toBe(true)
        yield* store.put(key, [encode("a"), encode(""), encode("bc")], { ifMatch: v1 })
        expect(decode((yield* store.get(key).pipe(Effect.map(Option.getOrThrow))).bytes)).toBe("abc")
      }))

    it.effect("the store keeps its own copy of the bytes", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${freshPrefix()}copy`
        const bytes = encode("original")
        yield* store.put(key, bytes, { ifAbsent: true })
        bytes.fill(0)
        const stored = yield* store.get(key).pipe(Effect.map(Option.getOrThrow))
        expect(decode(stored.bytes)).toBe("original")
      }))

    it.effect("delete then get is None; the key can be created again with a new version", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${freshPrefix()}delete`
        const v1 = yield* store.put(key, encode("one"), { ifAbsent: true })
        yield* store.delete(key)
        expect(Option.isNone(yield* store.get(key))).toBe(true)
        expect(Option.isNone(yield* store.head(key))).toBe(true)
        // Deleting what is already gone is fine.
        yield* store.delete(key)
        const v2 = yield* store.put(key, encode("again"), { ifAbsent: true })
        expect(v2).not.toBe(v1)
        const stored = yield* store.get(key).pipe(Effect.map(Option.getOrThrow))
        expect(decode(stored.bytes)).toBe("again")
      }))

    it.effect("delete of a key that was never written succeeds and creates nothing", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const prefix = freshPrefix()
        yield* store.delete(`${prefix}never-written`)
        yield* store.delete(`${prefix}log/0000000000000007`)
        expect(Option.isNone(yield* store.head(`${prefix}log/0000000000000007`))).toBe(true)
        expect(yield* store.list(prefix)).toEqual([])
      }))

    it.effect("a deleted log entry is gone from get, head and list, and one of 10 racing creators makes it again", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const prefix = `${freshPrefix()}log/`
        const keys = [1, 2, 3].map((position) =>
          `${prefix}${String(position).padStart(16, "0")}`
        )
        for (const key of keys) yield* store.put(key, encode(`entry ${key}`), { ifAbsent: true })
        const [first, second, third] = keys as [string, string, string]
        yield* store.delete(second)
        expect(Option.isNone(yield* store.get(second))).toBe(true)
        expect(Option.isNone(yield* store.head(second))).toBe(true)
        expect(yield* store.list(prefix)).toEqual([first, third])
        const results = yield* Effect.all(
          Array.from(
            { length: 10 },
            (_, i) => Effect.either(store.put(second, encode(`again ${i}`), { ifAbsent: true }))
          ),
          { concurrency: "unbounded" }
        )
        const winners = results.flatMap((result, i) => (Either.isRight(result) ? [i] : []))
        expect(winners).toHaveLength(1)
        for (const result of results) {
          if (Either.isLeft(result)) expect(result.left._tag).toBe("PreconditionFailed")
        }
        const stored = yield* store.get(second).pipe(Effect.map(Option.getOrThrow))
        expect(decode(stored.bytes)).toBe(`again ${winners[0]!}`)
        expect(yield* store.list(prefix)).toEqual(keys)
      }))

    it.effect("list of a prefix with 1,000 log entries returns them all, sorted; deleting them empties it", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const base = freshPrefix()
        const prefix = `${base}log/`
        const keys = Array.from({ length: 1000 }, (_, i) =>
          `${prefix}${String(i + 1).padStart(16, "0")}`)
        // Beside the log, outside its prefix: listing all of `base` (1,002 keys) takes two pages
        // of S3 and GCS (1,000 keys each).
        const beside = [`${base}logbook`, `${base}queue.json`]
        for (const key of beside) yield* store.put(key, encode(key), { ifAbsent: true })
        // Written out of order, so a store that lists in creation order fails.
        const shuffled = keys.map((key, i) => ({ key, rank: (i * 7919) % 1000 })).sort((a, b) => a.rank - b.rank)
        yield* Effect.forEach(shuffled, ({ key }) => store.put(key, encode(key), { ifAbsent: true }), {
          concurrency: 32,
          discard: true
        })
        expect(yield* store.list(prefix)).toEqual(keys)
        expect(yield* store.list(base)).toEqual([...keys, ...beside])
        // The prefix of one page of positions, as a reader that replays from a position asks.
        expect(yield* store.list(`${prefix}00000000000009`)).toEqual(keys.slice(899, 999))
        yield* Effect.forEach(keys.slice(0, 990), (key) => store.delete(key), { concurrency: 32, discard: true })
        expect(yield* store.list(prefix)).toEqual(keys.slice(990))
      }), 180_000) // 2,000 requests: radosgw answers about 100 a second

    it.effect("conditional delete: the current version deletes, a stale one fails", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${freshPrefix()}delete-if-match`
        const v1 = yield* store.put(key, encode("one"), { ifAbsent: true })
        const v2 = yield* store.put(key, encode("two"), { ifMatch: v1 })
        expect(yield* tagOf(store.delete(key, v1))).toBe("PreconditionFailed")
        expect(Option.isSome(yield* store.get(key))).toBe(true)
        yield* store.delete(key, v2)
        expect(Option.isNone(yield* store.get(key))).toBe(true)
      }))

    it.effect("ifMatch on a missing or deleted key fails with PreconditionFailed", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const prefix = freshPrefix()
        const missing = `${prefix}never-written`
        const deleted = `${prefix}deleted`
        const v1 = yield* store.put(deleted, encode("one"), { ifAbsent: true })
        yield* store.delete(deleted)
        // A version of some other object, so every backend gets a well-formed token.
        const other = yield* store.put(`${prefix}other`, encode("other"), { ifAbsent: true })
        expect(yield* tagOf(store.put(missing, encode("x"), { ifMatch: other }))).toBe("PreconditionFailed")
        expect(yield* tagOf(store.put(deleted, encode("x"), { ifMatch: v1 }))).toBe("PreconditionFailed")
        expect(Option.isNone(yield* store.get(missing))).toBe(true)
        expect(Option.isNone(yield* store.get(deleted))).toBe(true)
      }))

    it.effect("list returns the keys under a prefix, sorted, without deleted ones", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const prefix = freshPrefix()
        const keys = ["b", "a", "c/nested", "c", "ab", "d/e/f"].map((k) =>
          `${prefix}${k}`
        )
        for (const key of keys) yield* store.put(key, encode(key), { ifAbsent: true })
        yield* store.put(`${prefix}gone`, encode("x"), { ifAbsent: true })
        yield* store.delete(`${prefix}gone`)
        // Outside the prefix: must not show up.
        yield* store.put(`${prefix.slice(0, -1)}-sibling`, encode("x"), { ifAbsent: true })

        expect(yield* store.list(prefix)).toEqual([...keys].sort())
        expect(yield* store.list(`${prefix}a`)).toEqual([`${prefix}a`, `${prefix}ab`])
        expect(yield* store.list(`${prefix}c/`)).toEqual([`${prefix}c/nested`])
        expect(yield* store.list(`${prefix}zzz`)).toEqual([])
      }))

    it.effect("a key and a key below it (\"a\" and \"a/b\") are independent objects", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const prefix = freshPrefix()
        yield* store.put(`${prefix}a/b`, encode("child"), { ifAbsent: true })
        expect(Option.isNone(yield* store.get(`${prefix}a`))).toBe(true)
        yield* store.put(`${prefix}a`, encode("parent"), { ifAbsent: true })
        yield* store.delete(`${prefix}a/b`)
        const parent = yield* store.get(`${prefix}a`).pipe(Effect.map(Option.getOrThrow))
        expect(decode(parent.bytes)).toBe("parent")
        expect(yield* store.list(prefix)).toEqual([`${prefix}a`])
      }))

    it.effect("concurrent read-modify-write loops never lose an increment", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${freshPrefix()}counter`
        interface Counter {
          readonly count: number
          readonly recent: ReadonlyArray<string>
        }
        const read = store.get(key).pipe(
          Effect.map(Option.getOrThrow),
          Effect.map((stored) => ({ stored, counter: JSON.parse(decode(stored.bytes)) as Counter }))
        )
        yield* store.put(key, encode(JSON.stringify({ count: 0, recent: [] })), { ifAbsent: true })
        // Each write carries an id, so an OutcomeUnknown (which a backend may answer under
        // contention) is resolved by reading back, as osqueue's Cas does.
        const increment = (id: string) =>
          Effect.gen(function*() {
            for (;;) {
              const { counter, stored } = yield* read
              if (counter.recent.includes(id)) return
              const next: Counter = { count: counter.count + 1, recent: [...counter.recent, id] }
              const written = yield* store.put(key, encode(JSON.stringify(next)), { ifMatch: stored.version }).pipe(
                Effect.as(true),
                Effect.catchTags({
                  PreconditionFailed: () => Effect.succeed(false),
                  OutcomeUnknown: () => Effect.succeed(false)
                })
              )
              if (written) return
            }
          })
        yield* Effect.forEach(
          Array.from({ length: 4 }, (_, fiber) => fiber),
          (fiber) => Effect.forEach(Array.from({ length: 5 }, (_, i) => `${fiber}-${i}`), increment, { discard: true }),
          { concurrency: "unbounded", discard: true }
        )
        const { counter } = yield* read
        expect(counter.count).toBe(20)
        expect(new Set(counter.recent).size).toBe(20)
      }))
  })
