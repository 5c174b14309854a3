/**
 * A minimal keep-alive HTTP/1.1 client over one `net` socket, one request at a time: what the
 * REST bench sends with, so that the load measures the broker and not Node's `http` client
 * (its agent, parser and objects cost the load process more CPU per request than the broker).
 */
import { connect, type Socket } from "node:net"

export interface Answer {
  readonly status: number
  readonly body: string
}

interface Waiting {
  readonly resolve: (answer: Answer) => void
  readonly reject: (error: Error) => void
}

const headerEnd = Buffer.from("\r\n\r\n")

export class RestConnection {
  private readonly socket: Socket
  private buffered: Buffer = Buffer.alloc(0)
  private waiting: Waiting | undefined

  constructor(private readonly target: URL) {
    this.socket = connect(Number(target.port), target.hostname)
    this.socket.setNoDelay(true)
    this.socket.on("data", (chunk: Buffer) => this.receive(chunk))
    this.socket.on("error", (error) => this.fail(error))
    this.socket.on("close", () => this.fail(new Error("the broker closed the connection")))
  }

  /** POSTs a body (JSON unless `contentType` says otherwise); resolves with the status and body once the whole answer is read. */
  post(path: string, body: string, contentType = "application/json"): Promise<Answer> {
    if (this.waiting !== undefined) return Promise.reject(new Error("one request at a time per connection"))
    return new Promise<Answer>((resolve, reject) => {
      this.waiting = { resolve, reject }
      this.socket.write(
        `POST ${path} HTTP/1.1\r\nhost: ${this.target.host}\r\ncontent-type: ${contentType}\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
      )
    })
  }

  close(): void {
    this.socket.destroy()
  }

  private receive(chunk: Buffer) {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk])
    const end = this.buffered.indexOf(headerEnd)
    if (end === -1) return
    const head = this.buffered.subarray(0, end).toString("latin1")
    const status = Number(head.slice(9, 12))
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
    let total: number
    let body: string
    if (length !== null) {
      total = end + 4 + Number(length[1])
      if (this.buffered.length < total) return
      body = this.buffered.subarray(end + 4, total).toString("utf8")
    } else {
      // chunked: the answer ends with the last, empty chunk
      const last = this.buffered.indexOf("0\r\n\r\n", end + 4)
      if (last === -1) return
      total = last + 5
      body = dechunk(this.buffered.subarray(end + 4, last))
    }
    this.buffered = this.buffered.subarray(total)
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.resolve({ status, body })
  }

  private fail(error: Error) {
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.reject(error)
  }
}

/** The data of a chunked body (without its last, empty chunk). */
const dechunk = (raw: Buffer): string => {
  const parts: Array<Buffer> = []
  let at = 0
  while (at < raw.length) {
    const line = raw.indexOf("\r\n", at)
    const size = parseInt(raw.subarray(at, line).toString("latin1"), 16)
    parts.push(raw.subarray(line + 2, line + 2 + size))
    at = line + 2 + size + 2
  }
  return Buffer.concat(parts).toString("utf8")
}
