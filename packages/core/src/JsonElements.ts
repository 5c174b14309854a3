/**
 * The elements of one array in a JSON object, found without parsing the object: a checkpoint or
 * a log entry is a few header fields and an array of jobs, and each job's bytes are worth keeping
 * as they are (docs/architecture.md, "Checkpoints"). Parsing each element on its own and keeping
 * its bytes spares the takeover a decode of the whole document into one string, and a re-encode
 * of every job for its size and for the next checkpoint.
 *
 * The scan only finds boundaries; validity is left to `JSON.parse` of the header (the document
 * with that array emptied) and of each element, which together accept exactly what a parse of the
 * whole would. Bytes laid out some other way (the array missing, or named twice) give undefined,
 * and the caller parses the whole as before.
 */
import * as Either from "effect/Either"

const quote = 0x22
const backslash = 0x5c
const comma = 0x2c
const colon = 0x3a
const openBrace = 0x7b
const closeBrace = 0x7d
const openBracket = 0x5b
const closeBracket = 0x5d

const separator = Buffer.from(",")

const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09

export interface Split {
  /** The document with the array emptied (`[]`): the header fields, for `JSON.parse`. */
  readonly header: string
  /**
   * Each element's bytes with a comma in front (and any whitespace that followed it): the layout
   * of a job's cached bytes in `QueueState`, sliced without copying (the first is a copy).
   */
  readonly elements: ReadonlyArray<Uint8Array>
}

/**
 * The index just past the string whose opening quote is at `at`, or -1 if it never closes. Most
 * strings in a job are short keys, where a byte loop beats a native search's call; a long one
 * (a payload's) is searched natively past its first bytes.
 */
const afterString = (bytes: Buffer, at: number): number => {
  const end = bytes.length
  const looped = Math.min(end, at + 32)
  let i = at + 1
  for (; i < looped; i++) {
    const b = bytes[i]
    if (b === quote) return i + 1
    // An escape: the byte after the backslash (a quote, another backslash) is not the end.
    if (b === backslash) i++
  }
  for (;;) {
    i = bytes.indexOf(quote, i)
    if (i < 0) return -1
    let slashes = 0
    while (bytes[i - 1 - slashes] === backslash) slashes++
    if (slashes % 2 === 0) return i + 1
    i++
  }
}

/** Splits the top-level object's array under `key` from the rest; undefined when the bytes are not laid out so. */
export const splitArray = (input: Uint8Array, key: string): Split | undefined => {
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength)
  const wanted = Buffer.from(JSON.stringify(key))
  let depth = 0
  let expectKey = false
  let arrayStart = -1
  let arrayEnd = -1
  let found = false
  const elements: Array<Uint8Array> = []
  let elementFrom = -1
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!
    if (b === quote) {
      const end = afterString(bytes, i)
      if (end < 0) return undefined
      if (depth === 1 && expectKey) {
        expectKey = false
        if (end - i === wanted.length && bytes.compare(wanted, 0, wanted.length, i, end) === 0) {
          if (found) return undefined
          let j = end
          while (isSpace(bytes[j]!)) j++
          if (bytes[j] !== colon) return undefined
          j++
          while (isSpace(bytes[j]!)) j++
          if (bytes[j] !== openBracket) return undefined
          found = true
          arrayStart = j
          elementFrom = j
          depth = 2
          i = j
          continue
        }
      }
      i = end - 1
      continue
    }
    if (b === openBrace || b === openBracket) {
      depth++
      if (depth === 1) expectKey = true
    } else if (b === closeBrace || b === closeBracket) {
      if (depth === 2 && arrayStart >= 0 && arrayEnd < 0) {
        if (b !== closeBracket) return undefined
        let end = i
        while (isSpace(bytes[end - 1]!)) end--
        // `[` then only whitespace: an empty array, no element.
        if (end > elementFrom + 1 || elements.length > 0) elements.push(bytes.subarray(elementFrom, end))
        arrayEnd = i + 1
      }
      depth--
      if (depth < 0) return undefined
    } else if (b === comma) {
      if (depth === 1) expectKey = true
      else if (depth === 2 && arrayStart >= 0 && arrayEnd < 0) {
        let end = i
        while (isSpace(bytes[end - 1]!)) end--
        elements.push(bytes.subarray(elementFrom, end))
        elementFrom = i
      }
    }
  }
  if (!found || arrayEnd < 0 || depth !== 0) return undefined
  // The first element follows the `[`: it gets a comma of its own, so every element reads alike.
  if (elements.length > 0) elements[0] = Buffer.concat([separator, elements[0]!.subarray(1)])
  const header = `${bytes.toString("utf8", 0, arrayStart)}[]${bytes.toString("utf8", arrayEnd)}`
  return { header, elements }
}

/** The whole document parsed at once, or why it is not JSON. */
export const parseWhole = (bytes: Uint8Array): Either.Either<unknown, string> => {
  try {
    return Either.right(JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")))
  } catch (e) {
    return Either.left(`not JSON (${(e as Error).message})`)
  }
}

/** An element's JSON text, without its separator byte. */
export const elementText = (element: Uint8Array): string => {
  // A `Buffer` already (a job's bytes in the state): no second view of it.
  const bytes = Buffer.isBuffer(element) ? element : Buffer.from(element.buffer, element.byteOffset, element.byteLength)
  return bytes.toString("utf8", 1)
}
