/**
 * How the fuzz suite talks to a broker: plain HTTP requests (node:http, any method, any bytes),
 * raw bytes on a socket (for what no HTTP client sends: bad chunk sizes, short bodies, broken
 * request lines), and a WebSocket client written on a socket, so that frames can be as broken as
 * an attacker makes them (invalid UTF-8, huge declared lengths, reserved opcodes). Every exchange
 * records what was sent and what came back, with its time, for the checks and for printing.
 */
import { randomBytes } from "node:crypto"
import * as http from "node:http"
import * as net from "node:net"

export interface Target {
  readonly host: string
  readonly port: number
}

/** An HTTP request as sent. `body` may be any bytes. */
export interface HttpRequest {
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly body?: string | Buffer
}

/** What came back: `status` is absent when no answer came (`error` says why). */
export interface HttpAnswer {
  readonly status?: number
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly body: Buffer
  readonly ms: number
  readonly error?: string
}

/**
 * Longest any one exchange may take before the suite gives up on it: the checks ask for far less
 * (2 s beyond a claim's wait of at most 300 ms), and a hung request must not hold its slot long.
 */
export const hardTimeoutMs = 6_000

/** Sends `request`; never rejects: a failure to get an answer is an answer with `error`. */
export const sendHttp = (target: Target, request: HttpRequest, timeoutMs = hardTimeoutMs): Promise<HttpAnswer> =>
  new Promise((resolve) => {
    const started = performance.now()
    const chunks: Array<Buffer> = []
    let settled = false
    const finish = (answer: Omit<HttpAnswer, "ms">) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve({ ...answer, ms: performance.now() - started })
    }
    // Node frames a GET's or DELETE's body with nothing unless told its length: the bytes would
    // reach the broker as the start of a next request, a test of Node's parser, not of the broker
    const framed = request.body === undefined || Object.keys(request.headers).some((k) =>
        /^(content-length|transfer-encoding)$/i.test(k)
      )
      ? request.headers
      : { ...request.headers, "content-length": String(Buffer.byteLength(request.body)) }
    let req: http.ClientRequest
    try {
      req = http.request({
        host: target.host,
        port: target.port,
        method: request.method,
        path: request.path,
        headers: framed,
        // a connection per request: on a kept-alive one, the broker closing it as idle just as a
        // request goes out resets that request, a race of HTTP/1.1 and not the broker's fault
        // (the pipeline case keeps a connection alive on purpose)
        agent: false
      })
    } catch (error) {
      // the client refused to send it (a header Node will not write): not the broker's doing
      finish({ headers: {}, body: Buffer.alloc(0), error: `client: ${String(error)}` })
      return
    }
    const timer = setTimeout(() => {
      finish({ headers: {}, body: Buffer.concat(chunks), error: `no complete answer within ${timeoutMs} ms` })
      req.destroy()
    }, timeoutMs)
    req.on("response", (res) => {
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.on("end", () => finish({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on(
        "error",
        (error) =>
          finish({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            error: `answer cut: ${error.message}`
          })
      )
    })
    req.on("error", (error) => finish({ headers: {}, body: Buffer.concat(chunks), error: error.message }))
    req.end(request.body)
  })

/** Raw bytes on a fresh connection: what came back, and whether (and when) the broker closed it. */
export interface RawAnswer {
  readonly bytes: Buffer
  /** Milliseconds from the first byte sent until the broker closed the connection or the first answer ended. */
  readonly ms: number
  readonly closedByBroker: boolean
  readonly error?: string
}

export interface RawRequest {
  /** Written in order, `gapMs` apart. */
  readonly chunks: ReadonlyArray<string | Buffer>
  readonly gapMs?: number
  /** Stop once this many bytes came back (then hang up, as a client that read a little would). */
  readonly hangUpAfterBytes?: number
  /** Stop once what came back is complete by this test (a pipeline's last answer). */
  readonly complete?: (bytes: Buffer) => boolean
  /** Stop waiting after this long (the exchange then has `closedByBroker: false`). */
  readonly waitMs: number
}

/** The status of the first answer in `bytes` (`HTTP/1.1 400 …`), if one came. */
export const rawStatus = (bytes: Buffer): number | undefined => {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(bytes.subarray(0, 16).toString("latin1"))
  return match === null ? undefined : Number(match[1])
}

export const sendRaw = (target: Target, request: RawRequest): Promise<RawAnswer> =>
  new Promise((resolve) => {
    const started = performance.now()
    const chunks: Array<Buffer> = []
    let received = 0
    let settled = false
    const socket = net.connect(target.port, target.host)
    const finish = (closedByBroker: boolean, error?: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({
        bytes: Buffer.concat(chunks),
        ms: performance.now() - started,
        closedByBroker,
        ...(error ? { error } : {})
      })
    }
    const timer = setTimeout(() => finish(false), request.waitMs)
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      received += chunk.length
      if (request.hangUpAfterBytes !== undefined && received >= request.hangUpAfterBytes) finish(false)
      else if (request.complete?.(Buffer.concat(chunks))) finish(false)
    })
    socket.on("end", () => finish(true))
    socket.on("close", () => finish(true))
    socket.on("error", (error) => finish(true, error.message))
    socket.on("connect", async () => {
      for (const [i, chunk] of request.chunks.entries()) {
        if (settled || socket.destroyed) return
        if (i > 0 && request.gapMs) await new Promise((r) => setTimeout(r, request.gapMs))
        if (!socket.destroyed) socket.write(chunk)
      }
    })
  })

// ---------------------------------------------------------------------------------------------
// WebSocket (RFC 6455), client side, on a plain socket.

export const opcodes = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const

export interface WsFrame {
  readonly opcode: number
  readonly payload: Buffer
  /** Default true. */
  readonly fin?: boolean
  /** Reserved bits (RSV1–3) as a 3-bit number; 0 for a valid frame. */
  readonly rsv?: number
  /** Send unmasked (a protocol error from a client). */
  readonly unmasked?: boolean
}

/**
 * One frame as a client sends it. The mask key is zero unless asked otherwise: masking then
 * changes no byte, which is valid and lets a 90 MB frame go out without a copy.
 */
export const encodeFrame = (frame: WsFrame): Buffer => {
  const { payload } = frame
  const length = payload.length
  const lengthBytes = length < 126 ? 0 : length < 65_536 ? 2 : 8
  const header = Buffer.alloc(2 + lengthBytes + (frame.unmasked ? 0 : 4))
  header[0] = ((frame.fin ?? true) ? 0x80 : 0) | ((frame.rsv ?? 0) << 4) | frame.opcode
  const maskBit = frame.unmasked ? 0 : 0x80
  if (lengthBytes === 0) header[1] = maskBit | length
  else if (lengthBytes === 2) {
    header[1] = maskBit | 126
    header.writeUInt16BE(length, 2)
  } else {
    header[1] = maskBit | 127
    header.writeBigUInt64BE(BigInt(length), 2)
  }
  return Buffer.concat([header, payload])
}

export interface WsRequest {
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly frames: ReadonlyArray<WsFrame | Buffer>
  /** Request ids whose `Exit` ends the exchange once all came; without any, it ends after `quietMs` of silence. */
  readonly expectIds: ReadonlyArray<string>
  readonly quietMs?: number
}

export interface WsAnswer {
  /** The handshake's status (101 when upgraded), absent when none came. */
  readonly status?: number
  /** The handshake's answer when it was refused: its head and body. */
  readonly refusal?: string
  /** Text frames from the broker. */
  readonly messages: ReadonlyArray<string>
  /** The broker's close frame, if it sent one. */
  readonly close?: { readonly code: number; readonly reason: string }
  /** Whether the broker ended the connection (close frame or hang-up) before the client did. */
  readonly closedByBroker: boolean
  /** Whether every frame was written before the broker hung up. */
  readonly sentAll: boolean
  /** Milliseconds from the last frame written to the last expected answer (or the close). */
  readonly ms: number
  readonly error?: string
}

const crlf2 = Buffer.from("\r\n\r\n")

/** Parses frames from the broker (unmasked) at the front of `buffer`; returns what is left. */
const readFrames = (
  buffer: Buffer,
  onFrame: (opcode: number, payload: Buffer) => void
): Buffer => {
  let rest = buffer
  for (;;) {
    if (rest.length < 2) return rest
    const opcode = rest[0]! & 0x0f
    let length = rest[1]! & 0x7f
    let offset = 2
    if (length === 126) {
      if (rest.length < 4) return rest
      length = rest.readUInt16BE(2)
      offset = 4
    } else if (length === 127) {
      if (rest.length < 10) return rest
      length = Number(rest.readBigUInt64BE(2))
      offset = 10
    }
    if (rest.length < offset + length) return rest
    onFrame(opcode, rest.subarray(offset, offset + length))
    rest = rest.subarray(offset + length)
  }
}

/** The request ids of the `Exit` messages in `messages`. */
export const exitIds = (messages: ReadonlyArray<string>): Set<string> => {
  const ids = new Set<string>()
  for (const message of messages) {
    try {
      const parsed = JSON.parse(message) as unknown
      for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
        if (typeof m === "object" && m !== null && (m as { _tag?: unknown })._tag === "Exit") {
          ids.add(String((m as { requestId?: unknown }).requestId))
        }
      }
    } catch {
      // not JSON: the checks report it
    }
  }
  return ids
}

export const sendWs = (target: Target, request: WsRequest, timeoutMs = hardTimeoutMs): Promise<WsAnswer> =>
  new Promise((resolve) => {
    const socket = net.connect(target.port, target.host)
    const messages: Array<string> = []
    const fragments: Array<Buffer> = []
    let head: Buffer = Buffer.alloc(0)
    let pending: Buffer = Buffer.alloc(0)
    let status: number | undefined
    let close: WsAnswer["close"]
    let sentAll = false
    let settled = false
    let sentAt = performance.now()
    let quiet: NodeJS.Timeout | undefined
    const finish = (closedByBroker: boolean, error?: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearTimeout(quiet)
      const refusal = status !== undefined && status !== 101
        ? Buffer.concat([head, pending]).toString("utf8")
        : undefined
      if (!socket.destroyed) {
        if (status === 101 && !closedByBroker) {
          socket.write(encodeFrame({ opcode: opcodes.close, payload: Buffer.from([0x03, 0xe8]) }))
        }
        socket.end()
        setTimeout(() => socket.destroy(), 100)
      }
      resolve({
        ...(status !== undefined ? { status } : {}),
        ...(refusal !== undefined ? { refusal } : {}),
        messages,
        ...(close ? { close } : {}),
        closedByBroker,
        sentAll,
        ms: performance.now() - sentAt,
        ...(error ? { error } : {})
      })
    }
    const timer = setTimeout(() => finish(false, `no complete answer within ${timeoutMs} ms`), timeoutMs)
    const armQuiet = () => {
      if (request.expectIds.length > 0) return
      clearTimeout(quiet)
      quiet = setTimeout(() => finish(false), request.quietMs ?? 150)
    }
    const answered = () => {
      if (request.expectIds.length === 0) return armQuiet()
      const ids = exitIds(messages)
      if (request.expectIds.every((id) => ids.has(id))) finish(false)
    }
    const onFrame = (opcode: number, payload: Buffer) => {
      if (opcode === opcodes.close) {
        close = {
          code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005,
          reason: payload.subarray(2).toString("utf8")
        }
        finish(true)
      } else if (opcode === opcodes.ping) {
        socket.write(encodeFrame({ opcode: opcodes.pong, payload }))
      } else if (opcode === opcodes.text || opcode === opcodes.binary || opcode === opcodes.continuation) {
        fragments.push(payload)
        // a final frame ends the message (FIN is not tracked: the broker does not fragment)
        messages.push(Buffer.concat(fragments).toString("utf8"))
        fragments.length = 0
        answered()
      }
    }
    socket.on("data", (chunk: Buffer) => {
      if (status === undefined) {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf(crlf2)
        if (end < 0) return
        const match = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, 16).toString("latin1"))
        status = match === null ? 0 : Number(match[1])
        pending = head.subarray(end + 4)
        head = head.subarray(0, end + 4)
        if (status !== 101) return // the refusal's body follows; the broker closes or the timer ends it
        void writeFrames()
        pending = readFrames(pending, onFrame)
        return
      }
      pending = readFrames(Buffer.concat([pending, chunk]), status === 101 ? onFrame : () => {})
      if (status !== 101) {
        const text = Buffer.concat([head, pending]).toString("latin1")
        const length = /content-length:\s*(\d+)/i.exec(text)
        const chunkedEnd = /transfer-encoding:\s*chunked/i.test(text) && pending.includes("0\r\n\r\n")
        if ((length !== null && pending.length >= Number(length[1])) || chunkedEnd) finish(true)
      }
    })
    socket.on("end", () => finish(true))
    socket.on("close", () => finish(true))
    socket.on("error", (error) => finish(true, error.message))
    const writeFrames = async () => {
      for (const frame of request.frames) {
        if (settled || socket.destroyed) return
        const bytes = Buffer.isBuffer(frame) ? frame : encodeFrame(frame)
        const flushed = socket.write(bytes)
        if (!flushed) await new Promise<void>((r) => socket.once("drain", () => r()).once("close", () => r()))
      }
      if (settled || socket.destroyed) return
      sentAll = true
      sentAt = performance.now()
      armQuiet()
    }
    socket.on("connect", () => {
      const lines = [
        `GET ${request.path} HTTP/1.1`,
        `Host: ${target.host}:${target.port}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`,
        "Sec-WebSocket-Version: 13",
        ...Object.entries(request.headers).map(([k, v]) => `${k}: ${v}`)
      ]
      socket.write(Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"))
    })
  })
