/**
 * Keys in the legacy layout (a folder per key, `<key>/@`, as a directory written before keys
 * were kept as one file has them): an unconditional delete renames the key's generations folder
 * out of the way and leaves no trace of the key. And the leftovers of a crash in tmp/, which
 * opening a store clears.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { REMOVED_SUFFIX, type StoreDirectory } from "./directory.js"
import { removeEmptyFolders, removeGenerationsOf } from "./flat.js"
import { fsOp, fsOpOnPool, optional, syncDirectory } from "./fs.js"
import type { KeyPaths } from "./keys.js"

const STALE_TMP_MS = 60 * 60 * 1000

/**
 * Removes a legacy key for good: its generations folder is renamed into tmp/ (the one step that
 * makes the key absent, atomically, for readers and writers in every process), then removed
 * there; the key's own folder and the ones above it go too when they hold no other key. A
 * crash in between leaves the folder under tmp/, removed by the next store that opens the
 * directory, or empty folders, which cost `list` a readdir each and nothing else.
 */
export const removeLegacy = (store: StoreDirectory, key: string, paths: KeyPaths) =>
  Effect.gen(function*() {
    const dir = paths.legacy
    const keyDir = NodePath.dirname(dir)
    const removed = store.tmpPath(REMOVED_SUFFIX)
    const moved = yield* optional(fsOp("rename", dir, () => NodeFs.renameSync(dir, removed)))
    store.confirmed.delete(key)
    if (Option.isNone(moved)) return
    // Durable before the answer; ENOENT: another delete already removed the key's folder.
    yield* optional(syncDirectory(keyDir, store.sync))
    yield* fsOpOnPool("rm", removed, () => NodeFs.promises.rm(removed, { recursive: true, force: true })).pipe(
      Effect.catchAll((e) => Effect.logDebug("FileStore: a deleted key's folder stays in tmp/ until the next open", e))
    )
    removeEmptyFolders(store, keyDir)
  })

/**
 * Leftovers of writers that crashed between writing and publishing (young ones may be in use),
 * and names of deleted keys whose removal a crash cut short (nobody uses those: any age). A
 * deleted key's own file names, in its header, the folder of later generations that goes with it.
 */
export const removeStaleTemporaries = (store: StoreDirectory) =>
  Effect.gen(function*() {
    const { tmpDir } = store
    const names = yield* fsOp("readdir", tmpDir, () => NodeFs.readdirSync(tmpDir))
    const now = yield* Clock.currentTimeMillis
    for (const name of names) {
      const path = NodePath.join(tmpDir, name)
      yield* Effect.gen(function*() {
        const stat = yield* optional(fsOp("stat", path, () => NodeFs.statSync(path)))
        if (Option.isNone(stat)) return
        if (!name.endsWith(REMOVED_SUFFIX)) {
          if (now - stat.value.mtimeMs <= STALE_TMP_MS) return
        } else if (stat.value.isFile()) {
          yield* removeGenerationsOf(store, path)
        }
        yield* fsOp("rm", path, () => NodeFs.rmSync(path, { recursive: true, force: true }))
      }).pipe(Effect.catchAll((e) => Effect.logDebug("FileStore: could not remove a temporary file", e)))
    }
  }).pipe(Effect.catchAll((e) => Effect.logDebug("FileStore: could not clean temporary files", e)))
