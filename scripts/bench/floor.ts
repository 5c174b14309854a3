/**
 * The floor under the REST figures of `ops.ts --transport floor`: a Node HTTP server that does
 * nothing but what any server on Node's `http` must (parse the request, read its body, parse
 * its JSON, write a JSON answer), answering the bench's enqueue, claim and completion with a
 * job of the size the broker answers. What the broker spends per call above this server's CPU
 * per request is the broker's own; what this server spends is Node's HTTP, the kernel's socket
 * writes and the garbage they make, on this machine. The same for RPC (`--transport
 * floor-http,floor-ws`): an ndjson body at `POST /rpc`, a WebSocket at `/rpc/ws` (`ws`, as the
 * broker serves it), each request's line or frame parsed and answered with its `Exit`.
 *
 *   node --import tsx floor.ts PORT
 */
import { createServer, type IncomingMessage } from "node:http"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import type { Duplex } from "node:stream"
import { fileURLToPath } from "node:url"

/** What of `ws` the floor uses. */
interface Sockets {
  readonly handleUpgrade: (
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    open: (webSocket: {
      readonly on: (event: "message", listener: (data: Buffer) => void) => void
      readonly send: (text: string) => void
    }) => void
  ) => void
}

// The broker's own `ws`: the bench does not depend on it.
const { WebSocketServer } = createRequire(
  join(dirname(fileURLToPath(import.meta.url)), "../../packages/broker/package.json")
)("ws") as { readonly WebSocketServer: new(options: Record<string, unknown>) => Sockets }

const job = {
  id: "01JF0000000000000000000000",
  type: "ops",
  payload: { n: 1, text: "x".repeat(100) },
  state: "running",
  priority: 0,
  attempts: 1,
  maxAttempts: 3,
  claims: 1,
  backoff: { _tag: "exponential", delayMs: 1000, maxDelayMs: 60000 },
  seq: 1,
  createdAt: 1_765_000_000_000,
  runAt: 1_765_000_000_000,
  startedAt: 1_765_000_000_000,
  lease: { workerId: "w0", epoch: 1, expiresAt: 1_765_000_030_000, ttlMs: 30_000 },
  history: []
}
const answers: Record<string, { readonly status: number; readonly body: string }> = {
  enqueue: { status: 201, body: JSON.stringify(job) },
  claim: { status: 200, body: JSON.stringify([{ job, token: `${job.id}.1.1.secret` }]) },
  complete: { status: 200, body: JSON.stringify(job) }
}

const values: Record<string, unknown> = { Enqueue: job, Claim: [{ job, token: `${job.id}.1.1.secret` }], Complete: job }

/** An RPC request's answer: the `Exit` of its operation's value. */
const exit = (line: string) => {
  const request = JSON.parse(line) as { readonly id: string; readonly tag: string }
  return JSON.stringify({ _tag: "Exit", requestId: request.id, exit: { _tag: "Success", value: values[request.tag] } })
}

const server = createServer((request, response) => {
  // Ready once it answers: `ops.ts` polls `GET /v1/stats` as it does a broker's.
  if (request.method === "GET") return void response.end("{}")
  const url = request.url ?? ""
  if (url === "/rpc") {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body = `${exit(Buffer.concat(chunks).toString("utf8").trim())}\n`
      response.writeHead(200, {
        "content-type": "application/ndjson",
        "content-length": String(Buffer.byteLength(body))
      })
      response.end(body)
    })
    return
  }
  const answer = url === "/v1/jobs" ? answers.enqueue! : url === "/v1/jobs/claim" ? answers.claim! : answers.complete!
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.on("end", () => {
    JSON.parse(Buffer.concat(chunks).toString("utf8"))
    response.writeHead(answer.status, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(answer.body))
    })
    response.end(answer.body)
  })
})
const sockets = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false })
server.on(
  "upgrade",
  (request, socket, head) =>
    sockets.handleUpgrade(
      request,
      socket,
      head,
      (webSocket) => webSocket.on("message", (data: Buffer) => webSocket.send(exit(data.toString("utf8"))))
    )
)
server.listen(Number(process.argv[2]), "127.0.0.1")
