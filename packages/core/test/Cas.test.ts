/**
 * Cas over real stores: decoding refuses what it does not understand (and nothing overwrites it),
 * and unknown write outcomes are resolved by reading back — on the memory store and, through the
 * fault decorator, on a real S3 server (radosgw; see docs/storage.md).
 */
import { describe, expect, it } from "@effect/vitest"
import { Cas, Engine, EngineConfig, QueueState } from "@osqueue/core"
import { FaultyStore, MemoryStore, ObjectStore, type ObjectStoreShape } from "@osqueue/storage"
import * as S3Store from "@osqueue/storage/s3"
import { Effect, Either, Exit, Layer, Option, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import * as http from "node:http"

const encoder = new TextEncoder()
const stateBytes = (seq: number, commitId: string) => QueueState.empty().encode(seq, commitId)
const casOver = (store: ObjectStoreShape) => Cas.make().pipe(Effect.provideService(ObjectStore, store))

const resolution = (underlying: ObjectStoreShape) =>
  Effect.gen(function*() {
    const first = yield* (yield* casOver(underlying)).commit(stateBytes(1, "a:1"), undefined, "a:1")

    const ambiguous = yield* FaultyStore.wrap(underlying, { ambiguousWriteRate: 1 })
    const landed = yield* (yield* casOver(ambiguous.store)).commit(stateBytes(2, "a:2"), first, "a:2")
    const afterLanded = Option.getOrThrow(yield* (yield* casOver(underlying)).load)
    expect(afterLanded.file.commitId).toBe("a:2")
    expect(afterLanded.version).toBe(landed)

    const lost = yield* FaultyStore.wrap(underlying, { lostWriteRate: 1 })
    const error = yield* (yield* casOver(lost.store)).commit(stateBytes(3, "a:3"), landed, "a:3").pipe(Effect.flip)
    expect(error._tag).toBe("StoreUnavailable")
    expect(Option.getOrThrow(yield* (yield* casOver(underlying)).load).file.commitId).toBe("a:2")

    // a write from a stale version is a conflict, not a success
    const stale = yield* (yield* casOver(underlying)).commit(stateBytes(3, "b:3"), first, "b:3").pipe(Effect.flip)
    expect(stale._tag).toBe("CasConflict")
  })

describe("Cas", () => {
  it.effect("resolves unknown outcomes by reading back (memory store)", () =>
    Effect.flatMap(MemoryStore.make, resolution))

  it.effect("refuses an unknown format, and a broker will not start on it nor overwrite it", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const future = encoder.encode(JSON.stringify({ format: 6, jobs: [] }))
      yield* store.put("queue.json", future, { ifAbsent: true })
      const error = yield* (yield* casOver(store)).load.pipe(Effect.flip)
      expect(error._tag).toBe("StateCorrupt")
      expect(error.message).toMatch(/format 6 is not known to this broker, which reads formats 1, 2, 3, 4 and 5/)
      const start = yield* Layer.build(
        Engine.layer.pipe(
          Layer.provide(Layer.succeed(ObjectStore, store)),
          Layer.provide(EngineConfig.layer())
        )
      ).pipe(Effect.scoped, Effect.exit)
      expect(Exit.isFailure(start)).toBe(true)
      const after = Option.getOrThrow(yield* store.get("queue.json"))
      expect(after.bytes).toEqual(future)
    }))

  it.effect("refuses a corrupt object with a message naming the problem", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      yield* store.put("queue.json", encoder.encode("{\"format\":1,\"epoch\":\"x\"}"), { ifAbsent: true })
      const error = yield* (yield* casOver(store)).load.pipe(Effect.flip)
      expect(error._tag).toBe("StateCorrupt")
      expect(error.message).toMatch(/epoch/)
    }))

  it.effect("loads each job from its own bytes, keeps them for the next checkpoint, and names a bad job", () =>
    Effect.gen(function*() {
      const state = QueueState.empty()
      state.begin()
      const jobs = ["a", "b", "c"].map((type) => ({ type, payload: { text: `"[,]\\ ✓ ${type}` } }))
      expect(Either.isRight(state.apply({ _tag: "Enqueue", jobs }, 1_000, () => "secret"))).toBe(true)
      state.committed(1, "a:1")
      const text = state.toJson(1, "a:1")
      // Spaced as a reformatted file would be: the jobs are read all the same.
      const spaced = text.replace(/,\{"id"/g, ",\n  {\"id\"").replace("\"jobs\":[", "\"jobs\": [ ")
      const decoded = Either.getOrThrow(Cas.decodeKeepingBytes(encoder.encode(spaced)))
      expect(decoded.kept?.ids.length).toBe(3)
      const back = QueueState.fromFile(decoded.file, spaced.length, undefined, decoded.kept)
      expect(JSON.parse(back.toJson(1, "a:1"))).toEqual(JSON.parse(text))

      // Jobs that lie one after another in the bytes read go out as one part: the header, the first
      // job (a copy, with a comma for the `[` it followed), the other two, the closing bracket.
      expect(back.encodeParts(1, "a:1").parts).toHaveLength(4)

      const bad = text.replace("\"type\":\"b\"", "\"type\":7")
      const error = Either.flip(Cas.decodeKeepingBytes(encoder.encode(bad))).pipe(Either.getOrThrow)
      expect(error._tag).toBe("StateCorrupt")
      expect(error.message).toMatch(/\["jobs"\]\[1\]/)
      expect(error.message).toMatch(/type/)
    }))

  it.effect("a loaded state claims, writes and shows its kept jobs as it would its own", () =>
    Effect.sync(() => {
      const state = QueueState.empty()
      state.begin()
      const jobs = Array.from({ length: 5 }, (_, i) => ({ type: "t", payload: { n: i, text: "✓ é" } }))
      expect(Either.isRight(state.apply({ _tag: "Enqueue", jobs }, 1_000, () => "secret"))).toBe(true)
      state.committed(1, "a:1")
      const text = state.toJson(1, "a:1")
      const decoded = Either.getOrThrow(Cas.decodeKeepingBytes(encoder.encode(text)))
      const back = QueueState.fromFile(decoded.file, text.length, undefined, decoded.kept)
      // The first job claimed: its new bytes lie elsewhere, the others' where they were read.
      for (const s of [state, back]) {
        s.begin()
        expect(Either.isRight(s.apply({ _tag: "Claim", workerId: "w", types: ["t"], max: 1 }, 2_000, () => "secret")))
          .toBe(true)
        s.committed(2, "a:2")
      }
      expect(JSON.parse(back.toJson(2, "a:2"))).toEqual(JSON.parse(state.toJson(2, "a:2")))
      expect(back.publicJson(2, "a:2")).toBe(state.publicJson(2, "a:2"))
      expect(back.publicJson(2, "a:2")).not.toContain("secret")
      const again = Either.getOrThrow(Cas.decodeKeepingBytes(back.encode(3, "a:3")))
      expect(again.kept?.states).toEqual(["running", "queued", "queued", "queued", "queued"])
    }))
})

// The S3 server of the storage suite (scripts/s3-server start); under CI=true it must be there.
const endpoint = process.env.OSQUEUE_TEST_S3_ENDPOINT ?? "http://127.0.0.1:7480"
const reachable = await new Promise<boolean>((resolve) => {
  const request = http.get(endpoint, { timeout: 2000 }, (res) => {
    res.resume()
    resolve(true)
  })
  request.on("timeout", () => request.destroy(new Error("timeout")))
  request.on("error", () => resolve(false))
})

describe.runIf(reachable || process.env.CI === "true")(`Cas on S3 at ${endpoint}`, () => {
  it.live("resolves an ambiguous write that landed and one that was lost", () =>
    S3Store.make({
      bucket: process.env.OSQUEUE_TEST_S3_BUCKET ?? "osqueue-test",
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      etagQuoting: process.env.OSQUEUE_TEST_S3_ETAG_QUOTING === "quoted" ? "quoted" : "unquoted",
      prefix: `test-cas-${randomUUID().slice(0, 8)}/`,
      credentials: { accessKeyId: "test", secretAccessKey: Redacted.make("test") }
    }).pipe(Effect.flatMap(resolution), Effect.scoped))
})
