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
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { type Body, bodyLength, type Metadata, OutcomeUnknown, StoreUnavailable } from "../../ObjectStore.js"
import { REMOVED_SUFFIX, type StoreDirectory } from "./directory.js"
import { type BadKey, type Corrupt, linkRefusedCodes } from "./errors.js"
import {
  errnoOf,
  FsError,
  fsOp,
  fsOpOnPool,
  optional,
  readFirstLineSync,
  syncFolderSharedThen,
  syncFoldersTogetherThen,
  writeDurableThen
} from "./fs.js"
import { type Header, headerLine, newNonce, parseGenFile, versionOf } from "./generationFile.js"
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
 *
 * The steps are chained in callbacks inside one `Effect.async`, so the caller's fiber is resumed
 * once per create: the Effects, generators and finalizers of a step each cost more main-thread CPU
 * than the step's synchronous system calls (docs/performance.md, "A create in one callback
 * chain"). The temporary name is unlinked on the event loop: with the key's name linked to the
 * file, the unlink frees nothing and waits for nothing, and it spares a trip through the thread
 * pool (a thread woken, an event loop woken). Interrupted before the link, the create links
 * nothing and removes its file; after it, the key exists and the fsync goes on.
 */
export const createFlat = (
  store: StoreDirectory,
  key: string,
  paths: KeyPaths,
  body: Body,
  metadata: Metadata
): Effect.Effect<Option.Option<string>, FsError | OutcomeUnknown> =>
  Effect.async((resume) => {
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
    let interrupted = false
    const removeStaged = () => {
      try {
        NodeFs.unlinkSync(staged)
      } catch {
        // Gone already, or left for the sweep of stale temporaries when the store next opens.
      }
    }
    // The bytes are durable before the key can appear.
    writeDurableThen(staged, headerLine(header), body, store.sync, (written) => {
      if (written !== undefined || interrupted) {
        removeStaged()
        return written === undefined ? undefined : resume(Effect.fail(written))
      }
      const linked = linkMakingFolders(staged, paths)
      if (linked instanceof FsError || linked === "taken") {
        removeStaged()
        return resume(
          linked === "taken"
            ? Effect.succeedNone
            : Effect.fail(
              linked.code !== "ENOENT" && !linkRefusedCodes.has(linked.code ?? "")
                ? new OutcomeUnknown({ key, cause: linked })
                : linked
            )
        )
      }
      // The key exists from here on. Durable: its entry in the parent folder, and the entries
      // of the folders this create made.
      removeStaged()
      const synced = (failure: FsError | undefined) => {
        if (failure !== undefined) return resume(Effect.fail(new OutcomeUnknown({ key, cause: failure })))
        store.confirmed.set(key, { gen: 0, nonce, root: nonce })
        resume(Effect.succeed(Option.some(versionOf(0, nonce))))
      }
      if (linked.made === undefined) syncFolderSharedThen(paths.parent, store.sync, synced)
      else syncFoldersTogetherThen(foldersHolding(paths.parent, linked.made), store.sync, synced)
    })
    return Effect.sync(() => {
      interrupted = true
    })
  })

/**
 * Links the staged file to the key's name. The parent folder is made on demand, and an
 * unconditional delete of its last key may remove it again before the link: a few tries. Answers
 * the topmost folder it made, if any, or "taken" when the name exists.
 */
const linkMakingFolders = (
  staged: string,
  paths: KeyPaths
): { readonly made: string | undefined } | "taken" | FsError => {
  let made: string | undefined
  for (let attempt = 0;; attempt++) {
    try {
      NodeFs.linkSync(staged, paths.flat)
      return { made }
    } catch (cause) {
      const code = errnoOf(cause)
      if (code === "EEXIST") return "taken"
      if (code !== "ENOENT" || attempt >= 3) return new FsError({ op: "link", path: paths.flat, code, cause })
    }
    try {
      const madeNow = NodeFs.mkdirSync(paths.parent, { recursive: true })
      made ??= madeNow
    } catch (cause) {
      return new FsError({ op: "mkdir", path: paths.parent, code: errnoOf(cause), cause })
    }
  }
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
 *
 * As a create, a delete of a key without later generations is synchronous steps and one
 * `Effect.async` (the unlink and the folder's fsync on the thread pool, at once): one resumption
 * of the caller. The unlink stays on the thread pool: it frees the file's inode and blocks.
 */
export const removeFlat = (store: StoreDirectory, key: string, paths: KeyPaths): Effect.Effect<boolean, FsError> =>
  Effect.suspend(() => {
    const removed = store.tmpPath(REMOVED_SUFFIX)
    try {
      NodeFs.renameSync(paths.flat, removed)
    } catch (cause) {
      store.confirmed.delete(key)
      const code = errnoOf(cause)
      return code === "ENOENT"
        ? Effect.succeed(false)
        : Effect.fail(new FsError({ op: "rename", path: paths.flat, code, cause }))
    }
    store.confirmed.delete(key)
    const durable = Effect.async<boolean, FsError>((resume) => {
      let waiting = 2
      let failure: FsError | undefined
      const answered = () => {
        if (--waiting > 0) return
        if (failure !== undefined) return resume(Effect.fail(failure))
        removeEmptyFolders(store, paths.parent)
        resume(Effect.succeed(true))
      }
      // Failures ignored: a name left in tmp/ is removed when the store next opens.
      NodeFs.unlink(removed, answered)
      syncFolderSharedThen(paths.parent, store.sync, (synced) => {
        failure = synced
        answered()
      })
    })
    // Which incarnation was removed: the folder of its later generations is named by its nonce.
    const folder = generationsFolderOf(store, removed)
    return folder === undefined ? durable : Effect.zipRight(removeGenerationsFolder(store, folder), durable)
  })

/**
 * The folder of later generations of the key whose own file was moved to `removed` (its header
 * names the key and the nonce), when there is one, or when that cannot be told (an error, for
 * `removeGenerationsFolder` to log): undefined when the file is gone or the key has no such
 * folder. Synchronous: a few microseconds of system calls, no Effect of its own.
 */
const generationsFolderOf = (
  store: StoreDirectory,
  removed: string
): string | Corrupt | FsError | BadKey | undefined => {
  let line: Buffer
  try {
    line = readFirstLineSync(removed)
  } catch (cause) {
    const code = errnoOf(cause)
    return code === "ENOENT" ? undefined : new FsError({ op: "read", path: removed, code, cause })
  }
  const file = parseGenFile(removed, line, false)
  if (Either.isLeft(file)) return file.left
  const paths = store.paths(file.right.header.key)
  if (Either.isLeft(paths)) return paths.left
  const folder = paths.right.generations(file.right.header.nonce)
  return NodeFs.statSync(folder, { throwIfNoEntry: false }) === undefined ? undefined : folder
}

/**
 * Removes a deleted key's folder of later generations (renamed into tmp/ first, so that a late
 * writer's link fails instead of filling it), or logs why it could not be found.
 */
const removeGenerationsFolder = (store: StoreDirectory, folder: string | Corrupt | FsError | BadKey) =>
  Effect.gen(function*() {
    if (typeof folder !== "string") return yield* folder
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
 * Removes the folder of later generations of the key whose own file was moved to `removed`, if
 * there is one.
 */
export const removeGenerationsOf = (store: StoreDirectory, removed: string) =>
  Effect.suspend(() => {
    const folder = generationsFolderOf(store, removed)
    return folder === undefined ? Effect.void : removeGenerationsFolder(store, folder)
  })

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
