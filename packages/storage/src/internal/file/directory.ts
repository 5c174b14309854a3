/**
 * One open file store: its folders, its settings and the newest generation it last confirmed per
 * key, shared by the generation protocol (`generations.ts`), the keys kept as one file
 * (`flat.ts`) and the legacy folders (`folders.ts`).
 */
import type * as Either from "effect/Either"
import * as NodePath from "node:path"
import { type BadKey, type ToStoreError, toStoreErrorIn } from "./errors.js"
import { type GenerationId, newNonce } from "./generationFile.js"
import { type KeyPaths, keyPaths } from "./keys.js"

/** Suffix of a deleted key's names while they are removed from `tmp/` (any age: nobody uses them). */
export const REMOVED_SUFFIX = ".deleted"

export interface StoreDirectory {
  readonly root: string
  readonly objectsDir: string
  readonly tmpDir: string
  /** Generations kept per key. */
  readonly keep: number
  /** Old generations are collected every this many writes of a key. */
  readonly gcEvery: number
  /** fsync before answering. */
  readonly sync: boolean
  /**
   * The newest generation this process last confirmed, only a place to start looking: every use
   * re-validates it against the disk, so a stale or wrong entry costs a retry, never a wrong
   * answer. It is replaced, not only raised: a deleted and re-created key starts again at 0.
   */
  readonly confirmed: Map<string, Confirmed>
  readonly toStoreError: ToStoreError
  /** Where a key's object can be. */
  readonly paths: (key: string) => Either.Either<KeyPaths, BadKey>
  /** A new unique name under tmp/. */
  readonly tmpPath: (suffix: string) => string
}

/** A generation confirmed as a key's newest, and the nonce of the key's generation 0 file (none: legacy layout). */
export interface Confirmed extends GenerationId {
  readonly root: string | undefined
}

export const makeStoreDirectory = (options: {
  readonly directory: string
  readonly keepGenerations?: number | undefined
  readonly fsync?: boolean | undefined
}): StoreDirectory => {
  const root = NodePath.resolve(options.directory)
  const objectsDir = NodePath.join(root, "objects")
  const tmpDir = NodePath.join(root, "tmp")
  const keep = Math.max(2, Math.floor(options.keepGenerations ?? 8))
  // Read once: `process.pid` asks the kernel every time.
  const pid = process.pid
  return {
    root,
    objectsDir,
    tmpDir,
    keep,
    gcEvery: Math.max(1, Math.ceil(keep / 2)),
    sync: options.fsync ?? true,
    confirmed: new Map(),
    toStoreError: toStoreErrorIn(root),
    paths: (key) => keyPaths(objectsDir, key),
    tmpPath: (suffix) => NodePath.join(tmpDir, `${pid}-${newNonce()}${suffix}`)
  }
}
