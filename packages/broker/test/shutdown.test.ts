/**
 * A broker told to stop stops promptly whatever its clients hold open: a connection that has sent
 * nothing yet (a browser opens one ahead of need, after a reload for instance, and may leave it
 * unused for minutes), a kept-alive one between requests, and a WebSocket with a Watch streaming.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope, Stream } from "effect"
import * as net from "node:net"
import { awaitLeader, rpcWs, startBroker } from "./fixtures.js"

/** A raw connection to `base`; `closed` completes when the broker ends it. */
const connect = (base: string) =>
  Effect.async<{ readonly socket: net.Socket; readonly closed: Promise<number> }>((resume) => {
    const socket = net.connect(Number(new URL(base).port), "127.0.0.1")
    socket.on("error", () => undefined)
    const closed = new Promise<number>((resolve) => socket.on("close", () => resolve(Date.now())))
    socket.on("connect", () => resume(Effect.succeed({ socket, closed })))
  })

describe("shutdown", () => {
  it.scopedLive(
    "ends connections that never sent a request, idle kept-alive ones and WebSockets, at once",
    () =>
      Effect.gen(function*() {
        const broker = yield* startBroker()
        yield* awaitLeader(broker)
        const unused = yield* connect(broker.base)
        yield* Effect.addFinalizer(() => Effect.sync(() => unused.socket.destroy()))
        const keptAlive = yield* connect(broker.base)
        yield* Effect.addFinalizer(() => Effect.sync(() => keptAlive.socket.destroy()))
        const answered = new Promise<void>((resolve) => keptAlive.socket.once("data", () => resolve()))
        keptAlive.socket.write("GET /v1/stats HTTP/1.1\r\nHost: broker\r\n\r\n")
        yield* Effect.promise(() => answered)
        const client = yield* rpcWs(broker.base)
        const watch = yield* client.Watch({ history: true, statsEveryMs: 100 }).pipe(
          Stream.take(3),
          Stream.runDrain,
          Effect.fork
        )
        yield* Fiber.join(watch)
        yield* client.Watch({ history: true }).pipe(Stream.runDrain, Effect.fork)

        const started = Date.now()
        yield* Scope.close(broker.scope, Exit.void)
        const stoppedIn = Date.now() - started
        expect(stoppedIn).toBeLessThan(3_000)
        // Both raw connections were ended by the broker, not left for their clients to close.
        const endedIn = (yield* Effect.promise(() => Promise.all([unused.closed, keptAlive.closed]))).map((at) =>
          at - started
        )
        expect(Math.max(...endedIn)).toBeLessThan(3_000)
      }),
    20_000
  )
})
