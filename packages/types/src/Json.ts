/**
 * How deep JSON may nest. A body of 100,000 nested arrays parses (V8's `JSON.parse` does not
 * recurse), but whatever walks the value afterwards — Schema, error formatting, `JSON.stringify`
 * of a payload at commit time — recurses and can overflow the stack: so the broker checks the
 * text's nesting before anything parses it, with a loop, never by recursion (docs/architecture.md,
 * "Hostile input").
 */

/** Default most levels of arrays and objects in any JSON the broker accepts (whole bodies, frames). */
export const defaultMaxJsonDepth = 64

/** Most levels a `maxJsonDepth` setting may allow: past this, a walk of the value may overflow the stack. */
export const maxJsonDepthLimit = 1_000

const OPEN_BRACE = 123 // {
const OPEN_BRACKET = 91 // [
const CLOSE_BRACE = 125 // }
const CLOSE_BRACKET = 93 // ]
const QUOTE = 34 // "
const BACKSLASH = 92 // \

/**
 * True when `text` nests arrays and objects deeper than `limit` levels. It looks only at
 * brackets outside strings, so it stops at the first level too many and never builds a value;
 * malformed JSON is left for the parser to name. A string is passed over by `indexOf` to its
 * closing quote (one not escaped: after an even run of backslashes), not character by character:
 * strings are most of a request's text (payloads, keys), and the scan was the dearer half of
 * reading a batch of jobs, dearer than `JSON.parse` itself.
 */
export const textNestsDeeperThan = (text: string, limit: number): boolean => {
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      i = closingQuote(text, i)
      if (i === -1) return false
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > limit) return true
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--
    }
  }
  return false
}

/** Where the string opened at `open` ends: its first quote after an even run of backslashes (-1: none). */
const closingQuote = (text: string, open: number): number => {
  for (let at = open;;) {
    at = text.indexOf("\"", at + 1)
    if (at === -1) return -1
    let backslash = at - 1
    while (text.charCodeAt(backslash) === BACKSLASH) backslash--
    if ((at - 1 - backslash) % 2 === 0) return at
  }
}

/** What a client is told when its JSON nests too deep. */
export const tooDeepMessage = (what: string, limit: number): string =>
  `${what} nests arrays and objects more than ${limit} levels deep; flatten it (the limit is OSQUEUE_MAX_JSON_DEPTH)`
