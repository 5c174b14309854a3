// S3Store against a real S3 server (Ceph radosgw from scripts/s3-server, or whatever
// OSQUEUE_TEST_S3_ENDPOINT points at). Faults are made by a proxy in front of the real server,
// so an "ambiguous" write really did land (or really did not) on the server.
import { expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Either, Layer, Option } from "effect"
import { afterAll, beforeAll, describe } from "vitest"
import { ObjectStore, type StoreError } from "../src/ObjectStore.js"
import * as S3Store from "../src/S3Store.js"
import { type FaultProxy, s3ErrorXml, startFaultProxy } from "./support/fault-proxy.js"
import { describeS3, s3Bucket, s3Config, s3Endpoint, s3IsRadosgw, s3Quoting, testPrefix } from "./support/s3.js"

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array) => new TextDecoder().decode(data)

const withStore = <A, E>(effect: Effect.Effect<A, E, ObjectStore>, config = s3Config()) =>
  Effect.provide(effect, S3Store.layer(config))

/** Two views of one prefix: through the proxy (faults) and straight to the server (the truth). */
const viaProxy = (proxy: FaultProxy, overrides: Partial<S3Store.S3StoreConfig> = {}) => {
  const prefix = testPrefix("s3-proxy")
  const layers = {
    proxied: S3Store.layer(s3Config({ endpoint: proxy.url, prefix, ...overrides })),
    direct: S3Store.layer(s3Config({ prefix }))
  }
  return {
    proxied: <A, E>(effect: Effect.Effect<A, E, ObjectStore>) => Effect.provide(effect, layers.proxied),
    direct: <A, E>(effect: Effect.Effect<A, E, ObjectStore>) => Effect.provide(effect, layers.direct)
  }
}

const store = ObjectStore
const errorTag = <A>(effect: Effect.Effect<A, StoreError>) => Effect.flip(effect).pipe(Effect.map((e) => e._tag))

describeS3(`S3Store on ${s3Endpoint} (bucket ${s3Bucket}, ETag ${s3Quoting})`, () => {
  let proxy: FaultProxy
  beforeAll(async () => {
    proxy = await startFaultProxy(s3Endpoint)
  })
  afterAll(() => proxy.close())

  it.live("creates only when absent, then writes only against the current version", () =>
    withStore(Effect.gen(function*() {
      const s = yield* store
      expect(s.backend).toBe("s3")
      expect(Duration.toMillis(s.minWriteInterval)).toBe(0)
      expect(Option.isNone(yield* s.get("queue.json"))).toBe(true)

      const v1 = yield* s.put("queue.json", bytes("one"), { ifAbsent: true })
      expect(yield* errorTag(s.put("queue.json", bytes("again"), { ifAbsent: true }))).toBe("PreconditionFailed")

      const v2 = yield* s.put("queue.json", bytes("two"), { ifMatch: v1 })
      expect(v2).not.toBe(v1)
      const stale = yield* Effect.flip(s.put("queue.json", bytes("three"), { ifMatch: v1 }))
      expect(stale).toMatchObject({ _tag: "PreconditionFailed", key: "queue.json", expected: v1 })

      const got = yield* s.get("queue.json")
      expect(Option.map(got, (o) => [text(o.bytes), o.version])).toEqual(Option.some(["two", v2]))
      // a version is the ETag without quotes, the same whether a put or a get reports it
      expect(v2).toMatch(/^[0-9a-f]{32}$/)
    })))

  it.live(`sends If-Match ${s3Quoting}${s3IsRadosgw ? "; radosgw refuses the quoted form" : ""}`, () => {
    const { proxied } = viaProxy(proxy)
    return proxied(Effect.gen(function*() {
      const s = yield* store
      const v1 = yield* s.put("q", bytes("a"), { ifAbsent: true })
      const before = proxy.requests.length
      yield* s.put("q", bytes("b"), { ifMatch: (yield* s.head("q")).pipe(Option.getOrThrow).version })
      const sent = proxy.requests.slice(before).find((r) => r.method === "PUT")
      expect(sent?.headers["if-match"]).toBe(s3Quoting === "quoted" ? `"${v1}"` : v1)
      expect(sent?.headers["if-none-match"]).toBeUndefined()
      const create = proxy.requests.find((r) => r.method === "PUT" && r.headers["if-none-match"] !== undefined)
      expect(create?.headers["if-none-match"]).toBe("*")
      // no SDK checksum trailer (radosgw rejects it), but Content-MD5 for integrity
      expect(sent?.headers["x-amz-checksum-crc32"]).toBeUndefined()
      expect(sent?.headers["content-md5"]).toBeDefined()
    })).pipe(
      Effect.zipRight(
        s3IsRadosgw
          ? Effect.gen(function*() {
            // the same write with the ETag quoted, as AWS takes it: radosgw compares byte for byte
            const quoted = s3Config({ etagQuoting: "quoted" })
            const outcome = yield* withStore(
              Effect.gen(function*() {
                const s = yield* store
                const v = yield* s.put("q", bytes("a"), { ifAbsent: true })
                return yield* Effect.either(s.put("q", bytes("b"), { ifMatch: v }))
              }),
              quoted
            )
            expect(Either.isLeft(outcome) && outcome.left._tag).toBe("PreconditionFailed")
          })
          : Effect.void
      )
    )
  })

  it.live("10 racing writers on one version: exactly one wins, on create and on update", () =>
    withStore(Effect.gen(function*() {
      const s = yield* store
      // The round is in the bytes: an ETag is the MD5 of the bytes, so a writer rewriting the
      // previous winner's exact bytes would leave the version unchanged and let a second one win.
      const race = (round: number, condition: Parameters<typeof s.put>[2]) =>
        Effect.all(
          Array.from({ length: 10 }, (_, i) =>
            Effect.either(s.put("race.json", bytes(`round ${round} writer ${i}`), condition))),
          { concurrency: "unbounded" }
        )
      for (const round of [0, 1, 2]) {
        const current = yield* s.head("race.json")
        const outcomes = yield* race(
          round,
          Option.isSome(current) ? { ifMatch: current.value.version } : { ifAbsent: true }
        )
        const winners = outcomes.flatMap((o, i) => (Either.isRight(o) ? [{ writer: i, version: o.right }] : []))
        const losers = outcomes.filter(Either.isLeft).map((o) => o.left._tag)
        expect(winners, `round ${round}`).toHaveLength(1)
        // radosgw answers a lost If-Match race with 500 (ECANCELED inside RADOS) rather than 412:
        // OutcomeUnknown, which Cas resolves by reading back. A create race gets clean 412s.
        const allowed = s3IsRadosgw && round > 0 ? ["PreconditionFailed", "OutcomeUnknown"] : ["PreconditionFailed"]
        expect(losers).toHaveLength(9)
        for (const tag of losers) expect(allowed).toContain(tag)
        // reading back: only the winner's bytes are there, so none of the unknown outcomes landed
        const stored = (yield* s.get("race.json")).pipe(Option.getOrThrow)
        expect(stored.version).toBe(winners[0]?.version)
        expect(text(stored.bytes)).toBe(`round ${round} writer ${winners[0]?.writer}`)
      }
    })))

  it.live("identical bytes keep the version (the ETag is their MD5): why every osqueue commit carries a new seq", () =>
    withStore(Effect.gen(function*() {
      const s = yield* store
      const v1 = yield* s.put("same.json", bytes("same"), { ifAbsent: true })
      const v2 = yield* s.put("same.json", bytes("same"), { ifMatch: v1 })
      expect(v2).toBe(v1)
      // a holder of v1 still matches after that write: S3's conditional write cannot tell them apart
      expect(yield* s.put("same.json", bytes("other"), { ifMatch: v1 })).not.toBe(v1)
    })))

  it.live("metadata: a HEAD finds the leader without reading the state", () =>
    withStore(Effect.gen(function*() {
      const s = yield* store
      const leader = { "leader-url": "http://broker-2.internal:8080", "leader-epoch": "7" }
      const v = yield* s.put("queue.json", bytes("{}"), { ifAbsent: true }, { metadata: leader })
      expect(yield* s.head("queue.json")).toEqual(Option.some({ version: v, metadata: leader }))
      expect((yield* s.get("queue.json")).pipe(Option.map((o) => o.metadata))).toEqual(Option.some(leader))
      // every put states the whole metadata: none means none
      const v2 = yield* s.put("queue.json", bytes("{ }"), { ifMatch: v })
      expect(yield* s.head("queue.json")).toEqual(Option.some({ version: v2, metadata: {} }))
      expect(Option.isNone(yield* s.head("nothing-here"))).toBe(true)

      // S3 would hand these back changed: refused before anything is sent
      const camel = yield* Effect.flip(
        s.put("queue.json", bytes("x"), { ifMatch: v2 }, { metadata: { leaderUrl: "x" } })
      )
      expect(camel._tag).toBe("StoreFailure")
      expect(camel.message).toContain("lowercase")
      const unicode = yield* Effect.flip(s.put("queue.json", bytes("x"), { ifMatch: v2 }, { metadata: { who: "Zoë" } }))
      expect(unicode._tag).toBe("StoreFailure")
    })))

  it.live("If-Match on a missing key is PreconditionFailed, never a create", () =>
    withStore(Effect.gen(function*() {
      const s = yield* store
      const e = yield* Effect.flip(s.put("gone.json", bytes("x"), { ifMatch: "0cc175b9c0f1b6a831c399e269772661" }))
      expect(e).toMatchObject({ _tag: "PreconditionFailed", key: "gone.json" })
      expect(Option.isNone(yield* s.get("gone.json"))).toBe(true)
    })))

  it.live("maps AWS's 404 on If-Match and 409 ConditionalRequestConflict to PreconditionFailed", () => {
    const { proxied } = viaProxy(proxy)
    return proxied(Effect.gen(function*() {
      const s = yield* store
      const v = yield* s.put("q", bytes("a"), { ifAbsent: true })
      proxy.inject({ kind: "respond", status: 404, body: s3ErrorXml("NoSuchKey") }, "PUT")
      expect(yield* errorTag(s.put("q", bytes("b"), { ifMatch: v }))).toBe("PreconditionFailed")
      proxy.inject({ kind: "respond", status: 409, body: s3ErrorXml("ConditionalRequestConflict") }, "PUT")
      expect(yield* errorTag(s.put("q", bytes("b"), { ifMatch: v }))).toBe("PreconditionFailed")
      // 404 NoSuchBucket is a configuration error, not a conflict
      proxy.inject({ kind: "respond", status: 404, body: s3ErrorXml("NoSuchBucket") }, "PUT")
      const bucket = yield* Effect.flip(s.put("q", bytes("b"), { ifMatch: v }))
      expect(bucket._tag).toBe("StoreFailure")
      expect(bucket.message).toContain("does not exist")
    }))
  })

  it.live("429, 503 and SlowDown are StoreUnavailable: nothing was written", () => {
    const { direct, proxied } = viaProxy(proxy)
    return Effect.gen(function*() {
      const v = yield* direct(Effect.flatMap(store, (s) => s.put("q", bytes("a"), { ifAbsent: true })))
      for (
        const [status, code] of [[503, "SlowDown"], [503, "ServiceUnavailable"], [429, "TooManyRequests"]] as const
      ) {
        proxy.inject({ kind: "respond", status, body: s3ErrorXml(code) }, "PUT")
        const tag = yield* proxied(Effect.flatMap(store, (s) => errorTag(s.put("q", bytes("b"), { ifMatch: v }))))
        expect(tag, `${status} ${code}`).toBe("StoreUnavailable")
      }
      const after = yield* direct(Effect.flatMap(store, (s) => s.get("q")))
      expect(after.pipe(Option.map((o) => text(o.bytes)))).toEqual(Option.some("a"))
      // reads retry an unavailable store on their own
      proxy.inject({ kind: "respond", status: 503, body: s3ErrorXml("SlowDown") }, "GET")
      const read = yield* proxied(Effect.flatMap(store, (s) => s.get("q")))
      expect(read.pipe(Option.map((o) => o.version))).toEqual(Option.some(v))
    })
  })

  it.live("ambiguous outcome, landed: a 500 after the server took the write; reading back shows it", () => {
    const { direct, proxied } = viaProxy(proxy)
    return Effect.gen(function*() {
      const v1 = yield* direct(Effect.flatMap(store, (s) => s.put("queue.json", bytes("seq 1"), { ifAbsent: true })))
      const putsBefore = proxy.requests.filter((r) => r.method === "PUT").length
      proxy.inject({ kind: "forward-then-respond", status: 500, body: s3ErrorXml("InternalError") }, "PUT")
      const e = yield* proxied(
        Effect.flatMap(store, (s) => Effect.flip(s.put("queue.json", bytes("seq 2"), { ifMatch: v1 })))
      )
      expect(e._tag).toBe("OutcomeUnknown")
      // exactly one PUT went out: the SDK did not retry it into a misleading 412
      expect(proxy.requests.filter((r) => r.method === "PUT").length - putsBefore).toBe(1)
      const back = yield* direct(Effect.flatMap(store, (s) => s.get("queue.json")))
      expect(back.pipe(Option.map((o) => text(o.bytes)))).toEqual(Option.some("seq 2"))
      expect(back.pipe(Option.map((o) => o.version))).not.toEqual(Option.some(v1))
    })
  })

  it.live("ambiguous outcome, not landed: a 500 before the server saw the write; reading back shows the old state", () => {
    const { direct, proxied } = viaProxy(proxy)
    return Effect.gen(function*() {
      const v1 = yield* direct(Effect.flatMap(store, (s) => s.put("queue.json", bytes("seq 1"), { ifAbsent: true })))
      proxy.inject({ kind: "respond", status: 500, body: s3ErrorXml("InternalError") }, "PUT")
      const e = yield* proxied(
        Effect.flatMap(store, (s) => Effect.flip(s.put("queue.json", bytes("seq 2"), { ifMatch: v1 })))
      )
      expect(e._tag).toBe("OutcomeUnknown")
      const back = yield* direct(Effect.flatMap(store, (s) => s.get("queue.json")))
      expect(back.pipe(Option.map((o) => [text(o.bytes), o.version]))).toEqual(Option.some(["seq 1", v1]))
    })
  })

  it.live("a timeout or a dropped connection on a conditional put is OutcomeUnknown (and it landed)", () => {
    const { direct, proxied } = viaProxy(proxy, { requestTimeout: "800 millis" })
    return Effect.gen(function*() {
      const v1 = yield* direct(Effect.flatMap(store, (s) => s.put("queue.json", bytes("seq 1"), { ifAbsent: true })))
      proxy.inject({ kind: "forward-then-delay", delayMs: 2000 }, "PUT")
      const timedOut = yield* proxied(
        Effect.flatMap(store, (s) => Effect.flip(s.put("queue.json", bytes("seq 2"), { ifMatch: v1 })))
      )
      expect(timedOut._tag).toBe("OutcomeUnknown")
      const v2 = (yield* direct(Effect.flatMap(store, (s) => s.head("queue.json")))).pipe(Option.getOrThrow).version
      expect(v2).not.toBe(v1)

      proxy.inject({ kind: "forward-then-reset" }, "PUT")
      const reset = yield* proxied(
        Effect.flatMap(store, (s) => Effect.flip(s.put("queue.json", bytes("seq 3"), { ifMatch: v2 })))
      )
      expect(reset._tag).toBe("OutcomeUnknown")
      const back = yield* direct(Effect.flatMap(store, (s) => s.get("queue.json")))
      expect(back.pipe(Option.map((o) => text(o.bytes)))).toEqual(Option.some("seq 3"))
    })
  })

  it.live("other failures are StoreFailure with a reason: 403, a missing bucket", () =>
    Effect.gen(function*() {
      const { proxied } = viaProxy(proxy)
      proxy.inject({ kind: "respond", status: 403, body: s3ErrorXml("AccessDenied", "Access Denied") }, "PUT")
      const denied = yield* proxied(
        Effect.flatMap(store, (s) => Effect.flip(s.put("q", bytes("a"), { ifAbsent: true })))
      )
      expect(denied._tag).toBe("StoreFailure")
      expect(denied.message).toContain("s3:PutObject")

      const missing = yield* withStore(
        Effect.flatMap(store, (s) => Effect.flip(s.get("q"))),
        s3Config({ bucket: "osqueue-no-such-bucket" })
      )
      expect(missing._tag).toBe("StoreFailure")
      expect(missing.message).toContain("osqueue-no-such-bucket")
    }))

  it.live("an unreachable endpoint is StoreUnavailable: refused connections carry no write", () =>
    withStore(
      Effect.gen(function*() {
        const s = yield* store
        expect(yield* errorTag(s.put("q", bytes("a"), { ifAbsent: true }))).toBe("StoreUnavailable")
        expect((yield* Effect.flip(s.get("q")))._tag).toBe("StoreUnavailable")
      }),
      s3Config({ endpoint: "http://127.0.0.1:9", readRetries: 0 })
    ))

  it.live("lists keys under a prefix, relative to the store's prefix, sorted", () =>
    withStore(Effect.gen(function*() {
      const s = yield* store
      for (const key of ["jobs/b", "jobs/a", "jobs/c/d", "other", "queue.json"]) {
        yield* s.put(key, bytes(key), { ifAbsent: true })
      }
      expect(yield* s.list("jobs/")).toEqual(["jobs/a", "jobs/b", "jobs/c/d"])
      expect(yield* s.list("")).toEqual(["jobs/a", "jobs/b", "jobs/c/d", "other", "queue.json"])
      expect(yield* s.list("nothing/")).toEqual([])
    })))

  it.live("deletes: unconditionally, at a version (a stale version is refused), absent keys are fine", () =>
    withStore(Effect.gen(function*() {
      const s = yield* store
      const v1 = yield* s.put("a", bytes("1"), { ifAbsent: true })
      const v2 = yield* s.put("a", bytes("2"), { ifMatch: v1 })
      // radosgw ignores If-Match on DELETE; the layer still refuses a stale one
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

  it.live("layerConfig reads S3_* from the environment (credentials from the SDK's chain)", () => {
    const prefix = testPrefix("s3-config")
    const env = new Map([
      ["S3_BUCKET", s3Bucket],
      ["S3_PREFIX", prefix.slice(0, -1)],
      ["S3_ENDPOINT", s3Endpoint],
      ["S3_REGION", "us-east-1"],
      ["S3_FORCE_PATH_STYLE", "true"],
      ["S3_ETAG_QUOTING", s3Quoting],
      ["S3_REQUEST_TIMEOUT", "3 seconds"]
    ])
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY }
    process.env.AWS_ACCESS_KEY_ID = process.env.OSQUEUE_TEST_S3_ACCESS_KEY ?? "test"
    process.env.AWS_SECRET_ACCESS_KEY = process.env.OSQUEUE_TEST_S3_SECRET_KEY ?? "test"
    const fromEnv = S3Store.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(env))))
    return Effect.gen(function*() {
      const s = yield* store
      const v1 = yield* s.put("queue.json", bytes("a"), { ifAbsent: true })
      yield* s.put("queue.json", bytes("b"), { ifMatch: v1 })
      // the prefix got its "/" and holds the object
      const direct = yield* withStore(Effect.flatMap(store, (d) => d.list("")), s3Config({ prefix }))
      expect(direct).toEqual(["queue.json"])
    }).pipe(
      Effect.provide(fromEnv),
      Effect.ensuring(Effect.sync(() => {
        if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID
        else process.env.AWS_ACCESS_KEY_ID = saved.id
        if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY
        else process.env.AWS_SECRET_ACCESS_KEY = saved.secret
      }))
    )
  })

  it.live("layerConfig refuses an unknown S3_ETAG_QUOTING", () =>
    Effect.gen(function*() {
      const env = new Map([["S3_BUCKET", "b"], ["S3_ETAG_QUOTING", "sometimes"]])
      const exit = yield* Effect.exit(
        Effect.provide(
          ObjectStore,
          S3Store.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(env))))
        )
      )
      expect(exit._tag).toBe("Failure")
      expect(String(exit)).toContain("S3_ETAG_QUOTING")
    }))
})

// No server needed: the SDK refuses before sending anything.
describe("S3Store configuration errors", () => {
  it.live("no region anywhere is a StoreFailure that says so, not an outage to retry", () => {
    const saved = { region: process.env.AWS_REGION, fallback: process.env.AWS_DEFAULT_REGION }
    delete process.env.AWS_REGION
    delete process.env.AWS_DEFAULT_REGION
    const { endpoint: _endpoint, region: _region, ...rest } = s3Config()
    return withStore(
      Effect.gen(function*() {
        const s = yield* store
        const read = yield* Effect.flip(s.get("q"))
        expect(read._tag).toBe("StoreFailure")
        expect(read.message.toLowerCase()).toContain("region")
        const write = yield* Effect.flip(s.put("q", bytes("a"), { ifAbsent: true }))
        expect(write._tag).toBe("StoreFailure")
      }),
      rest
    ).pipe(Effect.ensuring(Effect.sync(() => {
      if (saved.region !== undefined) process.env.AWS_REGION = saved.region
      if (saved.fallback !== undefined) process.env.AWS_DEFAULT_REGION = saved.fallback
    })))
  })
})
