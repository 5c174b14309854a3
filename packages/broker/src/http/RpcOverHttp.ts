/**
 * RPC over HTTP as the edge (`Edge`) serves it: one ndjson body of messages, each line checked by
 * `RpcFrames` and run by an `RpcSession` of its own under the role the edge found, the answers
 * sent in the order they finish, as @effect/rpc's server answers and its clients read. A body
 * whose requests are all answered at once goes out in one write; one with a stream (`Watch`)
 * streams its lines.
 */
import type { Role } from "@osqueue/types"
import * as Effect from "effect/Effect"
import type * as Http from "node:http"
import { BrokerConfig } from "../BrokerConfig.js"
import { frameLimits } from "./Rpc.js"
import * as RpcFrames from "./RpcFrames.js"
import * as RpcSession from "./RpcSession.js"

/** Over `sessions`, which RPC over HTTP and over WebSocket share (`Edge`). */
export const make = (sessions: RpcSession.Sessions) =>
  Effect.gen(function*() {
    const limits = frameLimits(yield* BrokerConfig)

    /** Answers the ndjson body `text`, sent with `role`, on `response` (with `headers`: CORS). */
    return (
      text: string,
      role: Role | undefined,
      response: Http.ServerResponse,
      headers: Readonly<Record<string, string>> | undefined
    ) => {
      const encode = RpcFrames.bodyEncoder(limits)
      const checked: Array<RpcFrames.Checked> = []
      for (const raw of text.split("\n")) {
        const line = raw.trim()
        if (line !== "") checked.push(RpcFrames.checkLine(line, limits))
      }
      const streaming = checked.some(({ message }) => message._tag === "Request" && sessions.isStream(message.tag))
      const lines: Array<string> = []
      let launching = true
      let done = false

      const finish = () => {
        if (done || launching || session.pending() > 0) return
        done = true
        if (response.writableEnded || response.destroyed) return
        if (streaming) return response.end()
        const body = lines.join("")
        response.writeHead(200, {
          "content-type": "application/ndjson",
          "content-length": String(Buffer.byteLength(body)),
          ...headers
        })
        response.end(body)
      }
      // A stream's lines go out as they come; other answers together, once all are in.
      // A message names its queue in its own headers (`Queues.nameIn`); none: the default queue.
      const session = sessions.start({
        role,
        queue: undefined,
        acks: false,
        send: (answer) => {
          if (done) return
          if (streaming) response.write(encode(answer))
          else lines.push(encode(answer))
        },
        onAnswered: finish
      })

      if (streaming) response.writeHead(200, { "content-type": "application/ndjson", ...headers })
      for (const message of checked) session.receive(message)
      // A client that hangs up cuts short what runs on its own; gathered calls commit anyway, and
      // their answers find the response closed (`finish`): no listener for them.
      if (session.interruptible()) {
        response.once("close", () => {
          if (response.writableFinished) return
          done = true
          session.end()
        })
      }
      launching = false
      finish()
    }
  })
