/**
 * The broker's HTTP edge under requests no client library would send, written byte by byte on
 * raw sockets: unknown methods and routes, stalled and lying bodies, upgrade requests that hang
 * up, WebSocket frames past the body limit, requests from other sites. Each gets a tagged 4xx (or
 * the connection closed, for WebSocket frames) in bounded time, and the broker keeps serving.
 */
import { describe, expect, it } from "@effect/vitest"
import { BrokerConfig } from "@osqueue/broker"
import { Chunk, Duration, Effect, Fiber, Stream } from "effect"
import { request as httpRequest } from "node:http"
import * as net from "node:net"
import { awaitLeader, rest, rpcHttp, rpcWs, startBroker, type Started } from "./fixtures.js"

interface Exchange {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  /** Milliseconds from the request's first byte to the answer (or to giving up). */
  readonly ms: number
  /** The broker closed the connection. */
  readonly closed: boolean
}

const portOf = (broker: Started) => Number(new URL(broker.base).port)

const parse = (bytes: Buffer, ms: number, closed: boolean): Exchange => {
  const text = bytes.toString("latin1")
  const end = text.indexOf("\r\n\r\n")
  const head = end < 0 ? text : text.slice(0, end)
  const [statusLine = "", ...lines] = head.split("\r\n")
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(":")
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0)
  return {
    status,
    headers,
    body: end < 0 ? "" : bytes.subarray(Buffer.byteLength(text.slice(0, end + 4), "latin1")).toString("utf8"),
    ms,
    closed
  }
}

/** Whether `bytes` hold a whole answer (its headers, and as much body as they declare; none to a HEAD, or with a 204). */
const complete = (bytes: Buffer, head: boolean): boolean => {
  const end = bytes.indexOf("\r\n\r\n")
  if (end < 0) return false
  if (head || /^HTTP\/1\.1 (101|204|304)/.test(bytes.toString("latin1", 0, 12))) return true
  const length = /\r\ncontent-length: *(\d+)/i.exec(bytes.subarray(0, end).toString("latin1"))?.[1]
  return length !== undefined && bytes.length - end - 4 >= Number(length)
}

/**
 * Writes `request` on a fresh connection and reads the first answer; `untilClosed` also waits
 * for the broker to close the connection. Gives up after `timeoutMs` (status 0 if nothing came).
 */
const exchange = (
  broker: Started,
  request: string | Buffer,
  options: { readonly untilClosed?: boolean; readonly timeoutMs?: number } = {}
) =>
  Effect.async<Exchange>((resume) => {
    const socket = net.connect(portOf(broker), "127.0.0.1")
    const started = Date.now()
    let received = Buffer.alloc(0)
    let answeredAt: number | undefined
    let done = false
    const finish = (closed: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed(parse(received, (answeredAt ?? Date.now()) - started, closed)))
    }
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 15_000)
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (answeredAt === undefined && complete(received, String(request).startsWith("HEAD "))) {
        answeredAt = Date.now()
        if (options.untilClosed !== true) finish(false)
      }
    })
    socket.on("close", () => finish(true))
    socket.on("error", () => undefined)
    socket.write(request)
    return Effect.sync(() => socket.destroy())
  })

const json = (answer: Exchange): unknown => JSON.parse(answer.body)

const get = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: broker\r\n${extra}\r\n`

const post = (path: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }) =>
  `POST ${path} HTTP/1.1\r\nHost: broker\r\n${
    Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("")
  }` +
  `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`

/** A request with headers as a browser sends them (fetch cannot set `Origin`). */
const call = (
  broker: Started,
  method: string,
  path: string,
  options: { readonly headers?: Record<string, string>; readonly body?: string } = {}
) =>
  Effect.async<{ status: number; headers: Record<string, string | Array<string> | undefined>; body: string }>(
    (resume) => {
      const request = httpRequest(
        new URL(path, broker.base),
        { method, headers: options.headers ?? {} },
        (response) => {
          const chunks: Array<Buffer> = []
          response.on("data", (chunk: Buffer) => chunks.push(chunk))
          response.on("end", () =>
            resume(
              Effect.succeed({
                status: response.statusCode ?? 0,
                headers: response.headers,
                body: Buffer.concat(chunks).toString("utf8")
              })
            ))
        }
      )
      request.on("error", (error) => resume(Effect.die(error)))
      request.end(options.body)
    }
  )

const jobCount = (broker: Started) =>
  rest(broker.base, "GET", "/v1/stats").pipe(
    Effect.map((reply) => (reply.body as { enqueuedTotal: number }).enqueuedTotal)
  )

describe("methods and routes", () => {
  it.scopedLive("an unknown method is 405 with Allow, an unknown route 404 naming the path, a known path's other methods 405", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker({ token: "secret" })
      yield* awaitLeader(broker)

      // Methods Node parses but no route takes, and one it cannot parse at all.
      for (const method of ["TRACE", "PUT", "DELETE", "PATCH", "PROPFIND", "CONNECT_ME"]) {
        const answer = yield* exchange(broker, `${method} /v1/stats HTTP/1.1\r\nHost: broker\r\n\r\n`)
        expect(answer.status, method).toBe(405)
        expect(answer.headers["allow"], method).toMatch(/^GET, HEAD/)
        expect(json(answer), method).toMatchObject({ _tag: "MethodNotAllowed", method, path: "/v1/stats" })
      }
      const trace = yield* exchange(broker, `TRACE /rpc HTTP/1.1\r\nHost: broker\r\ncontent-length: 2\r\n\r\n{}`)
      expect(trace.status).toBe(405)
      expect(trace.headers["allow"]).toBe("POST")

      const jobs = yield* exchange(broker, `PUT /v1/jobs HTTP/1.1\r\nHost: broker\r\ncontent-length: 2\r\n\r\n{}`)
      expect(jobs.status).toBe(405)
      expect(jobs.headers["allow"]).toBe("GET, HEAD, POST")
      expect(json(jobs)).toMatchObject({ _tag: "MethodNotAllowed", allowed: ["GET", "HEAD", "POST"] })
      const pause = yield* exchange(broker, get("/v1/pause"))
      expect(pause.status).toBe(405)
      expect(pause.headers["allow"]).toBe("POST")

      for (const path of ["/nope", "/v1/nope", "/v1/jobs/job-1/nope", "/rpc/nope"]) {
        const answer = yield* exchange(broker, get(path))
        expect(answer.status, path).toBe(404)
        expect(json(answer), path).toMatchObject({ _tag: "NoSuchRoute", method: "GET", path })
      }
      // named as sent, before any normalization
      expect(json(yield* exchange(broker, get("/%2e%2e/state")))).toMatchObject({
        _tag: "NoSuchRoute",
        path: "/%2e%2e/state"
      })
      // the WebSocket path without an upgrade says what it takes
      const plain = yield* exchange(broker, get("/rpc/ws?token=secret"))
      expect(plain.status).toBe(400)
      expect(json(plain)).toMatchObject({ _tag: "InvalidRequest", message: expect.stringContaining("WebSocket") })
      const long = yield* exchange(broker, get(`/${"x".repeat(5_000)}`))
      expect(long.status).toBe(404)
      expect((json(long) as { path: string }).path.length).toBeLessThan(300)

      // what Node's parser refuses is answered by the server, tagged, and the connection closed
      const overflow = yield* exchange(broker, get("/v1/stats", `x-big: ${"x".repeat(20_000)}\r\n`), {
        untilClosed: true
      })
      expect(overflow).toMatchObject({ status: 431, closed: true })
      expect(json(overflow)).toMatchObject({ _tag: "InvalidRequest" })
      const badChunk = yield* exchange(
        broker,
        "POST /v1/jobs HTTP/1.1\r\nHost: broker\r\nauthorization: Bearer secret\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        { untilClosed: true }
      )
      expect(badChunk).toMatchObject({ status: 400, closed: true })
      expect(json(badChunk)).toMatchObject({
        _tag: "InvalidRequest",
        message: expect.stringContaining("not valid HTTP/1.1")
      })

      // OPTIONS says what a path takes
      const options = yield* exchange(broker, `OPTIONS /v1/jobs HTTP/1.1\r\nHost: broker\r\n\r\n`)
      expect(options.status).toBe(204)
      expect(options.headers["allow"]).toBe("GET, HEAD, POST")

      // HEAD of a GET route is served
      expect((yield* exchange(broker, `HEAD /healthz HTTP/1.1\r\nHost: broker\r\n\r\n`)).status).toBe(200)
      expect((yield* rest(broker.base, "GET", "/healthz")).status).toBe(200)
    }))

  it.scopedLive("a raw ';' in a path is refused before routing: /v1/jobs/ID;x never acts on job ID", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const job = (yield* rest(broker.base, "POST", "/v1/jobs", { type: "t", delayMs: 600_000 })).body as { id: string }

      for (const method of ["DELETE", "GET"]) {
        const answer = yield* exchange(broker, `${method} /v1/jobs/${job.id};x HTTP/1.1\r\nHost: broker\r\n\r\n`)
        expect(answer.status, method).toBe(400)
        expect(json(answer), method).toMatchObject({ _tag: "InvalidRequest", message: expect.stringContaining("%3B") })
      }
      expect((yield* rest(broker.base, "GET", `/v1/jobs/${job.id}`)).status).toBe(200)
      // the router would have served the dashboard's page, and an upgrade the RPC socket
      expect((yield* exchange(broker, get("/;//B//"))).status).toBe(400)
      const upgrade = yield* exchange(
        broker,
        get(
          "/rpc/ws;x",
          "connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        ),
        { untilClosed: true }
      )
      expect(upgrade.status).toBe(400)
      // a ';' in the query is the query's
      const query = yield* exchange(broker, get("/v1/jobs?state=queued;x"))
      expect(JSON.stringify(json(query))).not.toContain("%3B")
    }))

  it.scopedLive("a bad body on every mutation is a tagged 4xx, never a 500 or an empty answer", () =>
    Effect.gen(function*() {
      {
        const broker = yield* startBroker()
        yield* awaitLeader(broker)
        const paths = [
          "/v1/jobs",
          "/v1/jobs/batch",
          "/v1/jobs/claim",
          "/v1/jobs/job-1/heartbeat",
          "/v1/jobs/job-1/complete",
          "/v1/jobs/batch/complete",
          "/v1/jobs/job-1/fail",
          "/v1/jobs/job-1/release",
          "/v1/dead/retry",
          "/v1/pause",
          "/v1/resume"
        ]
        const bodies = [
          "[".repeat(100_000) + "]".repeat(100_000),
          "[".repeat(60) + "]".repeat(60),
          "[1,2]",
          "\"x\"",
          "42",
          "{\"typ\":\"email\"}",
          "  ",
          "{",
          "{\"token\":[[[[]]]],\"type\":{\"a\":[]}}"
        ]
        for (const path of paths) {
          for (const body of bodies) {
            const answer = yield* exchange(broker, post(path, body))
            const label = `${path} ${body.slice(0, 20)}`
            expect(answer.status, label).toBeGreaterThanOrEqual(400)
            expect(answer.status, label).toBeLessThan(500)
            expect(json(answer), label).toMatchObject({ _tag: expect.any(String) })
          }
        }
        // unknown fields are refused by name, not ignored (a typo must not pause everything)
        const typo = yield* exchange(broker, post("/v1/pause", "{\"typ\":\"email\"}"))
        expect(typo.status).toBe(400)
        expect(typo.body).toContain("typ")
        expect(yield* rest(broker.base, "GET", "/v1/stats")).toMatchObject({
          status: 200,
          body: { paused: { all: false } }
        })
        expect(yield* jobCount(broker)).toBe(0)
      }
    }))
})

describe("timeouts", () => {
  const fast = { headersTimeoutMs: 500, requestTimeoutMs: 1_000, keepAliveTimeoutMs: 1_000 }

  it.scopedLive("a stalled request line, a body shorter than declared, a chunk that never ends: 408 RequestTimeout and the connection closed", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker({ config: fast })
      yield* awaitLeader(broker)
      const stalled = [
        "GET /v1/stats HTTP/1.1\r\nHost: broker\r\n",
        "POST /v1/jobs HTTP/1.1\r\nHost: broker\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"type\":",
        "POST /v1/jobs/claim HTTP/1.1\r\nHost: broker\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        "POST /rpc HTTP/1.1\r\nHost: broker\r\ncontent-type: application/ndjson\r\ncontent-length: 100\r\n\r\n{",
        "POST /v1/jobs HTTP/1.1\r\nHost: broker\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n{\"a\":"
      ]
      const answers = yield* Effect.all(stalled.map((request) => exchange(broker, request, { untilClosed: true })), {
        concurrency: "unbounded"
      })
      for (const [i, answer] of answers.entries()) {
        expect(answer.status, stalled[i]).toBe(408)
        expect(json(answer), stalled[i]).toMatchObject({ _tag: "RequestTimeout" })
        expect(answer.ms, stalled[i]).toBeLessThan(3_000)
        expect(answer.closed, stalled[i]).toBe(true)
      }
      expect(yield* jobCount(broker)).toBe(0)
    }))

  it.scopedLive("with the default settings, a body shorter than declared is answered within 10 s", () =>
    Effect.gen(function*() {
      expect(BrokerConfig.defaults.requestTimeoutMs).toBeLessThan(9_000)
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const answer = yield* exchange(
        broker,
        "POST /v1/jobs HTTP/1.1\r\nHost: broker\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        { untilClosed: true }
      )
      expect(answer.status).toBe(408)
      expect(answer.ms).toBeLessThan(10_000)
    }))

  it.scopedLive("answers may take longer than the request timeouts: long-poll claims, Watch over HTTP, an idle WebSocket", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker({ config: fast })
      yield* awaitLeader(broker)
      const http = yield* rpcHttp(broker.base)
      const ws = yield* rpcWs(broker.base)
      const started = Date.now()
      const restClaim = yield* rest(broker.base, "POST", "/v1/jobs/claim", { workerId: "w", waitMs: 2_500 }).pipe(
        Effect.fork
      )
      const rpcClaim = yield* http.Claim({ workerId: "w", waitMs: 2_500 }).pipe(Effect.fork)
      const watch = yield* http.Watch({}).pipe(
        Stream.filter((event) => event._tag === "Job"),
        Stream.take(1),
        Stream.runCollect,
        Effect.fork
      )
      expect(yield* Fiber.join(restClaim)).toMatchObject({ status: 200, body: [] })
      expect(yield* Fiber.join(rpcClaim)).toEqual([])
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_400)
      // the WebSocket sat idle past every timeout, and the Watch stream had nothing to say
      yield* ws.Enqueue({ type: "late" })
      const events = Chunk.toReadonlyArray(yield* Fiber.join(watch).pipe(Effect.timeout(Duration.seconds(5))))
      expect(events).toMatchObject([{ _tag: "Job", event: { kind: "enqueued", type: "late" } }])
    }))

  it.scopedLive("a long-poll claim whose client hangs up is dropped: it takes no job, and is counted interrupted", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      // metrics are the process's: other tests' claims count in them too
      const claims = (outcome: string) =>
        Effect.map(rest(broker.base, "GET", "/metrics"), (reply) =>
          Number(
            new RegExp(`osqueue_requests_total\\{operation="claim",outcome="${outcome}"\\} (\\d+)`).exec(
              reply.body as string
            )?.[1] ?? 0
          ))
      const before = { interrupted: yield* claims("interrupted"), ok: yield* claims("ok") }
      const claim = JSON.stringify({ workerId: "gone", waitMs: 30_000 })
      // each client gives up after 300 ms and closes its connection, unanswered
      const answers = yield* Effect.all([
        exchange(broker, post("/v1/jobs/claim", claim), { timeoutMs: 300 }),
        exchange(
          broker,
          post("/rpc", `{"_tag":"Request","id":"1","tag":"Claim","payload":${claim},"headers":[]}\n`, {
            "content-type": "application/ndjson"
          }),
          { timeoutMs: 300 }
        )
      ], { concurrency: "unbounded" })
      expect(answers.map((answer) => answer.status)).toEqual([0, 0])
      yield* Effect.sleep(Duration.millis(100))
      const job = (yield* rest(broker.base, "POST", "/v1/jobs", { type: "t" })).body as { id: string }
      yield* Effect.sleep(Duration.millis(300))
      expect((yield* rest(broker.base, "GET", `/v1/jobs/${job.id}`)).body).toMatchObject({ state: "queued" })
      expect(yield* claims("interrupted")).toBe(before.interrupted + 2)
      expect(yield* claims("ok")).toBe(before.ok)
    }))
})

describe("upgrade requests", () => {
  it.scopedLive("a client that asks for an upgrade on a large public answer and hangs up does not take the broker down", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker({ token: "secret" })
      yield* awaitLeader(broker)
      const hangUp = (path: string) =>
        Effect.async<void>((resume) => {
          const socket = net.connect(portOf(broker), "127.0.0.1")
          socket.on("error", () => undefined)
          socket.once("data", () => {
            socket.resetAndDestroy()
            resume(Effect.void)
          })
          socket.write(get(path, "Connection: Upgrade\r\nUpgrade: websocket\r\n"))
        })
      for (let i = 0; i < 10; i++) {
        yield* hangUp("/docs")
        yield* hangUp("/v1/openapi.json")
      }
      yield* Effect.sleep(Duration.millis(200))
      expect((yield* rest(broker.base, "GET", "/healthz")).status).toBe(200)
      // and the same request read to its end is answered in full
      const docs = yield* exchange(broker, get("/v1/openapi.json", "Connection: Upgrade\r\nUpgrade: websocket\r\n"))
      expect(docs.status).toBe(200)
      expect(json(docs)).toMatchObject({ openapi: expect.any(String) })
    }))
})

/** The start of a WebSocket session on /rpc/ws, by hand. */
const handshake = (origin?: string) =>
  "GET /rpc/ws HTTP/1.1\r\nHost: broker\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
  (origin === undefined ? "" : `Origin: ${origin}\r\n`) + "\r\n"

/** A client frame's header (masked with a zero key, so the payload goes as is) for `length` bytes. */
const frameHeader = (opcode: number, final: boolean, length: number): Buffer => {
  const first = (final ? 0x80 : 0) | opcode
  if (length < 126) return Buffer.from([first, 0x80 | length, 0, 0, 0, 0])
  if (length < 65_536) return Buffer.from([first, 0x80 | 126, length >> 8, length & 0xff, 0, 0, 0, 0])
  const header = Buffer.alloc(14)
  header[0] = first
  header[1] = 0x80 | 127
  header.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
  header.writeUInt32BE(length % 2 ** 32, 6)
  return header
}

const frame = (opcode: number, payload: Buffer | string, final = true) => {
  const bytes = Buffer.from(payload)
  return Buffer.concat([frameHeader(opcode, final, bytes.length), bytes])
}

interface Session {
  readonly write: (bytes: Buffer) => void
  /** Every byte received after the 101 answer. */
  readonly received: () => Buffer
  readonly closed: () => boolean
  readonly bytesWritten: () => number
  readonly destroy: () => void
}

const openSession = (broker: Started) =>
  Effect.acquireRelease(
    Effect.async<Session>((resume) => {
      const socket = net.connect(portOf(broker), "127.0.0.1")
      let received = Buffer.alloc(0)
      let upgraded = false
      let closed = false
      socket.on("error", () => undefined)
      socket.on("close", () => {
        closed = true
      })
      socket.on("data", (chunk: Buffer) => {
        received = Buffer.concat([received, chunk])
        if (upgraded) return
        const end = received.indexOf("\r\n\r\n")
        if (end < 0) return
        expect(received.subarray(0, 12).toString()).toBe("HTTP/1.1 101")
        upgraded = true
        received = received.subarray(end + 4)
        resume(Effect.succeed({
          write: (bytes) => void socket.write(bytes),
          received: () => received,
          closed: () => closed,
          bytesWritten: () => socket.bytesWritten,
          destroy: () => socket.destroy()
        }))
      })
      socket.write(handshake())
    }),
    (session) => Effect.sync(session.destroy)
  )

/** The close code of the first close frame the server sent, if any. */
const closeCode = (bytes: Buffer): number | undefined => {
  let at = 0
  while (at + 2 <= bytes.length) {
    const opcode = bytes[at]! & 0x0f
    let length = bytes[at + 1]! & 0x7f
    let start = at + 2
    if (length === 126) {
      length = bytes.readUInt16BE(at + 2)
      start += 2
    } else if (length === 127) {
      length = bytes.readUInt32BE(at + 6)
      start += 8
    }
    if (opcode === 0x8) return bytes.readUInt16BE(start)
    at = start + length
  }
  return undefined
}

/** Waits (up to 5 s) until `condition` holds. */
const waitUntil = (condition: () => boolean) =>
  Effect.async<void>((resume) => {
    const timer = setInterval(() => {
      if (condition()) {
        clearInterval(timer)
        resume(Effect.void)
      }
    }, 20)
    return Effect.sync(() => clearInterval(timer))
  }).pipe(Effect.timeout(Duration.seconds(5)), Effect.orDie)

describe("WebSocket messages", () => {
  const limit = 1024 * 1024

  it.scopedLive("a frame declaring more than OSQUEUE_MAX_BODY_BYTES is refused with 1009 when its header arrives, not once it is read", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker({ maxBodyBytes: limit })
      yield* awaitLeader(broker)
      for (const declared of [20 * 1024 * 1024, 90 * 1024 * 1024, limit + 1]) {
        const session = yield* openSession(broker)
        session.write(frameHeader(0x1, true, declared))
        session.write(Buffer.alloc(64 * 1024, 0x20))
        yield* waitUntil(session.closed)
        expect(closeCode(session.received()), String(declared)).toBe(1009)
        expect(session.bytesWritten()).toBeLessThan(limit)
      }
      // a message in fragments is counted whole
      const fragmented = yield* openSession(broker)
      fragmented.write(frame(0x1, Buffer.alloc(600 * 1024, 0x20), false))
      fragmented.write(frameHeader(0x0, true, 600 * 1024))
      yield* waitUntil(fragmented.closed)
      expect(closeCode(fragmented.received())).toBe(1009)

      // messages under the limit, split into fragments with a ping between, still reach the RPC server
      const ok = yield* openSession(broker)
      const message = JSON.stringify({ _tag: "Request", id: "1", tag: "Stats", payload: {}, headers: [] })
      ok.write(Buffer.concat([
        frame(0x1, message.slice(0, 10), false),
        frame(0x9, "ping"),
        frame(0x0, message.slice(10), true)
      ]))
      yield* waitUntil(() => ok.received().includes("\"requestId\":\"1\""))
      expect(ok.closed()).toBe(false)
      // and the typed client works as ever
      const ws = yield* rpcWs(broker.base)
      expect((yield* ws.Stats()).counts.queued).toBe(0)
    }))
})

describe("cross-site requests", () => {
  it.scopedLive("mutations need a JSON content type; an empty body may go without one", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const enqueue = JSON.stringify({ type: "t" })
      for (
        const type of [
          undefined,
          "text/plain",
          "application/x-www-form-urlencoded",
          "multipart/form-data; boundary=x",
          "text/plain; a=application/json"
        ]
      ) {
        const answer = yield* exchange(
          broker,
          post("/v1/jobs", enqueue, type === undefined ? {} : { "content-type": type })
        )
        expect(answer.status, type).toBe(400)
        expect(json(answer), type).toMatchObject({
          _tag: "InvalidRequest",
          message: expect.stringContaining("application/json")
        })
      }
      // RPC over HTTP: a text/plain Enqueue is answered as a failure of that request, and does not run
      const line = JSON.stringify({ _tag: "Request", id: "3", tag: "Enqueue", payload: { type: "t" }, headers: [] }) +
        "\n"
      const rpc = yield* exchange(broker, post("/rpc", line, { "content-type": "text/plain" }))
      expect(rpc.status).toBe(400)
      expect(JSON.parse(rpc.body)).toMatchObject({
        requestId: "3",
        exit: { cause: { error: { _tag: "InvalidRequest" } } }
      })
      expect(yield* jobCount(broker)).toBe(0)

      expect((yield* exchange(broker, post("/v1/pause", "", {}))).status).toBe(200)
      expect((yield* exchange(broker, post("/v1/resume", "", {}))).status).toBe(200)
      expect(
        (yield* exchange(broker, post("/v1/jobs", enqueue, { "content-type": "application/json; charset=utf-8" })))
          .status
      )
        .toBe(201)
      expect((yield* exchange(broker, post("/rpc", line, { "content-type": "application/ndjson" }))).status).toBe(200)
      expect(yield* jobCount(broker)).toBe(2)
    }))

  it.scopedLive("by default only pages of the broker's own host may mutate or open a WebSocket; clients without Origin pass", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const own = broker.base
      const host = new URL(broker.base).host
      const headers = (origin?: string) => ({
        "content-type": "application/json",
        ...(origin === undefined ? {} : { origin })
      })
      const body = JSON.stringify({ type: "t" })

      const evil = yield* call(broker, "POST", "/v1/jobs", { headers: headers("http://evil.example"), body })
      expect(evil.status).toBe(403)
      expect(JSON.parse(evil.body)).toMatchObject({
        _tag: "Forbidden",
        reason: expect.stringContaining("OSQUEUE_ALLOWED_ORIGINS")
      })
      expect(evil.headers["access-control-allow-origin"]).toBeUndefined()
      // the same port under another name is another host
      const port = new URL(broker.base).port
      const renamed = yield* call(broker, "POST", "/v1/jobs", { headers: headers(`http://localhost:${port}`), body })
      expect(renamed.status).toBe(403)
      const rpc = yield* call(broker, "POST", "/rpc", {
        headers: { "content-type": "application/ndjson", origin: "http://evil.example" },
        body: JSON.stringify({ _tag: "Request", id: "4", tag: "Enqueue", payload: { type: "t" }, headers: [] }) + "\n"
      })
      expect(rpc.status).toBe(403)
      expect(JSON.parse(rpc.body)).toMatchObject({ requestId: "4", exit: { cause: { error: { _tag: "Forbidden" } } } })
      const preflight = yield* call(broker, "OPTIONS", "/v1/jobs", {
        headers: { origin: "http://evil.example", "access-control-request-method": "POST" }
      })
      expect(preflight.status).toBe(403)
      expect(preflight.headers["access-control-allow-origin"]).toBeUndefined()
      const upgrade = yield* exchange(broker, handshake("http://evil.example"))
      expect(upgrade.status).toBe(403)
      expect(json(upgrade)).toMatchObject({ _tag: "Forbidden" })
      expect(yield* jobCount(broker)).toBe(0)

      // reads are served (the browser keeps them from the other site's page: no CORS headers)
      const read = yield* call(broker, "GET", "/v1/stats", { headers: { origin: "http://evil.example" } })
      expect(read.status).toBe(200)
      expect(read.headers["access-control-allow-origin"]).toBeUndefined()

      expect((yield* call(broker, "POST", "/v1/jobs", { headers: headers(own), body })).status).toBe(201)
      expect((yield* call(broker, "POST", "/v1/jobs", { headers: { ...headers(own), host }, body })).status).toBe(201)
      expect((yield* call(broker, "POST", "/v1/jobs", { headers: headers(), body })).status).toBe(201)
      // another broker on the same machine (a dashboard opened on a follower sends its mutations to the leader)
      const peer = yield* call(broker, "POST", "/v1/jobs", { headers: headers("http://127.0.0.1:1"), body })
      expect(peer.status).toBe(201)
      expect(peer.headers["access-control-allow-origin"]).toBe("http://127.0.0.1:1")
      expect(
        (yield* call(broker, "POST", "/v1/jobs", { headers: headers(own), body }))
          .headers["access-control-allow-origin"]
      )
        .toBeUndefined()
      expect(
        (yield* exchange(broker, handshake(own).replace("Host: broker", `Host: ${host}`), { timeoutMs: 2_000 })).status
      )
        .toBe(101)
      expect((yield* exchange(broker, handshake(), { timeoutMs: 2_000 })).status).toBe(101)
      expect(yield* jobCount(broker)).toBe(5)
    }))

  it.scopedLive("OSQUEUE_ALLOWED_ORIGINS: the listed origins (or any, with *) may, and get CORS answers", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker({ token: "secret", config: { allowedOrigins: ["http://app.example"] } })
      yield* awaitLeader(broker)
      const origin = "http://app.example"
      const preflight = yield* call(broker, "OPTIONS", "/v1/jobs", {
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type, traceparent"
        }
      })
      expect(preflight.status).toBe(204)
      expect(preflight.headers).toMatchObject({
        "access-control-allow-origin": origin,
        "access-control-allow-methods": "GET, HEAD, POST",
        "access-control-allow-headers": "authorization, content-type, traceparent",
        vary: "origin"
      })
      const headers = { origin, "content-type": "application/json", authorization: "Bearer secret" }
      const created = yield* call(broker, "POST", "/v1/jobs", { headers, body: JSON.stringify({ type: "t" }) })
      expect(created.status).toBe(201)
      expect(created.headers["access-control-allow-origin"]).toBe(origin)
      // errors too, so the page can read why
      const refused = yield* call(broker, "POST", "/v1/jobs", {
        headers: { ...headers, authorization: "Bearer wrong" },
        body: "{}"
      })
      expect(refused.status).toBe(401)
      expect(refused.headers["access-control-allow-origin"]).toBe(origin)
      expect(refused.headers["access-control-expose-headers"]).toContain("www-authenticate")
      const invalid = yield* call(broker, "POST", "/v1/jobs", { headers, body: JSON.stringify({ type: 1 }) })
      expect(invalid.status).toBe(400)
      expect(invalid.headers["access-control-allow-origin"]).toBe(origin)
      expect(
        (yield* call(broker, "POST", "/v1/jobs", {
          headers: { ...headers, origin: "http://other.example" },
          body: "{}"
        })).status
      )
        .toBe(403)
      expect(
        (yield* exchange(broker, handshake(origin).replace("\r\n\r\n", "\r\nAuthorization: Bearer secret\r\n\r\n"), {
          timeoutMs: 2_000
        })).status
      )
        .toBe(101)

      const open = yield* startBroker({ config: { allowedOrigins: ["*"] } })
      yield* awaitLeader(open)
      const anyone = yield* call(open, "POST", "/v1/jobs", {
        headers: { origin: "http://anyone.example", "content-type": "application/json" },
        body: JSON.stringify({ type: "t" })
      })
      expect(anyone.status).toBe(201)
      expect(anyone.headers["access-control-allow-origin"]).toBe("http://anyone.example")
    }))
})

describe("routes whose body is optional", () => {
  /** A POST written as a client would frame it: no body at all, a length, or chunks. */
  const framed = (path: string, framing: "none" | "length" | "chunked", body: string, type?: string) => {
    const typeLine = type === undefined ? "" : `content-type: ${type}\r\n`
    const head = `POST ${path} HTTP/1.1\r\nHost: broker\r\n${typeLine}`
    switch (framing) {
      case "none":
        return `${head}\r\n`
      case "length":
        return `${head}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
      case "chunked":
        return `${head}transfer-encoding: chunked\r\n\r\n` +
          (body === "" ? "" : `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n`) + "0\r\n\r\n"
    }
  }

  /** Every way to send nothing (or JSON null, or `{}`) that the optional-body routes take. */
  const empties = [
    { name: "no body, no content type (curl -X POST)", request: (path: string) => framed(path, "none", "") },
    { name: "no body, typed as JSON", request: (path: string) => framed(path, "none", "", "application/json") },
    { name: "content-length: 0", request: (path: string) => framed(path, "length", "") },
    {
      name: "content-length: 0, typed as JSON",
      request: (path: string) => framed(path, "length", "", "application/json")
    },
    { name: "chunked, no chunk", request: (path: string) => framed(path, "chunked", "") },
    {
      name: "chunked, no chunk, typed as JSON",
      request: (path: string) => framed(path, "chunked", "", "application/json")
    },
    { name: "null", request: (path: string) => framed(path, "length", "null", "application/json") },
    { name: "{}", request: (path: string) => framed(path, "length", "{}", "application/json") },
    { name: "{} chunked", request: (path: string) => framed(path, "chunked", "{}", "application/json") }
  ]

  it.scopedLive("pause, resume and dead/retry take no body, an empty one, null or {}, each sent with or without a length", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const paused = () =>
        rest(broker.base, "GET", "/v1/stats").pipe(
          Effect.map((reply) => (reply.body as { paused: { all: boolean } }).paused.all)
        )
      for (const { name, request } of empties) {
        const pause = yield* exchange(broker, request("/v1/pause"))
        expect({ name, status: pause.status, body: json(pause) }).toEqual({
          name,
          status: 200,
          body: { all: true, types: [] }
        })
        expect(yield* paused(), name).toBe(true)
        const resume = yield* exchange(broker, request("/v1/resume"))
        expect({ name, status: resume.status, body: json(resume) }).toEqual({
          name,
          status: 200,
          body: { all: false, types: [] }
        })
        expect(yield* paused(), name).toBe(false)
        const redrive = yield* exchange(broker, request("/v1/dead/retry"))
        expect({ name, status: redrive.status, body: json(redrive) }).toEqual({ name, status: 200, body: { count: 0 } })
      }
      // A body that names a type still means that type, however it is framed.
      const one = yield* exchange(broker, framed("/v1/pause", "chunked", "{\"type\":\"email\"}", "application/json"))
      expect(json(one)).toEqual({ all: false, types: ["email"] })
    }))

  it.scopedLive("cancel and retry, which take no body, answer the same whatever empty body comes", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const job = (yield* rest(broker.base, "POST", "/v1/jobs", { type: "t", delayMs: 600_000 })).body as { id: string }
      for (const { name, request } of empties.slice(0, 6)) {
        const cancel = yield* exchange(broker, request(`/v1/jobs/${job.id}/cancel`))
        expect({ name, status: cancel.status, state: (json(cancel) as { state: string }).state })
          .toEqual({ name, status: 200, state: "cancelled" })
        const retry = yield* exchange(broker, request(`/v1/jobs/${job.id}/retry`))
        expect({ name, status: retry.status, state: (json(retry) as { state: string }).state })
          .toEqual({ name, status: 200, state: "queued" })
      }
    }))

  it.scopedLive("a route whose body is required answers a missing one with 400, and nothing changes", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      for (const { name, request } of empties.slice(0, 7)) {
        const answer = yield* exchange(broker, request("/v1/jobs"))
        expect({ name, status: answer.status, tag: (json(answer) as { _tag: string })._tag })
          .toEqual({ name, status: 400, tag: "HttpApiDecodeError" })
      }
      expect(yield* jobCount(broker)).toBe(0)
    }))
})
