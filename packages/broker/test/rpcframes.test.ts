/**
 * Malformed RPC messages, over HTTP (ndjson lines) and WebSocket (JSON frames), sent raw as a
 * hand-written client would: each is answered as a typed failure of its own request (or of
 * request -1 when its id cannot be read), never a Defect; good requests beside them run; the
 * queue changes only by what the good ones did.
 */
import { NodeSocket } from "@effect/platform-node"
import * as Socket from "@effect/platform/Socket"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Queue } from "effect"
import { awaitLeader, rest, startBroker, type Started } from "./fixtures.js"

interface Answer {
  readonly _tag: string
  readonly requestId?: string
  readonly exit?: {
    readonly _tag: "Success" | "Failure"
    readonly value?: unknown
    readonly cause?: { readonly _tag: string; readonly error?: { readonly _tag: string; readonly message?: string } }
  }
}

const post = (broker: Started, body: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${broker.base}/rpc`, {
      method: "POST",
      headers: { "content-type": "application/ndjson" },
      body
    })
    const text = await response.text()
    return {
      status: response.status,
      answers: text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line) as Answer)
    }
  })

const request = (id: string, tag: string, payload?: unknown) =>
  JSON.stringify({ _tag: "Request", id, tag, ...(payload === undefined ? {} : { payload }), headers: [] })

const failure = (answers: ReadonlyArray<Answer>, id: string) => {
  const answer = answers.find((a) => a.requestId === id)
  expect(answer?.exit?._tag, `request ${id}: ${JSON.stringify(answer)}`).toBe("Failure")
  return answer!.exit!.cause!.error!
}

const success = (answers: ReadonlyArray<Answer>, id: string) => {
  const answer = answers.find((a) => a.requestId === id)
  expect(answer?.exit?._tag, `request ${id}: ${JSON.stringify(answer)}`).toBe("Success")
  return answer!.exit!.value
}

const noDefect = (answers: ReadonlyArray<Answer>) => {
  for (const answer of answers) {
    expect(answer._tag, JSON.stringify(answer)).toBe("Exit")
    expect(answer.exit?.cause?._tag ?? "Fail", JSON.stringify(answer)).toBe("Fail")
  }
}

const jobsInState = (broker: Started) =>
  rest(broker.base, "GET", "/state").pipe(
    Effect.map((reply) => (reply.body as { state: { jobs: Array<unknown> } }).state.jobs)
  )

const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth)

describe("RPC over HTTP: malformed lines", () => {
  it.scopedLive("each bad line fails its own request with InvalidRequest naming the problem; good lines beside it run", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const before = (yield* jobsInState(broker)).length
      const lines = [
        request("1", "Enqueue", { type: "good", payload: { n: 1 } }),
        // no payload: Stats takes none
        JSON.stringify({ _tag: "Request", id: "2", tag: "Stats" }),
        JSON.stringify({ _tag: "Request", id: "3", tag: "Stats", payload: null, headers: [[1, 2]] }),
        request("4", "Enqueue", { type: "deep", payload: JSON.parse(nested(1_000)) }),
        request("5", "Enqueue", { type: 5 }),
        request("6", "NoSuchThing", {}),
        request("7", "Enqueue"),
        request("8", "Pause", { type: "x".repeat(10) }).replace("\"Pause\"", "\"Resume\""),
        // the last line has no newline after it: it still runs
        request("9", "Enqueue", { type: "good", payload: { n: 2 } })
      ]
      const { status, answers } = yield* post(broker, lines.join("\n"))
      expect(status).toBe(200)
      noDefect(answers)
      expect(answers).toHaveLength(9)
      expect((success(answers, "1") as { type: string }).type).toBe("good")
      expect(success(answers, "2")).toHaveProperty("counts")
      expect(failure(answers, "3").message).toContain("headers")
      expect(failure(answers, "4").message).toContain("levels deep")
      expect(failure(answers, "5")._tag).toBe("InvalidRequest")
      expect(failure(answers, "5").message).toContain("type")
      expect(failure(answers, "6").message).toContain("unknown operation")
      expect(failure(answers, "7")._tag).toBe("InvalidRequest")
      expect(success(answers, "8")).toHaveProperty("all")
      expect((success(answers, "9") as { type: string }).type).toBe("good")
      expect((yield* jobsInState(broker)).length).toBe(before + 2)
    }))

  it.scopedLive("a line whose id cannot be read, or that is not JSON, is answered for request -1", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const { answers } = yield* post(
        broker,
        [
          request("d", "Stats"),
          "{not json",
          "42",
          JSON.stringify({ _tag: "Nope" }),
          JSON.stringify({ _tag: "Ack", requestId: {} }),
          request("10", "Stats")
        ].join("\n") + "\n"
      )
      noDefect(answers)
      const unreadable = answers.filter((a) => a.requestId === "-1")
      expect(unreadable).toHaveLength(5)
      for (const a of unreadable) expect(a.exit?.cause?.error?._tag).toBe("InvalidRequest")
      expect(success(answers, "10")).toHaveProperty("counts")
    }))

  it.scopedLive("100,000 nested arrays is refused by a scan, and the broker goes on serving", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const deep = `{"_tag":"Request","id":"1","tag":"Enqueue","payload":{"type":"x","payload":${
        nested(100_000)
      }},"headers":[]}`
      const { answers } = yield* post(broker, deep)
      noDefect(answers)
      expect(failure(answers, "1").message).toContain("OSQUEUE_MAX_JSON_DEPTH")
      const after = yield* post(broker, request("2", "Stats"))
      expect(success(after.answers, "2")).toHaveProperty("counts")
      expect(yield* jobsInState(broker)).toHaveLength(0)
    }))

  it.scopedLive("a body of more requests than one body may carry is refused whole, and none of them runs", () =>
    Effect.gen(function*() {
      // Refusing 20,000 lines is seconds of CPU on a loaded machine: with the fixtures' 1 s TTL the
      // lone leader's watchdog stepped down meanwhile, and the next body got NotLeader.
      const broker = yield* startBroker({ engine: { electionTtl: Duration.seconds(10) } })
      yield* awaitLeader(broker)
      const lines = Array.from({ length: 20_000 }, (_, i) => request(String(i + 1), "Enqueue", { type: "bulk" }))
      const started = Date.now()
      const { status, answers } = yield* post(broker, lines.join("\n"))
      expect(Date.now() - started).toBeLessThan(2_000)
      expect(status).toBe(400)
      noDefect(answers)
      expect(answers).toHaveLength(20_000)
      expect(failure(answers, "20000").message).toContain("at most 1000 requests")
      expect(yield* jobsInState(broker)).toHaveLength(0)
      // 1,000 is still one body
      const fits = yield* post(broker, lines.slice(0, 1_000).join("\n"))
      expect(fits.answers.filter((a) => a.exit?._tag === "Success")).toHaveLength(1_000)
    }))

  it.scopedLive("a client's Eof is refused; the requests beside it are answered, once each", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const { status, answers } = yield* post(
        broker,
        [
          request("1", "Enqueue", { type: "x" }),
          JSON.stringify({ _tag: "Eof" }),
          request("2", "Claim", { workerId: "w", waitMs: 200 })
        ].join("\n")
      )
      expect(status).toBe(200)
      noDefect(answers)
      expect((success(answers, "1") as { type: string }).type).toBe("x")
      expect(success(answers, "2")).toHaveLength(1)
      expect(failure(answers, "-1").message).toContain("Eof")
    }))

  it.scopedLive("answers to one body are capped in bytes: past the cap each request fails with PayloadTooLarge", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker({ config: { maxAnswerBytes: 2_000 } })
      yield* awaitLeader(broker)
      const lines = Array.from({ length: 40 }, (_, i) => request(String(i + 1), "Stats"))
      const { answers } = yield* post(broker, lines.join("\n"))
      noDefect(answers)
      const ok = answers.filter((a) => a.exit?._tag === "Success").length
      expect(ok).toBeGreaterThan(0)
      expect(ok).toBeLessThan(40)
      expect(failure(answers, "40")._tag).toBe("PayloadTooLarge")
      expect(answers.reduce((n, a) => n + JSON.stringify(a).length, 0)).toBeLessThan(2_000 + 40 * 400)
    }))
})

describe("RPC over WebSocket: malformed frames", () => {
  it.scopedLive("each bad frame fails its own request; the connection stays open for the next", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const socket = yield* Socket.makeWebSocket(`${broker.base.replace(/^http/, "ws")}/rpc/ws`).pipe(
        Effect.provide(NodeSocket.layerWebSocketConstructor)
      )
      const received = yield* Queue.unbounded<Answer>()
      yield* socket.runRaw((data) => {
        const text = typeof data === "string" ? data : new TextDecoder().decode(data)
        return Queue.offer(received, JSON.parse(text) as Answer)
      }).pipe(Effect.forkScoped)
      const write = yield* socket.writer
      const frames = [
        request("1", "Enqueue", { type: 5 }),
        request("2", "Enqueue", { type: "deep", payload: JSON.parse(nested(500)) }),
        "{not json",
        JSON.stringify({ _tag: "Request", id: "3", tag: "Stats", headers: "x" }),
        request("4", "Get", { id: "" }),
        request("5", "Stats")
      ]
      for (const frame of frames) yield* write(frame)
      const answers: Array<Answer> = []
      while (answers.length < frames.length) answers.push(yield* Queue.take(received))
      noDefect(answers)
      expect(failure(answers, "1")._tag).toBe("InvalidRequest")
      expect(failure(answers, "2").message).toContain("levels deep")
      expect(answers.find((a) => a.requestId === "-1")?.exit?.cause?.error?._tag).toBe("InvalidRequest")
      expect(failure(answers, "3").message).toContain("headers")
      expect(failure(answers, "4")._tag).toBe("InvalidRequest")
      expect(success(answers, "5")).toHaveProperty("counts")
      expect(yield* jobsInState(broker)).toHaveLength(0)
    }))
})

describe("RPC over WebSocket: the protocol as @effect/rpc's clients speak it", () => {
  it.scopedLive("a stream waits for the Ack of each chunk; a Ping gets a Pong; an Interrupt ends its request with an interrupted Exit", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const socket = yield* Socket.makeWebSocket(`${broker.base.replace(/^http/, "ws")}/rpc/ws`).pipe(
        Effect.provide(NodeSocket.layerWebSocketConstructor)
      )
      const received = yield* Queue.unbounded<Answer>()
      yield* socket.runRaw((data) => {
        const text = typeof data === "string" ? data : new TextDecoder().decode(data)
        return Queue.offer(received, JSON.parse(text) as Answer)
      }).pipe(Effect.forkScoped)
      const write = yield* socket.writer

      yield* write(JSON.stringify({ _tag: "Ping" }))
      expect((yield* Queue.take(received))._tag).toBe("Pong")

      // Stats every 100 ms: without an Ack the stream holds after its first chunk.
      yield* write(request("1", "Watch", { statsEveryMs: 100 }))
      const first = yield* Queue.take(received)
      expect(first).toMatchObject({ _tag: "Chunk", requestId: "1" })
      yield* Effect.sleep(Duration.millis(500))
      expect(yield* Queue.size(received)).toBe(0)
      yield* write(JSON.stringify({ _tag: "Ack", requestId: "1" }))
      expect(yield* Queue.take(received).pipe(Effect.timeout(Duration.seconds(5)))).toMatchObject({
        _tag: "Chunk",
        requestId: "1"
      })

      yield* write(JSON.stringify({ _tag: "Interrupt", requestId: "1" }))
      const exit = yield* Queue.take(received).pipe(Effect.repeat({ until: (answer) => answer._tag === "Exit" }))
      expect(exit).toMatchObject({ requestId: "1", exit: { _tag: "Failure" } })
      // Interrupts only (the stream's merged sources each end by one), no failure or defect.
      const cause = JSON.stringify(exit.exit?.cause)
      expect(cause).toContain(`"Interrupt"`)
      expect(cause).not.toMatch(/"(Fail|Die)"/)

      // The connection goes on serving.
      yield* write(request("2", "Stats"))
      const stats = yield* Queue.take(received).pipe(Effect.repeat({ until: (answer) => answer._tag === "Exit" }))
      expect(success([stats], "2")).toHaveProperty("counts")
    }))
})
