/**
 * One open file store: its folders, its settings and the newest generation it last confirmed per
 * key, shared by the generation protocol (`generations.ts`) and the folder operations
 * (`folders.ts`).
 */
import type * as Either from "effect/Either"
import * as NodePath from "node:path"
import { type BadKey, type ToStoreError, toStoreErrorIn } from "./errors.js"
import { type GenerationId, genName, newNonce } from "./generationFile.js"
import { generationsDir } from "./keys.js"

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
  readonly confirmed: Map<string, GenerationId>
  readonly toStoreError: ToStoreError
  /** Folder of a key's generations. */
  readonly generationsDir: (key: string) => Either.Either<string, BadKey>
  readonly genPath: (dir: string, gen: number) => string
  /** A new unique name under tmp/. */
  readonly tmpPath: (suffix: string) => string
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
    generationsDir: (key) => generationsDir(objectsDir, key),
    genPath: (dir, gen) => NodePath.join(dir, genName(gen)),
    tmpPath: (suffix) => NodePath.join(tmpDir, `${pid}-${newNonce()}${suffix}`)
  }
}
