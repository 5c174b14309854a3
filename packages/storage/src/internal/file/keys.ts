/**
 * Keys as folders: each "/"-separated segment of a key is one folder under `objects/`, encoded
 * so that no key can escape the store's directory, and the key's generations sit in a folder
 * named `@` inside it (so keys "a" and "a/b" live side by side).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { BadKey } from "./errors.js"
import { type FsError, fsOp, optional } from "./fs.js"

/** Name of the folder of generations inside a key's folder. Encoded key segments never contain a raw "@". */
export const GENERATIONS = "@"

// encodeURIComponent leaves [A-Za-z0-9-_.!~*'()] alone and escapes "@", so a key segment never
// collides with the GENERATIONS folder; "*" is escaped too because some file systems reject it.
export const encodeSegment = (segment: string) => encodeURIComponent(segment).replace(/\*/g, "%2A")
const decodeSegment = (name: string): string | undefined => {
  try {
    return decodeURIComponent(name)
  } catch {
    return undefined
  }
}

/** Folder of a key's generations; rejects keys that could escape the store's directory. */
export const generationsDir = (objectsDir: string, key: string): Either.Either<string, BadKey> => {
  if (key.length === 0) return Either.left(new BadKey({ reason: "the key is empty" }))
  const segments = key.split("/")
  const encoded: Array<string> = []
  for (const segment of segments) {
    if (segment === "." || segment === "..") {
      return Either.left(new BadKey({ reason: `"${segment}" segments are not allowed in keys (path traversal)` }))
    }
    if (segment.length === 0) {
      return Either.left(new BadKey({ reason: "empty path segment (leading, trailing or double \"/\")" }))
    }
    try {
      encoded.push(encodeSegment(segment))
    } catch {
      return Either.left(new BadKey({ reason: "the key is not valid Unicode" }))
    }
  }
  return Either.right(NodePath.join(objectsDir, ...encoded, GENERATIONS))
}

/**
 * Every key with a generations folder under the folders of `folders` whose next segment starts
 * with `partial`: the candidates of a `list`, live or not (the caller looks each one up).
 */
export const keysWithFolders = (
  objectsDir: string,
  folders: ReadonlyArray<string>,
  partial: string
): Effect.Effect<Array<string>, FsError> => {
  const candidates: Array<string> = []
  const walk = (dir: string, segments: ReadonlyArray<string>, top: boolean): Effect.Effect<void, FsError> =>
    Effect.gen(function*() {
      const entries = yield* optional(fsOp("readdir", dir, () => NodeFs.readdirSync(dir, { withFileTypes: true })))
      if (Option.isNone(entries)) return
      for (const entry of entries.value) {
        if (!entry.isDirectory()) continue
        if (entry.name === GENERATIONS) {
          candidates.push(segments.join("/"))
          continue
        }
        const segment = decodeSegment(entry.name)
        if (segment === undefined || (top && !segment.startsWith(partial))) continue
        yield* walk(NodePath.join(dir, entry.name), [...segments, segment], false)
      }
    })
  return Effect.as(walk(NodePath.join(objectsDir, ...folders.map(encodeSegment)), folders, true), candidates)
}
