/**
 * A key's folder as a whole: a create of a key that has none renames a prepared folder into
 * place, an unconditional delete renames the key's generations folder out of the way. These are
 * what a log that creates and deletes keys all day uses, and they leave no trace of a deleted
 * key. Leftovers of a crash in between sit in tmp/, which opening a store clears.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { type Body, bodyLength, type Metadata, OutcomeUnknown } from "../../ObjectStore.js"
import type { StoreDirectory } from "./directory.js"
import { type FsError, fsOp, fsOpOnPool, optional, syncDirectoriesTogether, syncDirectory, writeDurable } from "./fs.js"
import { type Header, headerLine, newNonce, versionOf } from "./generationFile.js"

/** Suffix of a deleted key's generations folder while it is removed from `tmp/`. */
const REMOVED_SUFFIX = ".deleted"
const STALE_TMP_MS = 60 * 60 * 1000

/**
 * Creates a key that has no folder: its folder is prepared under tmp/ with the object as
 * generation 0 and renamed into place, which fails if the folder exists, so of racing
 * creators exactly one wins and the key appears whole. None when it lost: the folder exists,
 * or a delete removed the folder above it meanwhile; the caller looks again.
 */
export const createFolder = (
  store: StoreDirectory,
  key: string,
  dir: string,
  body: Body,
  metadata: Metadata
): Effect.Effect<Option.Option<string>, FsError | OutcomeUnknown> => {
  const parentDir = NodePath.dirname(dir)
  const nonce = newNonce()
  const staging = store.tmpPath(".d")
  const lost = (e: FsError) =>
    ["EEXIST", "ENOTEMPTY"].includes(e.code ?? "") ||
    (e.code === "ENOENT" && (e.path === parentDir || e.path === dir))
  /** Whether the prepared folder left tmp/ (then there is nothing to clean up). */
  let renamed = false
  return Effect.gen(function*() {
    yield* fsOp("mkdir", staging, () => NodeFs.mkdirSync(staging))
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
    // The bytes are durable before the key can appear.
    yield* writeDurable(store.genPath(staging, 0), headerLine(header), body, store.sync)
    const made = yield* fsOp("mkdir", parentDir, () => NodeFs.mkdirSync(parentDir, { recursive: true }))
    // rename() onto an existing folder fails: a generations folder is never empty, but for one
    // that a crash left empty at the next step, which held no object and is replaced.
    yield* fsOp("rename", dir, () => NodeFs.renameSync(staging, dir))
    renamed = true
    // The key exists from here on. Durable, all at once: the generation's entry in its folder,
    // that folder's in the key's folder, and the entries of the folders this create made (a
    // crash before then leaves the key absent, at worst an empty generations folder). A delete
    // may already have removed the key again: what is gone needs no sync.
    yield* syncDirectoriesTogether([dir, ...foldersHolding(parentDir, made)], store.sync).pipe(
      Effect.mapError((cause) => new OutcomeUnknown({ key, cause }))
    )
    store.confirmed.set(key, { gen: 0, nonce })
    return Option.some(versionOf(0, nonce))
  }).pipe(
    Effect.catchIf((e): e is FsError => e._tag === "FsError" && lost(e), () => Effect.succeedNone),
    Effect.ensuring(
      Effect.suspend(() =>
        renamed
          ? Effect.void
          : fsOp("rm", staging, () => NodeFs.rmSync(staging, { recursive: true, force: true })).pipe(Effect.ignore)
      )
    )
  )
}

/**
 * The folders whose entries changed when `mkdir -p` of `dir` made `made` (the topmost folder it
 * created, undefined if none): `dir` itself, and each folder from `dir` up to `made`'s parent.
 */
const foldersHolding = (dir: string, made: string | undefined): Array<string> => {
  const folders = [dir]
  if (made === undefined) return folders
  for (let folder = dir; folder !== made && folder !== NodePath.dirname(folder);) {
    folder = NodePath.dirname(folder)
    folders.push(folder)
  }
  folders.push(NodePath.dirname(made))
  return folders
}

/**
 * Removes a key for good: its generations folder is renamed into tmp/ (the one step that
 * makes the key absent, atomically, for readers and writers in every process), then removed
 * there; the key's own folder and the ones above it go too when they hold no other key. A
 * crash in between leaves the folder under tmp/, removed by the next store that opens the
 * directory, or empty folders, which cost `list` a readdir each and nothing else.
 */
export const removeKey = (store: StoreDirectory, key: string) =>
  Effect.gen(function*() {
    const dir = yield* store.generationsDir(key)
    const keyDir = NodePath.dirname(dir)
    const removed = store.tmpPath(REMOVED_SUFFIX)
    const moved = yield* optional(fsOp("rename", dir, () => NodeFs.renameSync(dir, removed)))
    store.confirmed.delete(key)
    if (Option.isSome(moved)) {
      // Durable before the answer; ENOENT: another delete already removed the key's folder.
      yield* optional(syncDirectory(keyDir, store.sync))
      yield* fsOpOnPool("rm", removed, () => NodeFs.promises.rm(removed, { recursive: true, force: true })).pipe(
        Effect.catchAll((e) =>
          Effect.logDebug("FileStore: a deleted key's folder stays in tmp/ until the next open", e)
        )
      )
    }
    // Then the folders above it that are left empty, up to objects/: rmdir fails (harmlessly)
    // at the first one that holds another key, or that a create has just made again.
    for (let folder = keyDir; folder !== store.objectsDir; folder = NodePath.dirname(folder)) {
      const removedFolder = yield* fsOp("rmdir", folder, () => NodeFs.rmdirSync(folder)).pipe(
        Effect.as(true),
        Effect.orElseSucceed(() => false)
      )
      if (!removedFolder) break
    }
  }).pipe(Effect.mapError(store.toStoreError("delete", key)))

/**
 * Leftovers of writers that crashed between writing and publishing (young ones may be in use),
 * and folders of deleted keys whose removal a crash cut short (nobody uses those: any age).
 */
export const removeStaleTemporaries = (tmpDir: string) =>
  Effect.gen(function*() {
    const names = yield* fsOp("readdir", tmpDir, () => NodeFs.readdirSync(tmpDir))
    const now = yield* Clock.currentTimeMillis
    for (const name of names) {
      const path = NodePath.join(tmpDir, name)
      yield* Effect.gen(function*() {
        if (!name.endsWith(REMOVED_SUFFIX)) {
          const stat = yield* optional(fsOp("stat", path, () => NodeFs.statSync(path)))
          if (Option.isNone(stat) || now - stat.value.mtimeMs <= STALE_TMP_MS) return
        }
        yield* fsOp("rm", path, () => NodeFs.rmSync(path, { recursive: true, force: true }))
      }).pipe(Effect.catchAll((e) => Effect.logDebug("FileStore: could not remove a temporary file", e)))
    }
  }).pipe(Effect.catchAll((e) => Effect.logDebug("FileStore: could not clean temporary files", e)))
