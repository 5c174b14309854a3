/**
 * A segment file's entries (package README, "Logs in segment files"): the format, and the scan
 * that indexes the first intact entry of each position, passing over torn ones.
 *
 * An entry is a mark byte 0xFF, a header line in ASCII (`<position> <length> <crc32> <tag>`) and
 * the body. A body is UTF-8 text, which never holds 0xFF, so a mark starts an entry and nothing
 * else: a scan that meets a torn entry (a writer killed mid-write, a crash before the fsync) goes
 * on at the next mark.
 */
import * as NodeFs from "node:fs"
import { crc32 } from "node:zlib"

/**
 * Positions per segment file, removed whole once a checkpoint covers them: small enough that
 * collection lags a checkpoint by little (the broker checkpoints every minute at least), large
 * enough that a new file and its folder's fsync are rare beside the appends.
 */
export const SEGMENT_ENTRIES = 128

export const MARK = 0xff
const NEWLINE = 0x0a
/** A header longer than this is not one (a position, a length, a crc and a tag of at most 256). */
const MAX_HEADER = 320
/** The most a scan reads at once: a follower catching up does not read a whole segment in one call. */
const CHUNK = 1 << 20
export const TAG = /^[!-~]{1,256}$/

export interface Entry {
  readonly offset: number
  readonly length: number
  readonly tag: string
}

/** What a process knows of one segment file. */
export interface SegmentIndex {
  readonly start: number
  readonly fd: number
  /** Every byte before this is parsed: each intact entry indexed, anything else passed over. */
  scanned: number
  /** The first intact entry of each position seen. */
  readonly entries: Map<number, Entry>
}

export const headerOf = (position: number, length: number, tag: string, parts: ReadonlyArray<Uint8Array>): Buffer => {
  const fields = `${position} ${length} ${tag}`
  let crc = crc32(fields)
  // An empty part is skipped: one with no memory behind it (TextEncoder's "") makes Node's crc32
  // answer 0, not the crc it was given.
  for (const part of parts) if (part.length > 0) crc = crc32(part, crc)
  return Buffer.from(`\xff${position} ${length} ${crc.toString(16).padStart(8, "0")} ${tag}\n`, "latin1")
}

/** What a parse of bytes decided: how many are done with, and (if more than what was read) how many the next entry needs. */
interface Parsed {
  readonly consumed: number
  readonly need: number
}

/**
 * Indexes the intact entries in `bytes`, which start at `base` in the segment. Stops before an
 * entry that runs past the bytes (when they end the file, one being written, or torn at the end:
 * a later append's mark inside it shows which).
 */
const parse = (segment: SegmentIndex, bytes: Buffer, base: number): Parsed => {
  let at = 0
  while (at < bytes.length) {
    if (bytes[at] !== MARK) {
      const next = bytes.indexOf(MARK, at)
      if (next === -1) return { consumed: bytes.length, need: 0 }
      at = next
      continue
    }
    const nextMark = bytes.indexOf(MARK, at + 1)
    const newline = bytes.indexOf(NEWLINE, at + 1)
    const tornAt = nextMark === -1 ? bytes.length : nextMark
    if (newline === -1 || newline > tornAt) {
      // No header line before the next mark: torn, unless the bytes end within a header's reach.
      if (nextMark === -1 && bytes.length - at <= MAX_HEADER) return { consumed: at, need: MAX_HEADER + 1 }
      at = tornAt
      continue
    }
    const fields = bytes.toString("latin1", at + 1, newline).split(" ")
    const position = Number(fields[0])
    const length = Number(fields[1])
    const tag = fields[3] ?? ""
    const bodyStart = newline + 1
    const bodyEnd = bodyStart + length
    if (
      newline - at > MAX_HEADER || fields.length !== 4 || !/^\d+$/.test(fields[0]!) || !/^\d+$/.test(fields[1]!) ||
      !Number.isSafeInteger(position) || !Number.isSafeInteger(length) || !TAG.test(tag)
    ) {
      at = tornAt
      continue
    }
    if (nextMark !== -1 && nextMark < bodyEnd) {
      at = nextMark
      continue
    }
    if (bodyEnd > bytes.length) return { consumed: at, need: bodyEnd - at }
    const body = bytes.subarray(bodyStart, bodyEnd)
    const crc = crc32(body, crc32(`${position} ${length} ${tag}`)).toString(16).padStart(8, "0")
    if (
      crc === fields[2] && position >= segment.start && position < segment.start + SEGMENT_ENTRIES &&
      !segment.entries.has(position)
    ) {
      segment.entries.set(position, { offset: base + bodyStart, length, tag })
    }
    at = bodyEnd
  }
  return { consumed: at, need: 0 }
}

/**
 * After an append of `position`: when nothing the segment holds beyond what was read is anything
 * but that entry (its bytes are all there is), indexes it without reading it back. Its writer
 * knows it whole, and it is the position's: an earlier entry of the position would be indexed
 * already, as a scan never passes over an entry without indexing it or finding it torn.
 */
export const indexedAsOnlyNew = (
  segment: SegmentIndex,
  position: number,
  tag: string,
  headerLength: number,
  bodyLength: number
): boolean => {
  if (segment.entries.has(position)) return false
  const size = NodeFs.fstatSync(segment.fd).size
  if (size - segment.scanned !== headerLength + bodyLength) return false
  segment.entries.set(position, { offset: segment.scanned + headerLength, length: bodyLength, tag })
  segment.scanned = size
  return true
}

/** Reads the segment on from where it was read to, until `want` is indexed or the file ends. */
export const scan = (segment: SegmentIndex, want: number | undefined): void => {
  // A position already indexed is known: the file need not even be looked at.
  if (want !== undefined && segment.entries.has(want)) return
  const size = NodeFs.fstatSync(segment.fd).size
  let need = 0
  while (segment.scanned < size && (want === undefined || !segment.entries.has(want))) {
    const length = Math.min(size - segment.scanned, Math.max(CHUNK, need))
    const bytes = Buffer.allocUnsafe(length)
    const read = NodeFs.readSync(segment.fd, bytes, 0, length, segment.scanned)
    const readToEnd = segment.scanned + read >= size
    const parsed = parse(segment, bytes.subarray(0, read), segment.scanned)
    segment.scanned += parsed.consumed
    // An entry not whole at the end of the file: being written, or torn (a later append shows which).
    if (parsed.need > 0 && segment.scanned + parsed.need > size) {
      if (readToEnd) return
      // Only this read ended within it: the rest of the file may hold a later append's mark.
      need = size - segment.scanned
      continue
    }
    need = parsed.need
  }
}
