/**
 * A key kept as one file: `<parent>/<last>@` holds its generation 0, the object as created, and
 * from its first conditional write on a folder `<last>@<nonce of that file>` beside it holds its
 * later generations (package README, "On-disk layout"). A create is one `link` of a prepared,
 * fsynced file to the key's name, which the kernel refuses when the name exists: of racing
 * creators exactly one wins, and the key appears whole. An unconditional delete is one `rename`
 * of that file into tmp/, the instant the key becomes absent for every reader and writer; its
 * folder of later generations, if any, goes after it, unreachable from then on (its name carries
 * the removed file's nonce, which no later file of the key has).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { type Body, bodyLength, type Metadata, OutcomeUnknown, StoreUnavailable } from "../../ObjectStore.js"
import { REMOVED_SUFFIX, type StoreDirectory } from "./directory.js"
import { type Corrupt, linkRefusedCodes } from "./errors.js"
import {
  exists,
  type FsError,
  fsOp,
  fsOpOnPool,
  optional,
  startUnlink,
  syncDirectoriesTogether,
  syncDirectoryShared,
  unlinkQuietly,
  writeDurable
} from "./fs.js"
import { type Header, headerLine, newNonce, versionOf } from "./generationFile.js"
import { type Chain, legacyChain, lookup, readFile, type Top } from "./generations.js"
import type { KeyPaths } from "./keys.js"

const MAX_LOOKUP_ATTEMPTS = 25

/** The chain of a key kept as one file whose generation 0 has this nonce. */
export const flatChain = (paths: KeyPaths, nonce: string): Chain => ({
  dir: paths.generations(nonce),
  root: { path: paths.flat, nonce }
})

/**
 * The key's chain as it is on disk now: its own file's, or else the legacy folder's (which may
 * be gone: the key is then absent). Writers check their base in it; nothing here is confirmed.
 */
export const currentChain = (paths: KeyPaths): Effect.Effect<Chain, FsError | Corrupt> =>
  readFile(paths.flat, false).pipe(
    Effect.map(Option.match({
      onNone: () => legacyChain(paths.legacy),
      onSome: (file) => flatChain(paths, file.header.nonce)
    }))
  )

/** A key's newest generation and the chain it is in. */
export interface Found {
  readonly chain: Chain
  readonly top: Top
}

/**
 * Finds a key's newest generation, in its own file's chain or else in a legacy folder. A key
 * deleted (and maybe created again) while it looked is looked at afresh.
 */
export const lookupKey = (
  store: StoreDirectory,
  key: string,
  paths: KeyPaths,
  withBody: boolean
): Effect.Effect<Option.Option<Found>, FsError | Corrupt | StoreUnavailable> =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < MAX_LOOKUP_ATTEMPTS; attempt++) {
      const own = yield* readFile(paths.flat, false)
      if (Option.isNone(own)) {
        // New keys are never made in the legacy layout, so a key without its own file is in
        // a legacy folder or absent.
        const chain = legacyChain(paths.legacy)
        return Option.map(yield* lookup(store, key, chain, withBody), (top) => ({ chain, top }))
      }
      const chain = flatChain(paths, own.value.header.nonce)
      const top = yield* lookup(store, key, chain, withBody)
      if (Option.isSome(top)) return Option.some({ chain, top: top.value })
    }
    return yield* new StoreUnavailable({
      operation: "lookup",
      key,
      cause: `the key was deleted and created again ${MAX_LOOKUP_ATTEMPTS} times while it was read`
    })
  })

/**
 * Creates a key as one file: written and fsynced under tmp/, then linked to the key's name,
 * which fails if the name exists, then the parent folder fsynced. None when it lost (the key's
 * file exists): the caller looks at the key.
 */
export const createFlat = (
  store: StoreDirectory,
  key: string,
  paths: KeyPaths,
  body: Body,
  metadata: Metadata
): Effect.Effect<Option.Option<string>, FsError | OutcomeUnknown> => {
  const nonce = newNonce()
  const staged = store.tmpPath("")
  const header: Header = {
    v: 1,
    key,
    gen: 0,
    nonce,
    parent: null,
    deleted: false,
    size: bodyLength(body),
    metadata: { ...metadata }
  }
  const link = fsOp("link", paths.flat, () => NodeFs.linkSync(staged, paths.flat))
  /** Whether the temporary name went to the thread pool's unlink (else it is removed on the way out). */
  let unlinking = false
  return Effect.gen(function*() {
    // The bytes are durable before the key can appear.
    yield* writeDurable(staged, headerLine(header), body, store.sync)
    // The parent folder is made on demand, and an unconditional delete of its last key may
    // remove it again before the link: a few tries.
    let made: string | undefined
    for (let attempt = 0;; attempt++) {
      const outcome = yield* link.pipe(
        Effect.as("linked" as const),
        Effect.catchIf((e) => e.code === "EEXIST", () => Effect.succeed("taken" as const)),
        Effect.catchIf((e) => e.code === "ENOENT" && attempt < 3, () => Effect.succeed("no folder" as const))
      )
      if (outcome === "taken") return Option.none()
      if (outcome === "linked") break
      const madeNow = yield* fsOp("mkdir", paths.parent, () => NodeFs.mkdirSync(paths.parent, { recursive: true }))
      made ??= madeNow
    }
    // The key exists from here on. Durable: its entry in the parent folder, and the entries of
    // the folders this create made (the temporary name goes meanwhile).
    unlinking = true
    const unlinked = yield* startUnlink(staged)
    yield* (made === undefined
      ? syncDirectoryShared(paths.parent, store.sync)
      : syncDirectoriesTogether(foldersHolding(paths.parent, made), store.sync)).pipe(
        Effect.mapError((cause) => new OutcomeUnknown({ key, cause }))
      )
    yield* unlinked
    store.confirmed.set(key, { gen: 0, nonce, root: nonce })
    return Option.some(versionOf(0, nonce))
  }).pipe(
    Effect.mapError((e) =>
      e._tag === "FsError" && e.op === "link" && e.code !== "ENOENT" && !linkRefusedCodes.has(e.code ?? "")
        ? new OutcomeUnknown({ key, cause: e })
        : e
    ),
    Effect.ensuring(Effect.suspend(() => unlinking ? Effect.void : unlinkQuietly(staged)))
  )
}

/**
 * The folders whose entries changed when `mkdir -p` of `dir` made `made` (the topmost folder it
 * created): `dir` itself, and each folder from `dir` up to `made`'s parent.
 */
const foldersHolding = (dir: string, made: string): Array<string> => {
  const folders = [dir]
  for (let folder = dir; folder !== made && folder !== NodePath.dirname(folder);) {
    folder = NodePath.dirname(folder)
    folders.push(folder)
  }
  folders.push(NodePath.dirname(made))
  return folders
}

/**
 * Deletes a key kept as one file, for good: its file is renamed into tmp/ (the one step that
 * makes the key absent), then its folder of later generations follows if it has one, the parent
 * folder is fsynced (the delete is durable), and the folders above are removed while empty.
 * False when the key has no file of its own (absent, or in a legacy folder).
 */
export const removeFlat = (store: StoreDirectory, key: string, paths: KeyPaths) =>
  Effect.gen(function*() {
    const removed = store.tmpPath(REMOVED_SUFFIX)
    const moved = yield* optional(fsOp("rename", paths.flat, () => NodeFs.renameSync(paths.flat, removed)))
    store.confirmed.delete(key)
    if (Option.isNone(moved)) return false
    // Which incarnation was removed: the folder of its later generations is named by its nonce.
    yield* removeGenerationsOf(store, removed)
    const unlinked = yield* startUnlink(removed)
    yield* syncDirectoryShared(paths.parent, store.sync)
    yield* unlinked
    removeEmptyFolders(store, paths.parent)
    return true
  })

/**
 * Removes the folder of later generations of the key whose own file was moved to `removed` (its
 * header names the key and the nonce), if there is one (renamed into tmp/ first, so that a late writer's link fails instead of filling it).
 */
export const removeGenerationsOf = (store: StoreDirectory, removed: string) =>
  Effect.gen(function*() {
    const file = yield* readFile(removed, false)
    if (Option.isNone(file)) return
    const paths = yield* store.paths(file.value.header.key)
    const folder = paths.generations(file.value.header.nonce)
    if (!(yield* exists(folder))) return
    const away = store.tmpPath(REMOVED_SUFFIX)
    const renamed = yield* optional(fsOp("rename", folder, () => NodeFs.renameSync(folder, away)))
    if (Option.isNone(renamed)) return
    yield* fsOpOnPool("rm", away, () => NodeFs.promises.rm(away, { recursive: true, force: true }))
  }).pipe(
    Effect.catchAll((e) =>
      Effect.logDebug("FileStore: a deleted key's generations stay in tmp/ until the next open", e)
    )
  )

/**
 * Removes `folder` and the folders above it, up to objects/, while they are empty: rmdir fails
 * (harmlessly) at the first one that holds another key, or that a create has just made again.
 */
export const removeEmptyFolders = (store: StoreDirectory, folder: string) => {
  for (let current = folder; current !== store.objectsDir; current = NodePath.dirname(current)) {
    try {
      NodeFs.rmdirSync(current)
    } catch {
      return
    }
  }
}
