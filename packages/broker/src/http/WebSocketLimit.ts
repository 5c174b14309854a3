/**
 * The largest message a WebSocket client may send, enforced on the socket as frames arrive.
 * This reads each frame's header (RFC 6455 §5.2) as the bytes go by and adds up the payload
 * lengths of a message's frames (the server negotiates no compression, so what a frame carries is
 * what the message holds); when a message would pass the limit, the connection is closed with
 * 1009 (Message Too Big) naming the limit, having read only what had already arrived. (ws's own
 * `maxPayload` closes with 1009 too, but with no reason, and ends only its side of the
 * connection, reading and dropping what the client goes on sending.)
 */
import type { Duplex } from "node:stream"
import * as HttpChecks from "./HttpChecks.js"

/** Close code 1009: a message too big to process. */
const messageTooBig = 1009

/** Bytes of a frame header: 2, the extended length (2 or 8 bytes), the mask key (4 bytes). */
const headerBytes = (header: Buffer): number => {
  if (header.length < 2) return 2
  const length7 = header[1]! & 0x7f
  return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + ((header[1]! & 0x80) !== 0 ? 4 : 0)
}

const payloadBytes = (header: Buffer): number => {
  const length7 = header[1]! & 0x7f
  if (length7 < 126) return length7
  if (length7 === 126) return header.readUInt16BE(2)
  // Up to 2^64: past 2^53 the sum is inexact, and far past any limit anyway.
  return header.readUInt32BE(2) * 2 ** 32 + header.readUInt32BE(6)
}

/** A close frame from the server (unmasked) with `code` and a reason of at most 123 bytes. */
const closeFrame = (code: number, reason: string): Buffer => {
  const text = Buffer.from(reason).subarray(0, 123)
  return Buffer.concat([Buffer.from([0x88, 2 + text.length, code >> 8, code & 0xff]), text])
}

/**
 * Watches the frames `socket` carries once something reads it (the WebSocket server, after the
 * handshake): reading it before would start the data flowing with no one to take it.
 */
export const install = (socket: Duplex, maxMessageBytes: number): void => {
  let header = Buffer.alloc(0)
  let skip = 0
  let message = 0

  const refuse = () => {
    socket.removeListener("data", onData)
    socket.pause()
    HttpChecks.refusedCounter("too_large").unsafeUpdate(1, [])
    const reason = `a message over ${maxMessageBytes} bytes (OSQUEUE_MAX_BODY_BYTES)`
    socket.write(closeFrame(messageTooBig, reason), () => socket.destroy())
    // A client that reads nothing would hold the write, and the socket with it.
    setTimeout(() => socket.destroy(), 1_000).unref()
  }

  const onData = (chunk: Buffer) => {
    let at = 0
    while (at < chunk.length) {
      if (skip > 0) {
        const passed = Math.min(skip, chunk.length - at)
        skip -= passed
        at += passed
        continue
      }
      const take = Math.min(headerBytes(header) - header.length, chunk.length - at)
      header = Buffer.concat([header, chunk.subarray(at, at + take)])
      at += take
      if (header.length < headerBytes(header)) continue
      const final = (header[0]! & 0x80) !== 0
      const opcode = header[0]! & 0x0f
      skip = payloadBytes(header)
      header = Buffer.alloc(0)
      // Control frames (close, ping, pong) may come between a message's frames and are not part of it.
      if (opcode >= 0x8) continue
      message += skip
      if (message > maxMessageBytes) return refuse()
      if (final) message = 0
    }
  }

  const watch = (event: string | symbol) => {
    if (event !== "data") return
    socket.removeListener("newListener", watch)
    socket.prependListener("data", onData)
  }
  socket.on("newListener", watch)
}
