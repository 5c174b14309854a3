/**
 * The broker's Node HTTP server, and what it does below the routes: the request timeouts, tagged
 * answers to requests Node's parser refuses, the sockets of upgrade requests, the WebSocket message
 * limit, and a `close` that ends.
 */
import {
  httpStatus,
  InvalidRequest,
  MethodNotAllowed,
  type OsqueueError,
  OsqueueError as OsqueueErrorSchema,
  RequestTimeout
} from "@osqueue/types"
import * as Schema from "effect/Schema"
import type * as Http from "node:http"
import { createServer, STATUS_CODES } from "node:http"
import type { Socket } from "node:net"
import type { Duplex } from "node:stream"
import { type BrokerSettings, defaults } from "../BrokerConfig.js"
import * as HttpChecks from "./HttpChecks.js"
import * as WebSocketLimit from "./WebSocketLimit.js"

export type ServerSettings = Pick<
  BrokerSettings,
  "maxBodyBytes" | "headersTimeoutMs" | "requestTimeoutMs" | "keepAliveTimeoutMs"
>

/** Every method some route of the broker answers: the `Allow` of a request whose method Node cannot even parse. */
const servedMethods = ["GET", "HEAD", "POST", "OPTIONS"]

const encodeError = Schema.encodeSync(OsqueueErrorSchema)

const startingOrStopping = "the broker is starting or stopping: retry, or ask another broker"

/** A whole HTTP/1.1 answer carrying `error`, that closes the connection: what a socket gets when no response object will be made for it. */
export const rawAnswer = (status: number, error: OsqueueError, headers: Record<string, string> = {}): string => {
  const body = JSON.stringify(encodeError(error))
  const lines = Object.entries({
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
    connection: "close",
    ...headers
  }).map(([name, value]) => `${name}: ${value}\r\n`)
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\n${lines.join("")}\r\n${body}`
}

interface ParserError extends Error {
  readonly code?: string
  readonly reason?: string
  readonly rawPacket?: Buffer
}

/**
 * The answer to a request Node's parser refused or timed out, as the routes would give it: a
 * tagged JSON error instead of Node's empty 400/408/431.
 */
const clientErrorAnswer = (error: ParserError, settings: ServerSettings): string => {
  switch (error.code) {
    case "ERR_HTTP_REQUEST_TIMEOUT": {
      const reason = `the headers must arrive within ${settings.headersTimeoutMs} ms ` +
        `and the whole request within ${settings.requestTimeoutMs} ms`
      const refused = new RequestTimeout({ reason })
      return rawAnswer(httpStatus(refused), refused)
    }
    case "HPE_HEADER_OVERFLOW":
      // 431 is HTTP's status for this; the body says what was too large, as a 413's would.
      return rawAnswer(
        431,
        new InvalidRequest({ message: "the request's headers are too large: send fewer or shorter ones" })
      )
    case "HPE_INVALID_METHOD": {
      const [method = "?", path = "?"] = (error.rawPacket?.toString("latin1", 0, 300) ?? "").split(/[ \r\n]/, 2)
      const refused = new MethodNotAllowed({
        method: method.slice(0, 20),
        path: path.slice(0, 200),
        allowed: servedMethods
      })
      return rawAnswer(httpStatus(refused), refused, { allow: servedMethods.join(", ") })
    }
    default: {
      const what = error.reason ?? error.message
      const refused = new InvalidRequest({
        message: `the request is not valid HTTP/1.1 (${error.code ?? "unknown"}: ${what})`
      })
      return rawAnswer(httpStatus(refused), refused)
    }
  }
}

/**
 * The response Node is writing on `socket`, if any (the request was parsed and handed over): the
 * field Node's own `clientError` handling reads to decide whether an answer may still be written.
 */
const inFlight = (socket: Duplex): Http.ServerResponse | undefined =>
  (socket as Duplex & { readonly _httpMessage?: Http.ServerResponse | null })._httpMessage ?? undefined

/**
 * What every upgraded socket gets before anything reads it, whoever takes the upgrade (the edge's
 * WebSocket, or the Effect app): an error handler (Node hands the socket over without one, and a
 * client hanging up while a large answer is written to it would crash the process) and the
 * WebSocket message limit (`WebSocketLimit`).
 */
export const guardUpgrade = (socket: Duplex, maxMessageBytes: number): void => {
  socket.on("error", () => socket.destroy())
  WebSocketLimit.install(socket, maxMessageBytes)
}

/**
 * A Node HTTP server that always answers and whose `close` ends, with `settings`' timeouts and
 * WebSocket message limit.
 *
 * The routes' request handler is registered after the server listens and removed before it
 * closes; a request that comes in outside that window (on a kept-alive connection, typically)
 * would wait forever, and Node's `close` waits for every connection to end: a broker told to stop
 * would never exit. Such a request is answered 503 (clients retry elsewhere); once closing, every
 * response closes its connection and idle connections are closed as they appear.
 *
 * The headers and then the whole request must arrive in time (a client that stalls, or declares
 * more body than it sends, gets 408 and the connection closes); the answer may take as long as it
 * needs (long-poll claims, Watch). Upgrade requests the front (`FrontDoor`) does not take are
 * guarded here (`guardUpgrade`).
 */
export const createClosableServer = (settings: ServerSettings = defaults): Http.Server => {
  const headersTimeout = Math.min(settings.headersTimeoutMs, settings.requestTimeoutMs)
  const server = createServer({
    headersTimeout,
    requestTimeout: settings.requestTimeoutMs,
    // How often Node looks for requests past their timeouts (every 30 s by default, which would let a stalled request wait as long).
    connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(headersTimeout / 4)))
  })
  server.keepAliveTimeout = settings.keepAliveTimeoutMs
  let closing = false

  server.on("clientError", (error: ParserError, socket: Duplex) => {
    HttpChecks.refusedCounter(error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "timeout" : "malformed_http").unsafeUpdate(
      1,
      []
    )
    // A reset connection cannot be answered, nor can one whose answer has begun.
    if (error.code === "ECONNRESET" || !socket.writable || inFlight(socket)?.headersSent === true) {
      return socket.destroy()
    }
    socket.end(clientErrorAnswer(error, settings), () => socket.destroy())
  })

  server.on("upgrade", (_request: Http.IncomingMessage, socket: Duplex) => {
    guardUpgrade(socket, settings.maxBodyBytes)
    if (server.listenerCount("upgrade") === 1) {
      // No routes yet, or no more: the same 503 as `own` below.
      const body = JSON.stringify({ error: startingOrStopping })
      socket.end(
        `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
      )
      return
    }
  })

  const own = (request: Http.IncomingMessage, response: Http.ServerResponse) => {
    if (closing) response.setHeader("connection", "close")
    if (server.listenerCount("request") > 1) return
    request.resume()
    response.writeHead(503, { "content-type": "application/json", "retry-after": "1", connection: "close" })
    response.end(JSON.stringify({ error: startingOrStopping }))
  }
  server.on("request", own)
  // Connections that have not sent a byte: a browser opens one ahead of need (after a reload,
  // say) and may leave it unused for minutes. Node's closeIdleConnections leaves them (they wait
  // for a first request), and its close stops the headers timeout that would end them, so close
  // would wait for the client to hang up; closing, they are ended with the idle ones.
  const connections = new Set<Socket>()
  server.on("connection", (socket: Socket) => {
    connections.add(socket)
    socket.once("close", () => connections.delete(socket))
  })
  const closeUnused = () => {
    server.closeIdleConnections()
    for (const socket of connections) if (socket.bytesRead === 0) socket.destroy()
  }

  const close = server.close.bind(server)
  server.close = (callback) => {
    closing = true
    closeUnused()
    const sweep = setInterval(closeUnused, 50)
    return close((error) => {
      clearInterval(sweep)
      callback?.(error)
    })
  }
  return server
}
