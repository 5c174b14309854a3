/**
 * The REST fast path answers exactly as HttpApi does: the same requests, in the same order, to a
 * broker with the fast path and to one without (each on its own file store), must get the same
 * status, headers (but the date) and body (but timestamps), on success and on every error.
 */
import { describe, expect, it } from "@effect/vitest"
import { FileStore, type ObjectStoreShape } from "@osqueue/storage"
import { Duration, Effect } from "effect"
import { request as httpRequest } from "node:http"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { awaitLeader, type Started, startBroker, type StartOptions } from "./fixtures.js"

interface Raw {
  readonly status: number
  /** Every header as sent, lowercased, in order; but the date. */
  readonly headers: ReadonlyArray<string>
  readonly body: string
}

interface Send {
  readonly path: string
  readonly body?: string
  readonly headers?: Record<string, string>
  /** Send the body chunked (no content-length). */
  readonly chunked?: boolean
  /** null: no content-type header. */
  readonly contentType?: string | null
}

const send = (base: string, { path, body, headers = {}, chunked = false, contentType = "application/json" }: Send) =>
  Effect.async<Raw>((resume) => {
    const request = httpRequest(new URL(path, base), {
      method: "POST",
      headers: {
        ...(contentType === null ? {} : { "content-type": contentType }),
        ...(body === undefined || chunked ? {} : { "content-length": String(Buffer.byteLength(body)) }),
        ...headers
      }
    }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => {
        const headers: Array<string> = []
        for (let i = 0; i < response.rawHeaders.length; i += 2) {
          const name = response.rawHeaders[i]!.toLowerCase()
          if (name !== "date") headers.push(`${name}: ${response.rawHeaders[i + 1]}`)
        }
        resume(Effect.succeed({ status: response.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString("utf8") }))
      })
    })
    request.on("error", (error) => resume(Effect.die(error)))
    if (chunked && body !== undefined) request.write(body)
    request.end(chunked ? undefined : body)
  })

/** Times differ between two brokers, and with them nothing else (their lengths neither, at 13 digits). */
const timeless = (raw: Raw): Raw => ({ ...raw, body: raw.body.replace(/"(\w+At)":\d+/g, "\"$1\":0") })

/** So do the secrets of lease tokens (22 characters each). */
const secretless = (raw: Raw): Raw => ({ ...raw, body: raw.body.replace(/(\/\d+\/\d+\/)[\w-]{22}"/g, "$1secret\"") })

/** The lease tokens in an answer, in order. */
const tokensIn = (body: string) => Array.from(body.matchAll(/"token":"([^"]+)"/g), (match) => match[1]!)

const fileStore = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "osqueue-fastrest-"))),
  (directory) => Effect.promise(() => rm(directory, { recursive: true, force: true }))
).pipe(Effect.flatMap((directory) => FileStore.make({ directory, fsync: false })), Effect.orDie)

/** A broker with the fast path and one without, otherwise alike (leading, unless on others' stores). */
const pair = (options: Omit<StartOptions, "store" | "fastRest"> = {}, store?: readonly [ObjectStoreShape, ObjectStoreShape]) =>
  Effect.gen(function*() {
    const fast = yield* startBroker({ ...options, store: store?.[0] ?? (yield* fileStore), fastRest: true })
    if (store === undefined) yield* awaitLeader(fast)
    const slow = yield* startBroker({ ...options, store: store?.[1] ?? (yield* fileStore), fastRest: false })
    if (store === undefined) yield* awaitLeader(slow)
    /** The slow broker's token for each token the fast one gave for the same request. */
    const slowToken = new Map<string, string>()
    const forSlow = (request: Send): Send =>
      request.body === undefined ? request : {
        ...request,
        body: request.body.replace(/"token":"([^"]+)"/g, (whole, token: string) => {
          const other = slowToken.get(token)
          return other === undefined ? whole : `"token":"${other}"`
        })
      }
    /** Sends to both (with each broker's own lease tokens); expects the same answer and returns the fast one's. */
    const both = (request: Send) =>
      Effect.gen(function*() {
        const a = yield* send(fast.base, request)
        const b = yield* send(slow.base, forSlow(request))
        const slowTokens = tokensIn(b.body)
        tokensIn(a.body).forEach((token, i) => slowToken.set(token, slowTokens[i]!))
        expect(secretless(timeless(a)), `${request.path} ${request.body ?? ""}`).toEqual(secretless(timeless(b)))
        return timeless(a)
      })
    return { fast, slow, both }
  })

const json = (raw: Raw): unknown => JSON.parse(raw.body)
const jsonHeader = "content-type: application/json"

describe("REST fast path", () => {
  it.scopedLive("answers every hot route and every error as HttpApi does", () =>
    Effect.gen(function*() {
      const { fast, slow, both } = yield* pair({ maxBodyBytes: 4_096, maxPayloadBytes: 1_024 })
      const enqueue = (body: string, extra: Partial<Send> = {}) => both({ path: "/v1/jobs", body, ...extra })

      const created = yield* enqueue(JSON.stringify({ type: "t", payload: { to: "a@b.c" }, idempotencyKey: "k" }))
      expect(created.status).toBe(201)
      expect(created.headers).toContain(jsonHeader)
      expect((yield* enqueue(JSON.stringify({ type: "t", idempotencyKey: "k" }))).body).toBe(created.body)
      // a body must say it is JSON (a cross-site form cannot)
      expect(json(yield* enqueue(JSON.stringify({ type: "t", priority: 3 }), { contentType: null })))
        .toMatchObject({ _tag: "InvalidRequest", message: expect.stringContaining("content-type: application/json") })
      expect((yield* enqueue(JSON.stringify({ type: "t" }), { contentType: "text/plain; x=application/json" })).status)
        .toBe(400)
      expect(json(yield* enqueue("{\"type\": \"t\","))).toMatchObject({ _tag: "InvalidRequest" })
      expect(json(yield* enqueue(JSON.stringify({ type: 42 })))).toMatchObject({ _tag: "HttpApiDecodeError" })
      expect(json(yield* enqueue(""))).toMatchObject({ _tag: "HttpApiDecodeError" })
      expect(json(yield* enqueue("  "))).toMatchObject({ _tag: "InvalidRequest", message: expect.stringContaining("not valid JSON") })
      expect(json(yield* enqueue(JSON.stringify({ type: "t", payload: "x".repeat(5_000) })))).toMatchObject({ _tag: "PayloadTooLarge", limit: 4_096 })
      expect(json(yield* enqueue(JSON.stringify({ type: "t", payload: "x".repeat(2_000) })))).toMatchObject({ _tag: "PayloadTooLarge", limit: 1_024 })
      // what the fast path leaves to HttpApi answers alike too
      expect((yield* enqueue(JSON.stringify({ type: "streamed" }), { chunked: true })).status).toBe(201)
      expect((yield* enqueue("{\"workerId\":\"w\"}", { contentType: "application/x-www-form-urlencoded" })).status).toBe(400)

      const batch = (body: string) => both({ path: "/v1/jobs/batch", body })
      expect((yield* batch(JSON.stringify({ jobs: [{ type: "t" }, { type: "t", delayMs: 60_000 }] }))).status).toBe(201)
      expect((yield* batch(JSON.stringify({ jobs: [] }))).body).toBe("[]")
      expect(json(yield* batch(JSON.stringify({ jobs: "x" })))).toMatchObject({ _tag: "HttpApiDecodeError" })
      expect((yield* batch("[")).status).toBe(400)

      // claim is not a fast route: the tokens come from HttpApi
      const claimed = yield* both({ path: "/v1/jobs/claim", body: JSON.stringify({ workerId: "w", max: 3 }) })
      const [a, b, c] = (json(claimed) as Array<{ job: { id: string }; token: string }>)
      const complete = (id: string, body: string) => both({ path: `/v1/jobs/${id}/complete`, body })
      expect((yield* complete(a!.job.id, JSON.stringify({ token: a!.token, result: { ok: 1 } }))).status).toBe(200)
      expect(json(yield* complete(a!.job.id, JSON.stringify({ token: a!.token })))).toMatchObject({ _tag: "LeaseLost" })
      expect(json(yield* complete(b!.job.id, JSON.stringify({ token: c!.token })))).toMatchObject({ _tag: "InvalidRequest" })
      expect(json(yield* complete(b!.job.id, JSON.stringify({ token: "not-a-token" })))).toMatchObject({ _tag: "HttpApiDecodeError" })
      expect((yield* complete("job-999", JSON.stringify({ token: "job-999/1/1" }))).status).toBeGreaterThanOrEqual(400)
      // the router refuses ids over 100 characters before the schema's 128 can
      expect((yield* complete("j".repeat(100), JSON.stringify({ token: "x/1/1" }))).status).toBe(400)
      expect((yield* complete("j".repeat(101), JSON.stringify({ token: "x/1/1" }))).status).toBe(404)
      expect((yield* complete(b!.job.id, "{")).status).toBe(400)
      expect((yield* complete(b!.job.id.replace("-", "%2D"), JSON.stringify({ token: b!.token }))).status).toBe(200)

      const completeMany = (body: string) => both({ path: "/v1/jobs/batch/complete", body })
      const outcomes = json(yield* completeMany(JSON.stringify({ items: [{ token: c!.token, result: 1 }, { token: a!.token }] })))
      expect(outcomes).toMatchObject([{ _tag: "Right" }, { _tag: "Left", left: { _tag: "LeaseLost" } }])
      expect(json(yield* completeMany(JSON.stringify({ items: [] })))).toMatchObject({ _tag: "HttpApiDecodeError" })
      expect(json(yield* completeMany("{\"items\":"))).toMatchObject({ _tag: "InvalidRequest" })

      // single calls made together are gathered into one submit, and each still answered on its own
      const together = (base: string) =>
        Effect.all(
          Array.from({ length: 12 }, (_, i) =>
            send(base, { path: "/v1/jobs", body: JSON.stringify({ type: "g", payload: i === 5 ? "x".repeat(2_000) : i }) })),
          { concurrency: "unbounded" }
        ).pipe(Effect.map((answers) => answers.map((answer) => [answer.status, (json(answer) as { payload?: unknown }).payload])))
      const gathered = yield* together(fast.base)
      expect(gathered).toEqual(yield* together(slow.base))
      expect(gathered.map(([status]) => status)).toEqual(Array.from({ length: 12 }, (_, i) => i === 5 ? 413 : 201))

      // the other routes still answer on the fast broker
      expect((yield* send(fast.base, { path: "/v1/jobs/claim", body: JSON.stringify({ workerId: "w" }) })).status).toBe(200)
      const stats = yield* Effect.promise(() => fetch(`${fast.base}/v1/stats`).then((r) => r.json()))
      expect(stats).toMatchObject({ counts: { completed: 3 } })
      // every request to a hot route above but the chunked, untyped, text, form, 101-character and escaped ones
      expect(fast.fastAnswers()).toBe(22 + 12)
      expect(slow.fastAnswers()).toBe(0)
    }))

  it.scopedLive("with OSQUEUE_TOKEN: 401 with WWW-Authenticate, the same on both paths", () =>
    Effect.gen(function*() {
      const { both, fast } = yield* pair({ token: "secret" })
      const none = yield* both({ path: "/v1/jobs", body: JSON.stringify({ type: "t" }) })
      expect(none.status).toBe(401)
      expect(none.headers).toContain("www-authenticate: Bearer")
      const wrong = yield* both({ path: "/v1/jobs/batch/complete", body: "{}", headers: { authorization: "Bearer nope" } })
      expect(json(wrong)).toEqual({ _tag: "Unauthorized", reason: "the bearer token is wrong" })
      expect((yield* both({ path: "/v1/jobs/job-1/complete", body: "{}", headers: { authorization: "Basic x" } })).status).toBe(401)
      const ok = yield* both({ path: "/v1/jobs", body: JSON.stringify({ type: "t" }), headers: { authorization: "Bearer secret" } })
      expect(ok.status).toBe(201)
      expect(fast.fastAnswers()).toBe(4)
    }))

  it.scopedLive("a follower answers 421 NotLeader with the leader's URL on both paths", () =>
    Effect.gen(function*() {
      const stores = [yield* fileStore, yield* fileStore] as const
      const leaders = yield* pair({ url: "http://leader.test" }, stores)
      yield* awaitLeader(leaders.fast)
      yield* awaitLeader(leaders.slow)
      const followers = yield* pair({ url: "http://follower.test" }, stores)
      expect((yield* followers.fast.election.role)._tag).toBe("Follower")
      for (const [path, body] of [
        ["/v1/jobs", { type: "t" }],
        ["/v1/jobs/batch", { jobs: [{ type: "t" }] }],
        ["/v1/jobs/job-1/complete", { token: "job-1/1/1" }],
        ["/v1/jobs/batch/complete", { items: [{ token: "job-1/1/1" }] }]
      ] as const) {
        const refused = yield* followers.both({ path, body: JSON.stringify(body) })
        expect(refused.status).toBe(421)
        expect(json(refused)).toEqual({ _tag: "NotLeader", leaderUrl: "http://leader.test" })
      }
      expect(followers.fast.fastAnswers()).toBe(4)
    }))

  it.scopedLive("past the pending cap: 429 with Retry-After on both paths, batch completion included", () =>
    Effect.gen(function*() {
      const engine = { maxPending: 2, minCommitInterval: Duration.millis(200) }
      const fast = yield* startBroker({ store: yield* fileStore, engine, fastRest: true })
      const slow = yield* startBroker({ store: yield* fileStore, engine, fastRest: false })
      yield* awaitLeader(fast)
      yield* awaitLeader(slow)
      const burst = (broker: Started, path: string, body: unknown) =>
        Effect.all(Array.from({ length: 40 }, () => send(broker.base, { path, body: JSON.stringify(body) })), {
          concurrency: "unbounded"
        }).pipe(Effect.map((answers) => answers.find((answer) => answer.status === 429)))
      for (const [path, body] of [
        ["/v1/jobs", { type: "t" }],
        ["/v1/jobs/batch/complete", { items: [{ token: "job-1/1/1" }] }]
      ] as const) {
        const answers = [yield* burst(fast, path, body), yield* burst(slow, path, body)]
        for (const answer of answers) {
          expect(answer, path).toBeDefined()
          expect(json(answer!)).toMatchObject({ _tag: "Overloaded", retryAfterMs: expect.any(Number) })
        }
        // the same headers, Retry-After included, with values that may differ
        const names = answers.map((answer) => answer!.headers.map((header) => header.split(":")[0]))
        expect(names[0]).toContain("retry-after")
        expect(names[0]).toEqual(names[1])
      }
    }))
})
