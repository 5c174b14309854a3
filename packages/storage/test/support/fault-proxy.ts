/**
 * An HTTP proxy in front of a real server that can make chosen requests go wrong in the ways a
 * network does: answered without reaching the server, reaching the server but answered with an
 * error, reaching it and never answered. This is how the tests produce the ambiguous outcomes
 * (a write that landed but reported a failure) on a real S3 server.
 *
 * Requests are forwarded byte for byte, Host header included, so S3 signatures stay valid.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"

export type Fault =
  /** Answer without forwarding: the server never sees the request. */
  | {
    readonly kind: "respond"
    readonly status: number
    readonly body?: string
    readonly headers?: Record<string, string>
  }
  /** Forward, let the server answer, then replace its answer (the write landed). */
  | { readonly kind: "forward-then-respond"; readonly status: number; readonly body?: string }
  /** Forward, then close the client's connection without an answer (the write landed). */
  | { readonly kind: "forward-then-reset" }
  /** Forward, then hold the answer back for `delayMs` (the write landed; the client times out). */
  | { readonly kind: "forward-then-delay"; readonly delayMs: number }

export interface RecordedRequest {
  readonly method: string
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  /** What reached the server: false when a fault answered in its place. */
  readonly forwarded: boolean
}

export interface FaultProxy {
  readonly url: string
  readonly requests: Array<RecordedRequest>
  /** The next request with this method (any method when omitted) meets `fault`. */
  readonly inject: (fault: Fault, method?: string) => void
  readonly close: () => Promise<void>
}

export const startFaultProxy = async (target: string): Promise<FaultProxy> => {
  const upstream = new URL(target)
  const pending: Array<{ fault: Fault; method: string | undefined }> = []
  const requests: Array<RecordedRequest> = []
  const sockets = new Set<import("node:net").Socket>()

  const takeFault = (method: string): Fault | undefined => {
    const index = pending.findIndex((p) => p.method === undefined || p.method === method)
    if (index < 0) return undefined
    return pending.splice(index, 1)[0]?.fault
  }

  const forward = (req: http.IncomingMessage, body: Buffer) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const out = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method ?? "GET",
          path: req.url ?? "/",
          headers: req.headers
        },
        (res) => {
          const chunks: Array<Buffer> = []
          res.on("data", (c: Buffer) => chunks.push(c))
          res.on(
            "end",
            () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) })
          )
          res.on("error", reject)
        }
      )
      out.on("error", reject)
      out.end(body)
    })

  const server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const body = Buffer.concat(chunks)
      const method = req.method ?? "GET"
      const fault = takeFault(method)
      requests.push({ method, url: req.url ?? "/", headers: req.headers, forwarded: fault?.kind !== "respond" })
      if (fault?.kind === "respond") {
        res.writeHead(fault.status, { "content-type": "application/xml", ...fault.headers })
        res.end(fault.body ?? "")
        return
      }
      forward(req, body).then(
        (answer) => {
          if (fault === undefined) {
            // hop-by-hop framing is redone by this server
            const headers = { ...answer.headers }
            delete headers["transfer-encoding"]
            delete headers["connection"]
            res.writeHead(answer.status, { ...headers, "content-length": String(answer.body.length) })
            res.end(answer.body)
          } else if (fault.kind === "forward-then-respond") {
            res.writeHead(fault.status, { "content-type": "application/xml" })
            res.end(fault.body ?? "")
          } else if (fault.kind === "forward-then-reset") {
            req.socket.destroy()
          } else {
            setTimeout(() => req.socket.destroy(), fault.delayMs)
          }
        },
        (error: unknown) => {
          res.writeHead(502)
          res.end(String(error))
        }
      )
    })
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    inject: (fault, method) => void pending.push({ fault, method }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

/** An S3 error document, as the fault answers carry it. */
export const s3ErrorXml = (code: string, message = code) =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`
