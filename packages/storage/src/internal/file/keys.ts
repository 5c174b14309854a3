/**
 * Keys as names under `objects/`: each "/"-separated segment but the last is a folder, encoded so
 * that no key can escape the store's directory. A key's object lives in its parent folder (package
 * README, "On-disk layout"): as one file `<last>@` (its first version, generation 0), with, from its
 * first conditional write on, a folder `<last>@<nonce of generation 0>` of its later generations.
 * A directory written before that layout keeps a key's generations in a folder `<last>/@` (the
 * legacy layout), read and written as it was. An encoded segment never holds a raw "@", so none of
 * these names collides with a segment's folder, and keys "a" and "a/b" live side by side.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { BadKey } from "./errors.js"
import { type FsError, fsOp, optional } from "./fs.js"

/** The mark that ends a key's name in its parent folder, and the legacy generations folder's name. */
export const MARK = "@"

// encodeURIComponent leaves [A-Za-z0-9-_.!~*'()] alone and escapes "@", so a key segment never
// collides with the names that hold objects; "*" is escaped too because some file systems reject it.
export const encodeSegment = (segment: string) => encodeURIComponent(segment).replace(/\*/g, "%2A")
const decodeSegment = (name: string): string | undefined => {
  try {
    return decodeURIComponent(name)
  } catch {
    return undefined
  }
}

/** Where one key's object can be. */
export interface KeyPaths {
  /** The folder that holds the key's names (created on demand). */
  readonly parent: string
  /** The file of the key's generation 0: `<parent>/<last>@`. */
  readonly flat: string
  /** The folder of its later generations, named by generation 0's nonce: `<parent>/<last>@<nonce>`. */
  readonly generations: (root: string) => string
  /** The legacy layout's generations folder: `<parent>/<last>/@`. */
  readonly legacy: string
}

/** The names of a key; rejects keys that could escape the store's directory. */
export const keyPaths = (objectsDir: string, key: string): Either.Either<KeyPaths, BadKey> => {
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
  const last = encoded.pop()!
  const parent = NodePath.join(objectsDir, ...encoded)
  const flat = NodePath.join(parent, last + MARK)
  return Either.right({
    parent,
    flat,
    generations: (root) => flat + root,
    legacy: NodePath.join(parent, last, MARK)
  })
}

/**
 * Every key under the folders of `folders` whose next segment starts with `partial` and that has
 * a name holding an object (a `<segment>@` file, or a legacy `@` folder): the candidates of a
 * `list`, live or not, each once, in no particular order. A key's value is the path of its file
 * when the listing alone shows it live, else undefined (the caller looks the key up).
 *
 * A key's file is its generation 0, which is never a tombstone, and its later generations are in
 * a folder `<segment>@<nonce>` beside it, which exists from its first conditional write until
 * the key's delete. So a file with no such name beside it in a listing of its folder, and still
 * there in a second listing, was the key's newest generation, live, at some instant in between:
 * the file of the second listing existed when the first one found no folder, or was created
 * after, with no folder yet (package README, "A list").
 */
export const keysWithNames = (
  objectsDir: string,
  folders: ReadonlyArray<string>,
  partial: string
): Effect.Effect<Map<string, string | undefined>, FsError> => {
  const candidates = new Map<string, string | undefined>()
  const walk = (dir: string, segments: ReadonlyArray<string>, top: boolean): Effect.Effect<void, FsError> =>
    Effect.gen(function*() {
      const entries = yield* optional(fsOp("readdir", dir, () => NodeFs.readdirSync(dir, { withFileTypes: true })))
      if (Option.isNone(entries)) return
      /** Keys' files (name, key) that may be live by the listing alone. */
      const files: Array<readonly [string, string]> = []
      /** `<segment>@` of each name with something after the mark: a key with later generations. */
      const later = new Set<string>()
      for (const entry of entries.value) {
        const name = entry.name
        const mark = name.indexOf(MARK)
        if (mark >= 0 && mark < name.length - 1) later.add(name.slice(0, mark + 1))
        if (entry.isDirectory()) {
          if (name === MARK) {
            // A legacy generations folder: the key of the folder it is in.
            candidates.set(segments.join("/"), undefined)
            continue
          }
          // A later-generations folder (`<segment>@<nonce>`) goes with its `<segment>@` file.
          if (mark >= 0) continue
          const segment = decodeSegment(name)
          if (segment === undefined || (top && !segment.startsWith(partial))) continue
          yield* walk(NodePath.join(dir, name), [...segments, segment], false)
        } else if (entry.isFile() && name.length > 1 && mark === name.length - 1) {
          const segment = decodeSegment(name.slice(0, -1))
          if (segment === undefined || (top && !segment.startsWith(partial))) continue
          files.push([name, [...segments, segment].join("/")])
        }
      }
      if (files.length === 0) return
      const again = yield* optional(fsOp("readdir", dir, () => NodeFs.readdirSync(dir)))
      const still = new Set(Option.getOrElse(again, (): ReadonlyArray<string> => []))
      for (const [name, key] of files) {
        const live = !later.has(name) && still.has(name) && !candidates.has(key)
        candidates.set(key, live ? NodePath.join(dir, name) : undefined)
      }
    })
  return Effect.as(walk(NodePath.join(objectsDir, ...folders.map(encodeSegment)), folders, true), candidates)
}
