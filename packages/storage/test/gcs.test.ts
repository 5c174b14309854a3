// GcsStore through the real @google-cloud/storage client, against the stand-in JSON API server in
// support/gcs-server.ts (or real GCS / fake-gcs-server: see support/gcs.ts).
import { expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Either, Layer, Option } from "effect"
import { createHash } from "node:crypto"
import { afterAll, describe } from "vitest"
import * as GcsStore from "../src/GcsStore.js"
import { ObjectStore, type StoreError } from "../src/ObjectStore.js"
import type { GcsRequest, GcsStandIn } from "./support/gcs-server.js"
import { standInBucket, startGcsTarget } from "./support/gcs.js"

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array) => new TextDecoder().decode(data)
const errorTag = <A>(effect: Effect.Effect<A, StoreError>) => Effect.flip(effect).pipe(Effect.map((e) => e._tag))

// pageSize 2 makes every list in these tests page through the client's pagination
const target = await startGcsTarget({ pageSize: 2 })
afterAll(() => target.close())

const withStore = <A, E>(effect: Effect.Effect<A, E, ObjectStore>, config = target.config()) =>
  Effect.provide(effect, GcsStore.layer(config))

const isUpload = (r: GcsRequest) => r.method === "POST" && r.path.startsWith("/upload/")
const isMedia = (r: GcsRequest) => r.method === "GET" && r.query.alt === "media"

describe(`GcsStore on ${target.describe}`, () => {
  it.live("creates only when absent, then writes only against the current generation", () =>
    withStore(Effect.gen(function*() {
      const s = yield* ObjectStore
      expect(s.backend).toBe("gcs")
      expect(Option.isNone(yield* s.get("queue.json"))).toBe(true)
      const v1 = yield* s.put("queue.json", bytes("one"), { ifAbsent: true })
      expect(v1).toMatch(/^\d+$/)
      expect(yield* errorTag(s.put("queue.json", bytes("again"), { ifAbsent: true }))).toBe("PreconditionFailed")
      const v2 = yield* s.put("queue.json", bytes("two"), { ifMatch: v1 })
      expect(v2).not.toBe(v1)
      const stale = yield* Effect.flip(s.put("queue.json", bytes("three"), { ifMatch: v1 }))
      expect(stale).toMatchObject({ _tag: "PreconditionFailed", key: "queue.json", expected: v1 })
      const got = yield* s.get("queue.json")
      expect(got.pipe(Option.map((o) => [text(o.bytes), o.version]))).toEqual(Option.some(["two", v2]))
      expect(yield* errorTag(s.put("missing.json", bytes("x"), { ifMatch: v2 }))).toBe("PreconditionFailed")
      expect(Option.isNone(yield* s.get("missing.json"))).toBe(true)
    })))

  it.live("keeps one write per second per object: minWriteInterval", () =>
    withStore(Effect.gen(function*() {
      const s = yield* ObjectStore
      expect(Duration.toMillis(s.minWriteInterval)).toBe(1000)
    })))

  it.live("10 racing writers on one generation: exactly one wins, the rest PreconditionFailed", () =>
    withStore(Effect.gen(function*() {
      const s = yield* ObjectStore
      for (const round of [0, 1, 2]) {
        const current = yield* s.head("race.json")
        const condition = Option.isSome(current) ? { ifMatch: current.value.version } : { ifAbsent: true as const }
        const outcomes = yield* Effect.all(
          Array.from({ length: 10 }, (_, i) => Effect.either(s.put("race.json", bytes(`writer ${i}`), condition))),
          { concurrency: "unbounded" }
        )
        const winners = outcomes.flatMap((o, i) => (Either.isRight(o) ? [{ writer: i, version: o.right }] : []))
        expect(winners, `round ${round}`).toHaveLength(1)
        expect(outcomes.filter(Either.isLeft).map((o) => o.left._tag)).toEqual(Array(9).fill("PreconditionFailed"))
        const stored = (yield* s.get("race.json")).pipe(Option.getOrThrow)
        expect([text(stored.bytes), stored.version]).toEqual([`writer ${winners[0]?.writer}`, winners[0]?.version])
      }
    })))

  it.live("metadata: a HEAD finds the leader; each put states the whole metadata", () =>
    withStore(Effect.gen(function*() {
      const s = yield* ObjectStore
      const leader = { "leader-url": "http://broker-2.internal:8080", "leader-epoch": "7" }
      const v = yield* s.put("queue.json", bytes("{}"), { ifAbsent: true }, { metadata: leader })
      expect(yield* s.head("queue.json")).toEqual(Option.some({ version: v, metadata: leader }))
      expect((yield* s.get("queue.json")).pipe(Option.map((o) => o.metadata))).toEqual(Option.some(leader))
      const v2 = yield* s.put("queue.json", bytes("{ }"), { ifMatch: v })
      expect(yield* s.head("queue.json")).toEqual(Option.some({ version: v2, metadata: {} }))
      expect(Option.isNone(yield* s.head("nothing-here"))).toBe(true)
    })))

  it.live("lists keys under a prefix across pages, relative to the store's prefix, sorted", () =>
    withStore(Effect.gen(function*() {
      const s = yield* ObjectStore
      for (const key of ["jobs/b", "jobs/a", "jobs/c/d", "jobs/e", "other", "queue.json"]) {
        yield* s.put(key, bytes(key), { ifAbsent: true })
      }
      expect(yield* s.list("jobs/")).toEqual(["jobs/a", "jobs/b", "jobs/c/d", "jobs/e"])
      expect(yield* s.list("")).toEqual(["jobs/a", "jobs/b", "jobs/c/d", "jobs/e", "other", "queue.json"])
      expect(yield* s.list("nothing/")).toEqual([])
    })))

  it.live("deletes: unconditionally, at a generation (a stale one is refused), absent keys are fine", () =>
    withStore(Effect.gen(function*() {
      const s = yield* ObjectStore
      const v1 = yield* s.put("a", bytes("1"), { ifAbsent: true })
      const v2 = yield* s.put("a", bytes("2"), { ifMatch: v1 })
      expect(yield* errorTag(s.delete("a", v1))).toBe("PreconditionFailed")
      expect(Option.isSome(yield* s.head("a"))).toBe(true)
      yield* s.delete("a", v2)
      expect(Option.isNone(yield* s.head("a"))).toBe(true)
      yield* s.delete("a")
      yield* s.delete("a", v2)
      yield* s.put("b", bytes("1"), { ifAbsent: true })
      yield* s.delete("b")
      expect(yield* s.list("")).toEqual([])
    })))

  it.live("layerConfig reads GCS_* (and STORAGE_EMULATOR_HOST as host:port)", () => {
    const config = target.config()
    const endpoint = config.apiEndpoint
    const env = new Map([
      ["GCS_BUCKET", config.bucket],
      ["GCS_PREFIX", (config.prefix ?? "").replace(/\/$/, "")],
      ...(endpoint !== undefined ? [["STORAGE_EMULATOR_HOST", endpoint.replace(/^http:\/\//, "")] as const] : []),
      ...(config.projectId !== undefined ? [["GCS_PROJECT_ID", config.projectId] as const] : [])
    ])
    const fromEnv = GcsStore.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(env))))
    return Effect.gen(function*() {
      const s = yield* ObjectStore
      const v = yield* s.put("queue.json", bytes("a"), { ifAbsent: true })
      yield* s.put("queue.json", bytes("b"), { ifMatch: v })
      const direct = yield* withStore(Effect.flatMap(ObjectStore, (d) => d.list("")), config)
      expect(direct).toEqual(["queue.json"])
    }).pipe(Effect.provide(fromEnv))
  })
})

// What follows needs the stand-in: it checks the requests the client makes and injects faults.
const standIn: GcsStandIn | undefined = target.standIn
const describeStandIn = standIn === undefined ? describe.skip : describe

describeStandIn("GcsStore through the stand-in: requests and failures", () => {
  const server = standIn as GcsStandIn
  const fresh = () => {
    const config = target.config()
    return {
      name: (key: string) => `${config.prefix ?? ""}${key}`,
      run: <A, E>(e: Effect.Effect<A, E, ObjectStore>, overrides: Partial<GcsStore.GcsStoreConfig> = {}) =>
        withStore(e, { ...config, ...overrides })
    }
  }
  const since = (from: number) => server.requests.slice(from)

  it.live("a write is one multipart upload with ifGenerationMatch, and its generation comes from the answer", () => {
    const { name, run } = fresh()
    return run(Effect.gen(function*() {
      const s = yield* ObjectStore
      const from = server.requests.length
      const v1 = yield* s.put("queue.json", bytes("one"), { ifAbsent: true })
      const v2 = yield* s.put("queue.json", bytes("two"), { ifMatch: v1 })
      const sent = since(from)
      expect(sent.map((r) => [r.method, r.path, r.query.uploadType, r.query.name, r.query.ifGenerationMatch])).toEqual([
        ["POST", `/upload/storage/v1/b/${standInBucket}/o`, "multipart", name("queue.json"), "0"],
        ["POST", `/upload/storage/v1/b/${standInBucket}/o`, "multipart", name("queue.json"), v1]
      ])
      expect((yield* s.head("queue.json")).pipe(Option.map((h) => h.version))).toEqual(Option.some(v2))
    }))
  })

  it.live("a read is metadata, then a download pinned to that generation", () => {
    const { run } = fresh()
    return run(Effect.gen(function*() {
      const s = yield* ObjectStore
      const v = yield* s.put("queue.json", bytes("one"), { ifAbsent: true })
      const from = server.requests.length
      yield* s.get("queue.json")
      const sent = since(from)
      expect(sent).toHaveLength(2)
      expect(sent[0]?.query.alt).toBeUndefined()
      expect(sent[1]?.query).toMatchObject({ alt: "media", generation: v })
    }))
  })

  it.live("a write between the metadata and the download: the read starts over and stays consistent", () => {
    const { name, run } = fresh()
    return run(Effect.gen(function*() {
      const s = yield* ObjectStore
      yield* s.put("queue.json", bytes("one"), { ifAbsent: true })
      let replaced = ""
      server.inject(
        {
          kind: "before",
          action: () => void (replaced = server.putObject(standInBucket, name("queue.json"), bytes("two")))
        },
        isMedia
      )
      const got = (yield* s.get("queue.json")).pipe(Option.getOrThrow)
      expect([text(got.bytes), got.version]).toEqual(["two", replaced])
    }))
  })

  it.live("503 and 429 are StoreUnavailable and nothing is written; the client does not retry", () => {
    const { run } = fresh()
    return run(Effect.gen(function*() {
      const s = yield* ObjectStore
      const v = yield* s.put("queue.json", bytes("one"), { ifAbsent: true })
      for (const status of [503, 429, 408]) {
        const from = server.requests.length
        server.inject({ kind: "respond", status }, isUpload)
        expect(yield* errorTag(s.put("queue.json", bytes("two"), { ifMatch: v })), String(status)).toBe(
          "StoreUnavailable"
        )
        expect(since(from).filter(isUpload)).toHaveLength(1)
      }
      expect((yield* s.get("queue.json")).pipe(Option.map((o) => [text(o.bytes), o.version]))).toEqual(
        Option.some(["one", v])
      )
      // reads retry on their own
      server.inject({ kind: "respond", status: 503 }, isMedia)
      expect((yield* s.get("queue.json")).pipe(Option.map((o) => o.version))).toEqual(Option.some(v))
    }))
  })

  it.live("ambiguous outcome, landed: a 500 after the write; reading back shows it", () => {
    const { run } = fresh()
    return run(Effect.gen(function*() {
      const s = yield* ObjectStore
      const v1 = yield* s.put("queue.json", bytes("seq 1"), { ifAbsent: true })
      const from = server.requests.length
      server.inject({ kind: "apply-then-respond", status: 500 }, isUpload)
      expect(yield* errorTag(s.put("queue.json", bytes("seq 2"), { ifMatch: v1 }))).toBe("OutcomeUnknown")
      expect(since(from).filter(isUpload)).toHaveLength(1)
      const back = (yield* s.get("queue.json")).pipe(Option.getOrThrow)
      expect(text(back.bytes)).toBe("seq 2")
      expect(back.version).not.toBe(v1)
    }))
  })

  it.live("ambiguous outcome, not landed: a 500 before the write; reading back shows the old state", () => {
    const { run } = fresh()
    return run(Effect.gen(function*() {
      const s = yield* ObjectStore
      const v1 = yield* s.put("queue.json", bytes("seq 1"), { ifAbsent: true })
      server.inject({ kind: "respond", status: 500 }, isUpload)
      expect(yield* errorTag(s.put("queue.json", bytes("seq 2"), { ifMatch: v1 }))).toBe("OutcomeUnknown")
      expect((yield* s.get("queue.json")).pipe(Option.map((o) => [text(o.bytes), o.version]))).toEqual(
        Option.some(["seq 1", v1])
      )
    }))
  })

  it.live("a timeout or a dropped connection on a write is OutcomeUnknown (and it landed)", () => {
    const { run } = fresh()
    return run(
      Effect.gen(function*() {
        const s = yield* ObjectStore
        const v1 = yield* s.put("queue.json", bytes("seq 1"), { ifAbsent: true })
        server.inject({ kind: "apply-then-delay", delayMs: 2000 }, isUpload)
        expect(yield* errorTag(s.put("queue.json", bytes("seq 2"), { ifMatch: v1 }))).toBe("OutcomeUnknown")
        const v2 = (yield* s.head("queue.json")).pipe(Option.getOrThrow).version
        expect(v2).not.toBe(v1)
        server.inject({ kind: "apply-then-reset" }, isUpload)
        expect(yield* errorTag(s.put("queue.json", bytes("seq 3"), { ifMatch: v2 }))).toBe("OutcomeUnknown")
        expect((yield* s.get("queue.json")).pipe(Option.map((o) => text(o.bytes)))).toEqual(Option.some("seq 3"))
      }),
      { requestTimeout: "800 millis" }
    )
  })

  it.live("other failures are StoreFailure with a reason: 403, a missing bucket; refused connections are StoreUnavailable", () =>
    Effect.gen(function*() {
      const { run } = fresh()
      server.inject({ kind: "respond", status: 403, reason: "forbidden" }, isUpload)
      const denied = yield* run(
        Effect.flatMap(ObjectStore, (s) => Effect.flip(s.put("q", bytes("a"), { ifAbsent: true })))
      )
      expect(denied._tag).toBe("StoreFailure")
      expect(denied.message).toContain("storage.objects.create")

      const missing = yield* withStore(
        Effect.flatMap(ObjectStore, (s) => Effect.flip(s.put("q", bytes("a"), { ifAbsent: true }))),
        target.config({ bucket: "osqueue-no-such-bucket" })
      )
      expect(missing._tag).toBe("StoreFailure")
      expect(missing.message).toContain("osqueue-no-such-bucket")

      const refused = target.config({ apiEndpoint: "http://127.0.0.1:9", readRetries: 0 })
      expect(
        yield* withStore(
          Effect.flatMap(ObjectStore, (s) => errorTag(s.put("q", bytes("a"), { ifAbsent: true }))),
          refused
        )
      )
        .toBe("StoreUnavailable")
      expect(yield* withStore(Effect.flatMap(ObjectStore, (s) => errorTag(s.get("q"))), refused)).toBe(
        "StoreUnavailable"
      )
    }))
})

describeStandIn("the GCS stand-in itself", () => {
  const server = standIn as GcsStandIn
  const upload = (name: string, body: string, query: Record<string, string>, md5?: string) => {
    const boundary = "b0undary"
    const meta = JSON.stringify({ name, ...(md5 !== undefined ? { md5Hash: md5 } : {}) })
    const payload = `--${boundary}\r\nContent-Type: application/json\r\n\r\n${meta}\r\n` +
      `--${boundary}\r\nContent-Type: text/plain\r\n\r\n${body}\r\n--${boundary}--`
    const qs = new URLSearchParams({ uploadType: "multipart", name, ...query })
    return fetch(`${server.url}/upload/storage/v1/b/${standInBucket}/o?${qs}`, {
      method: "POST",
      headers: { "content-type": `multipart/related; boundary=${boundary}` },
      body: payload
    })
  }

  it("checks generation preconditions atomically: 10 concurrent creates, one 200", async () => {
    const name = `raw-${Date.now()}`
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => upload(name, `w${i}`, { ifGenerationMatch: "0" }))
    )
    expect(answers.map((a) => a.status).sort()).toEqual([200, ...Array(9).fill(412)])
  })

  it("refuses a body whose md5Hash does not match, storing nothing", async () => {
    const name = `md5-${Date.now()}`
    const wrong = createHash("md5").update("other").digest("base64")
    expect((await upload(name, "body", {}, wrong)).status).toBe(400)
    expect(server.objectNames(standInBucket)).not.toContain(name)
    const right = createHash("md5").update("body").digest("base64")
    expect((await upload(name, "body", {}, right)).status).toBe(200)
  })

  it("refuses resumable uploads plainly", async () => {
    const answer = await fetch(`${server.url}/upload/storage/v1/b/${standInBucket}/o?uploadType=resumable&name=x`, {
      method: "POST"
    })
    expect(answer.status).toBe(501)
  })
})
