/**
 * One generation of a key on disk: a JSON header line, then the object's bytes. The version the
 * store hands out names a generation and its file's nonce, `<gen>.<nonce>` (package README,
 * "On-disk layout").
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as NodeCrypto from "node:crypto"
import { Corrupt } from "./errors.js"
import { NEWLINE } from "./fs.js"

/** First line of every generation file; the object's bytes follow the newline. */
export const Header = Schema.Struct({
  v: Schema.Literal(1),
  key: Schema.String,
  gen: Schema.Number,
  /** Random per file: tells two files that ever held the same generation number apart. */
  nonce: Schema.String,
  /** Nonce of the generation this one was written on top of; null for generation 0. */
  parent: Schema.NullOr(Schema.String),
  deleted: Schema.Boolean,
  size: Schema.Number,
  metadata: Schema.Record({ key: Schema.String, value: Schema.String })
})
export type Header = typeof Header.Type
const decodeHeader = Schema.decodeUnknownEither(Schema.parseJson(Header))

/** The header line as written, newline included. */
export const headerLine = (header: Header): Buffer => Buffer.from(JSON.stringify(header) + "\n")

/** A generation and the nonce of its file: what a version names. */
export interface GenerationId {
  readonly gen: number
  readonly nonce: string
}

export const genName = (gen: number) => String(gen).padStart(12, "0")
export const parseGenName = (name: string): number | undefined => (/^\d+$/.test(name) ? Number(name) : undefined)

export const versionOf = (gen: number, nonce: string) => `${gen}.${nonce}`
export const parseVersion = (version: string): GenerationId | undefined => {
  const match = /^(\d+)\.([0-9a-f]{16})$/.exec(version)
  return match?.[1] === undefined || match[2] === undefined ? undefined : { gen: Number(match[1]), nonce: match[2] }
}
/** Random bytes for nonces, drawn 4 KiB at a time: a call into the CSPRNG per 512 nonces, not per write. */
let randomPool = Buffer.alloc(0)
let randomOffset = 0
export const newNonce = () => {
  if (randomOffset + 8 > randomPool.length) {
    randomPool = NodeCrypto.randomBytes(4096)
    randomOffset = 0
  }
  randomOffset += 8
  return randomPool.toString("hex", randomOffset - 8, randomOffset)
}

export interface GenFile {
  readonly header: Header
  /** Present when the body was read. */
  readonly body: Uint8Array | undefined
}

export const parseGenFile = (path: string, buffer: Buffer, withBody: boolean): Either.Either<GenFile, Corrupt> => {
  const newline = buffer.indexOf(NEWLINE)
  if (newline < 0) return Either.left(new Corrupt({ path, reason: "no header line" }))
  const header = decodeHeader(buffer.subarray(0, newline).toString("utf8"))
  if (Either.isLeft(header)) return Either.left(new Corrupt({ path, reason: "unreadable header" }))
  if (!withBody) return Either.right({ header: header.right, body: undefined })
  const size = buffer.length - newline - 1
  if (size !== header.right.size) {
    return Either.left(new Corrupt({ path, reason: `body is ${size} bytes, header says ${header.right.size}` }))
  }
  // A plain Uint8Array view (not a Buffer) so callers see exactly the type the interface names.
  return Either.right({
    header: header.right,
    body: new Uint8Array(buffer.buffer, buffer.byteOffset + newline + 1, size)
  })
}
