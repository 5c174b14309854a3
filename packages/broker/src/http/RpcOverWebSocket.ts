/**
 * RPC over WebSocket as the edge (`Edge`) serves it, once it has admitted the upgrade: the
 * handshake (`ws`, as @effect/platform-node does it), then one `RpcSession` per connection under
 * the role the upgrade was admitted with. Each text frame is one message, checked by `RpcFrames`;
 * each answer is one frame, capped alone. The wire is @effect/rpc's JSON serialization
 * (`RpcSerialization.layerJson` on the client), streams acked chunk by chunk, as its clients
 * speak it. No @effect/rpc server, mailbox or fiber per connection: a fiber per request.
 */
import type { Role } from "@osqueue/types"
import * as Effect from "effect/Effect"
import type * as Http from "node:http"
import type { Duplex } from "node:stream"
import { type RawData, type WebSocket, WebSocketServer } from "ws"
import { BrokerConfig } from "../BrokerConfig.js"
import * as Queues from "../Queues.js"
import { frameLimits } from "./Rpc.js"
import * as RpcFrames from "./RpcFrames.js"
import * as RpcSession from "./RpcSession.js"

/** Close code 1001: the server is going away. */
const goingAway = 1001

/** A message's text: every message arrives as one Buffer (the server's default binary type), a binary frame's bytes read as UTF-8. */
const textOf = (data: RawData): string =>
  Buffer.isBuffer(data)
    ? data.toString("utf8")
    : Array.isArray(data)
    ? Buffer.concat(data).toString("utf8")
    : Buffer.from(data).toString("utf8")

/** Over `sessions`, which RPC over HTTP and over WebSocket share (`Edge`). */
export const make = (sessions: RpcSession.Sessions) =>
  Effect.gen(function*() {
    const limits = frameLimits(yield* BrokerConfig)
    // Without compression, as @effect/platform-node's: `WebSocketLimit` counts a frame's payload as
    // its message's bytes. The selected subprotocol is the first offered (`WebSocketAuth.protocol`).
    const server = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false })
    const open = new Map<WebSocket, RpcSession.Session>()

    const serve = (socket: WebSocket, raw: Duplex, role: Role | undefined, queue: string | undefined) => {
      const encode = RpcFrames.frameEncoder(limits)
      // The answers sent to one connection in one turn (a gathered batch's, a client's calls in
      // flight together) leave in one write: the socket is corked at the first and uncorked once
      // the turn's work is done (`ws` corks each frame's header and payload the same way, inside).
      let corked = false
      const uncork = () => {
        corked = false
        raw.uncork()
      }
      const send = (answer: RpcFrames.Answer) => {
        if (!corked) {
          corked = true
          raw.cork()
          process.nextTick(uncork)
        }
        socket.send(encode(answer))
      }
      const session = sessions.start({ role, queue, acks: true, send })
      open.set(socket, session)
      socket.on("message", (data) => session.receive(RpcFrames.checkLine(textOf(data), limits)))
      socket.on("close", () => {
        open.delete(socket)
        session.end()
      })
      // A frame that breaks the protocol: `ws` closes the connection with the code that says why
      // (1002, 1007, 1009) and reports it here; the close above ends the session.
      socket.on("error", () => undefined)
    }

    return {
      /**
       * Completes the handshake of an admitted upgrade (or answers a malformed one 400) and serves
       * the socket with `role`; the upgrade's `osqueue-queue` header names the queue of the
       * messages that name none (`Queues.nameIn`).
       */
      upgrade: (request: Http.IncomingMessage, socket: Duplex, head: Buffer, role: Role | undefined) =>
        server.handleUpgrade(request, socket, head, (webSocket) =>
          serve(webSocket, socket, role, Queues.nameIn(request.headers as Record<string, string | undefined>))),
      /** Closes every connection (1001): what runs on them is interrupted, clients go on at the next broker. */
      close: () => {
        for (const [webSocket, session] of open) {
          session.end()
          webSocket.close(goingAway, "the broker is stopping")
        }
      }
    }
  })
