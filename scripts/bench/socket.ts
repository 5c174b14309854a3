/**
 * A minimal WebSocket client over one `net` socket (RFC 6455: the handshake, masked text frames
 * out, unmasked frames in), one message in flight at a time: what the per-operation bench speaks
 * RPC over WebSocket with, so that the load measures the broker and not a client library.
 */
import { randomBytes } from "node:crypto"
import { connect, type Socket } from "node:net"

export class SocketConnection {
  private buffered: Buffer = Buffer.alloc(0)
  private open = false
  private waiting: ((text: string) => void) | undefined

  private constructor(private readonly socket: Socket) {}

  /** Opens a WebSocket to `url` (`ws://host:port/path`). */
  static open(url: URL): Promise<SocketConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname)
      socket.setNoDelay(true)
      const connection = new SocketConnection(socket)
      socket.on("error", reject)
      socket.on("data", (chunk: Buffer) => connection.receive(chunk, () => resolve(connection)))
      socket.write(
        `GET ${url.pathname} HTTP/1.1\r\nhost: ${url.host}\r\nconnection: Upgrade\r\nupgrade: websocket\r\n` +
          `sec-websocket-version: 13\r\nsec-websocket-key: ${randomBytes(16).toString("base64")}\r\n\r\n`
      )
    })
  }

  /** Sends `text` as one frame; resolves with the next message that `accept` takes (others, e.g. pings, are dropped). */
  request(text: string, accept: (message: string) => boolean): Promise<string> {
    return new Promise((resolve) => {
      this.waiting = (message) => {
        if (!accept(message)) return
        this.waiting = undefined
        resolve(message)
      }
      this.socket.write(frame(Buffer.from(text, "utf8")))
    })
  }

  close(): void {
    this.socket.destroy()
  }

  private receive(chunk: Buffer, opened: () => void) {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk])
    if (!this.open) {
      const end = this.buffered.indexOf("\r\n\r\n")
      if (end === -1) return
      this.buffered = this.buffered.subarray(end + 4)
      this.open = true
      opened()
    }
    while (this.buffered.length >= 2) {
      const length7 = this.buffered[1]! & 0x7f
      const head = 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0)
      if (this.buffered.length < head) return
      const length = length7 === 126
        ? this.buffered.readUInt16BE(2)
        : length7 === 127
        ? Number(this.buffered.readBigUInt64BE(2))
        : length7
      if (this.buffered.length < head + length) return
      const opcode = this.buffered[0]! & 0x0f
      const payload = this.buffered.subarray(head, head + length)
      this.buffered = this.buffered.subarray(head + length)
      if (opcode === 0x1) this.waiting?.(payload.toString("utf8"))
    }
  }
}

/** A final, masked text frame (a client must mask). */
const frame = (payload: Buffer): Buffer => {
  const mask = randomBytes(4)
  const length = payload.length
  const header = length < 126
    ? Buffer.from([0x81, 0x80 | length])
    : length < 65_536
    ? Buffer.from([0x81, 0x80 | 126, length >> 8, length & 0xff])
    : Buffer.concat([
      Buffer.from([0x81, 0x80 | 127]),
      Buffer.from(new BigUint64Array([BigInt(length)]).buffer).reverse()
    ])
  const masked = Buffer.alloc(length)
  for (let i = 0; i < length; i++) masked[i] = payload[i]! ^ mask[i & 3]!
  return Buffer.concat([header, mask, masked])
}
