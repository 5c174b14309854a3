/**
 * `OsqueueClient.layerWebSocket` sends its calls as frames of its own on the socket @effect/rpc's
 * client keeps (`internal/socketCalls.ts`). A relay between the client and a real broker keeps
 * every frame the client sends, and can drop the connections, as a proxy or a network would.
 */
import { describe, expect, it } from "@effect/vitest"
import { startBroker } from "@osqueue/broker/testing"
import { OsqueueClient, Protocols } from "@osqueue/client"
import { MemoryStore } from "@osqueue/storage"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Schedule, Stream } from "effect"
import type { AddressInfo } from "node:net"
import { WebSocket, WebSocketServer } from "ws"

interface Frame {
  readonly _tag: string
  readonly id?: string
  readonly requestId?: string
  readonly tag?: string
  readonly headers?: ReadonlyArray<[string, string]>
}

/** A relay to `broker`'s WebSocket endpoint: its URL, the frames clients sent through it, and a way to drop every connection. */
const relay = (broker: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const sent: Array<Frame> = []
      const drops = new Set<() => void>()
      let connections = 0
      const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
      server.on("connection", (client, request) => {
        connections++
        const offered = (request.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim())
        const upstream = new WebSocket(Protocols.webSocketUrl(broker), offered.filter((p) => p.length > 0))
        const early: Array<string> = []
        client.on("message", (data) => {
          const text = data.toString()
          sent.push(JSON.parse(text) as Frame)
          if (upstream.readyState === WebSocket.OPEN) upstream.send(text)
          else early.push(text)
        })
        upstream.on("open", () => early.splice(0).forEach((text) => upstream.send(text)))
        upstream.on("message", (data) => client.send(data.toString()))
        const drop = () => {
          drops.delete(drop)
          client.terminate()
          upstream.terminate()
        }
        drops.add(drop)
        client.on("close", drop)
        upstream.on("close", drop)
        client.on("error", drop)
        upstream.on("error", drop)
      })
      await new Promise((resolve) => server.once("listening", resolve))
      return {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        sent,
        connections: () => connections,
        dropAll: () => drops.forEach((drop) => drop()),
        server
      }
    }),
    ({ dropAll, server }) =>
      Effect.promise(() => {
        dropAll()
        return new Promise((resolve) => server.close(resolve))
      })
  )

/** A client over WebSocket through a relay to a fresh broker. */
const throughRelay = Effect.gen(function*() {
  const broker = yield* startBroker({ store: yield* MemoryStore.make })
  const wire = yield* relay(broker)
  const client = yield* Effect.map(
    Layer.build(OsqueueClient.layerWebSocket({ urls: [wire.url], retry: Schedule.spaced("50 millis") })),
    Context.get(OsqueueClient)
  )
  return { client, wire }
})

const requests = (sent: ReadonlyArray<Frame>, tag: string) =>
  sent.filter((frame) => frame._tag === "Request" && frame.tag === tag)

/** The request ids the calls use: 19 digits from 8×10^18, apart from @effect/rpc's client's. */
const callId = /^8\d{18}$/

describe("WebSocket calls as frames of their own", () => {
  it.scopedLive("answer each call, its failures as tagged errors, beside a watch on the one socket", () =>
    Effect.gen(function*() {
      const { client, wire } = yield* throughRelay
      const subscribed = yield* Deferred.make<void>()
      const watched = yield* client.watch().pipe(
        Stream.tap(() => Deferred.succeed(subscribed, undefined)),
        Stream.filter((event) => event._tag === "Job"),
        Stream.take(3),
        Stream.runCollect,
        Effect.fork
      )
      yield* Deferred.await(subscribed)
      const [job, ids] = yield* Effect.all(
        [client.enqueue("a"), client.enqueueManyIds([{ type: "b" }, { type: "c" }])],
        {
          concurrency: "unbounded"
        }
      )
      expect((yield* client.get(job.id)).type).toBe("a")
      expect(ids).toHaveLength(2)
      const missing = yield* Effect.flip(client.get("no-such-job"))
      expect(missing._tag).toBe("JobNotFound")
      expect(Array.from(yield* Fiber.join(watched), (event) => event._tag)).toEqual(["Job", "Job", "Job"])

      expect(wire.connections()).toBe(1)
      const [watch] = requests(wire.sent, "Watch")
      expect(watch!.id).not.toMatch(callId)
      const calls = ["Enqueue", "EnqueueMany", "Get"].flatMap((tag) => requests(wire.sent, tag))
      expect(calls.length).toBeGreaterThanOrEqual(3)
      expect(calls.every((frame) => callId.test(frame.id!))).toBe(true)
      expect(new Set(calls.map((frame) => frame.id)).size).toBe(calls.length)
      expect(requests(wire.sent, "EnqueueMany")[0]!.headers).toContainEqual(["prefer", "return=minimal"])
    }))

  it.scopedLive("an interrupted call is withdrawn at the broker: a held claim takes no job once its caller left", () =>
    Effect.gen(function*() {
      const { client, wire } = yield* throughRelay
      const held = yield* Effect.fork(client.claim({ workerId: "gone", waitMs: 10_000 }))
      yield* Effect.sleep("300 millis")
      yield* Fiber.interrupt(held)
      const [claim] = requests(wire.sent, "Claim")
      yield* Effect.sleep("100 millis")
      expect(wire.sent).toContainEqual({ _tag: "Interrupt", requestId: claim!.id })
      const job = yield* client.enqueue("x")
      const claimed = yield* client.claim({ workerId: "here" })
      expect(claimed.map((c) => c.job.id)).toEqual([job.id])
    }))

  it.scopedLive("a call in flight when the socket drops is retried once it reopens, not lost or interrupted", () =>
    Effect.gen(function*() {
      const { client, wire } = yield* throughRelay
      yield* client.stats
      const held = yield* Effect.fork(client.claim({ workerId: "w", waitMs: 3_000 }))
      yield* Effect.sleep("300 millis")
      wire.dropAll()
      const job = yield* client.enqueue("after the drop")
      const exit = yield* Fiber.await(held)
      expect(Exit.isSuccess(exit)).toBe(true)
      const claimed = Exit.isSuccess(exit) ? exit.value : []
      const later = claimed.length === 0 ? yield* client.claim({ workerId: "w" }) : []
      expect([...claimed, ...later].map((c) => c.job.id)).toEqual([job.id])
      expect(wire.connections()).toBe(2)
    }))

  it.scopedLive("a call made after the broker refused the socket's token fails with Unauthorized, not as unreachable", () =>
    Effect.gen(function*() {
      const url = yield* startBroker({ store: yield* MemoryStore.make, token: "s3cret" })
      const client = yield* Effect.map(
        Layer.build(OsqueueClient.layerWebSocket({ urls: [url], token: "wrong", retry: Schedule.stop })),
        Context.get(OsqueueClient)
      )
      // The first call opens the socket, which is refused (401); the next is made while it is down.
      expect((yield* Effect.flip(client.stats))._tag).toBe("Unauthorized")
      expect((yield* Effect.flip(client.stats))._tag).toBe("Unauthorized")
    }))
})
