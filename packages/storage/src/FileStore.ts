/**
 * The embedded default `ObjectStore`: objects in a local directory, safe for several processes
 * on one host and for a crash (or SIGKILL) at any instant.
 *
 * A key is one file in its parent folder, `<last segment>@`: its generation 0, the object as
 * created. A create prepares the complete file under `tmp/`, fsyncs it and publishes it with
 * `link`, which the kernel performs atomically and refuses with EEXIST when the name exists:
 * exactly one of racing creators wins, and the key appears whole. An unconditional delete is one
 * `rename` of that file into `tmp/`, the instant the key becomes absent for every reader, so a
 * log that creates and deletes keys all day keeps no trace of them, at two fsyncs per create and
 * one (shared by the deletes under way in a folder) per delete.
 *
 * A key's later generations (from its first conditional write on) are files in a folder beside
 * it named by generation 0's nonce, `<last segment>@<nonce>/`. Generation 1 is the `rename` of
 * that folder, prepared under `tmp/`, into place (refused if it exists); each later one is a
 * `link(tmp, <folder>/<n+1>)`, refused with EEXIST when another writer published generation n+1
 * first: that refusal *is* the compare-and-swap. Readers take the newest generation. See the
 * package README for the layout and the argument for why garbage collection of old generations
 * can never let a stale writer "re-create" a collected generation and win (no lost update).
 *
 * Logs (`appendLogs`) are not keys: each is a folder of segment files under `logs/`, appended
 * to (`internal/file/segments.ts`; README, "Logs in segment files").
 *
 * A directory of the releases before opens as it is: format 1's keys (a folder per key,
 * `<key>/@/<n>`) are read, written and deleted in their folders, new keys are made as files;
 * format 2's log entries stay objects, read by the core's `Log` where the segments have none.
 * The format file becomes version 3, which those releases refuse.
 */
import { JobTrace } from "@osqueue/types"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { makeStoreDirectory } from "./internal/file/directory.js"
import { createFlat, currentChain, lookupKey, removeFlat } from "./internal/file/flat.js"
import { removeLegacy, removeStaleTemporaries } from "./internal/file/folders.js"
import { exists, fsOp, optional, readWhole, syncDirectory, unlinkQuietly, writeDurable } from "./internal/file/fs.js"
import { parseVersion, versionOf } from "./internal/file/generationFile.js"
import { baseCollected, publish, readGen } from "./internal/file/generations.js"
import { type KeyPaths, keysWithNames } from "./internal/file/keys.js"
import { makeSegmentLogs } from "./internal/file/segments.js"
import {
  type Body,
  type Metadata,
  type ObjectHead,
  ObjectStore,
  type ObjectStoreShape,
  type OutcomeUnknown,
  PreconditionFailed,
  type StoredObject,
  StoreFailure,
  StoreUnavailable,
  type WriteCondition
} from "./ObjectStore.js"

export interface FileStoreOptions {
  /** Root of the store; created if missing. Must be empty or an existing file store. */
  readonly directory: string
  /**
   * Generations kept per key (at least 2, default 8). Older ones are deleted. A larger number
   * only widens the window in which a very slow writer still gets a clean PreconditionFailed
   * instead of OutcomeUnknown; correctness does not depend on it.
   */
  readonly keepGenerations?: number
  /**
   * fsync files and directories before answering (default true). Without it the store still
   * survives process crashes (the page cache outlives the process) but not power loss.
   */
  readonly fsync?: boolean
}

/** `FILE_STORE_DIR` (default `./.osqueue-data`) and `FILE_STORE_FSYNC` (default true). */
export const config: Config.Config<FileStoreOptions> = Config.all({
  directory: Config.string("FILE_STORE_DIR").pipe(
    Config.withDefault("./.osqueue-data"),
    Config.withDescription("directory of the embedded file store")
  ),
  fsync: Config.boolean("FILE_STORE_FSYNC").pipe(
    Config.withDefault(true),
    Config.withDescription("fsync every write (turn off only for throwaway data)")
  )
})

/** The file at the store's root that says what it is: a directory without it is not a file store. */
const FORMAT_FILE = "osqueue-store.json"
const FormatFile = Schema.Struct({ format: Schema.Literal("osqueue-file-store"), version: Schema.Literal(1, 2, 3) })
/**
 * Version 3 keeps logs in segment files (README, "Logs in segment files"), version 2 keys as one
 * file ("On-disk layout"); version 1 had a folder per key, still read.
 */
const FORMAT: typeof FormatFile.Type = { format: "osqueue-file-store", version: 3 }
const decodeFormatFile = Schema.decodeUnknownEither(Schema.parseJson(FormatFile))

const MAX_CREATE_ATTEMPTS = 25

/**
 * Opens (creating if needed) a store in `options.directory`. Several stores — in this process or
 * in others — may use one directory at the same time.
 */
export const make = (options: FileStoreOptions): Effect.Effect<ObjectStoreShape, StoreFailure | StoreUnavailable> =>
  Effect.map(open(options), (opened) => opened.store)

/**
 * `make` within a scope: the segment files the store holds open are closed with it (a store
 * made with `make` keeps at most a few per log open until the process exits).
 */
export const scoped = (
  options: FileStoreOptions
): Effect.Effect<ObjectStoreShape, StoreFailure | StoreUnavailable, Scope.Scope> =>
  Effect.map(Effect.acquireRelease(open(options), (opened) => Effect.sync(opened.close)), (opened) => opened.store)

const open = (options: FileStoreOptions) =>
  Effect.gen(function*() {
    const store = makeStoreDirectory(options)
    const { objectsDir, root, sync, tmpDir, toStoreError } = store
    // Read once: with spans not exported, an operation makes no span (docs/tracing.md, "Cost").
    const tracing = yield* JobTrace.exporting
    const traced = (name: string) => <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      tracing ? Effect.withSpan(effect, name, { captureStackTrace: false }) : effect

    /** Conditional write (or tombstone) of a key: the shared path of put and conditional delete. */
    const write = (
      operation: string,
      key: string,
      body: Body,
      condition: WriteCondition,
      deleted: boolean,
      metadata: Metadata
    ): Effect.Effect<string, StoreFailure | StoreUnavailable | PreconditionFailed | OutcomeUnknown> =>
      Effect.gen(function*() {
        const paths = yield* store.paths(key).pipe(Effect.mapError(toStoreError(operation, key)))
        if ("ifMatch" in condition) {
          const expected = condition.ifMatch
          const base = parseVersion(expected)
          // A version this store never issued (another backend's ETag, garbage) cannot match.
          if (base === undefined) return yield* new PreconditionFailed({ key, expected })
          const chain = yield* currentChain(paths).pipe(Effect.mapError(toStoreError(operation, key)))
          // Generations only grow while a key lives: if we know a newer one, fail fast.
          const known = store.confirmed.get(key)
          if (known !== undefined && known.root === chain.root?.nonce && known.gen > base.gen) {
            return yield* new PreconditionFailed({ key, expected })
          }
          const current = yield* readGen(chain, base.gen, false).pipe(Effect.mapError(toStoreError(operation, key)))
          if (Option.isNone(current) || current.value.header.nonce !== base.nonce || current.value.header.deleted) {
            return yield* new PreconditionFailed({ key, expected })
          }
          return yield* publish(store, { operation, key, chain, base, body, deleted, metadata, expected }).pipe(
            Effect.catchTag("Discarded", (e) => baseCollected(store, key, e.gen))
          )
        }
        // A key is created as its own file; one whose newest generation is a tombstone (a
        // conditional delete's) gets the object on top of it. A lost race looks again: the key
        // may be absent still, deleted meanwhile. The first try does not look for the key's
        // file: the link finds it (a create of a key that exists is rare, and then only writes a
        // temporary file for nothing), and a put spares a `stat` of a name that is not there.
        for (let attempt = 0; attempt < MAX_CREATE_ATTEMPTS; attempt++) {
          const found = yield* (attempt === 0 ? noLegacyFolder(key, paths) : existingKey(key, paths)).pipe(
            Effect.mapError(toStoreError(operation, key))
          )
          if (Option.isNone(found)) {
            const created = yield* createFlat(store, key, paths, body, metadata).pipe(
              Effect.catchTag("FsError", (e) => Effect.fail(toStoreError(operation, key)(e)))
            )
            if (Option.isSome(created)) return created.value
            continue
          }
          const { chain, top } = found.value
          if (!top.header.deleted) return yield* new PreconditionFailed({ key, expected: "absent" })
          const created = yield* publish(store, {
            operation,
            key,
            chain,
            base: { gen: top.gen, nonce: top.header.nonce },
            body,
            deleted,
            metadata,
            expected: "absent"
          }).pipe(
            Effect.map(Option.some),
            Effect.catchTags({
              PreconditionFailed: () => Effect.succeedNone,
              Discarded: () => Effect.succeedNone
            })
          )
          if (Option.isSome(created)) return created.value
        }
        return yield* new StoreUnavailable({
          operation,
          key,
          cause: `lost ${MAX_CREATE_ATTEMPTS} races in a row with concurrent creators and deletes`
        })
      })

    /**
     * What a create finds at a key: none when it has no file of its own and no legacy folder
     * with a generation (the usual case, one `stat`), else its newest generation.
     */
    const existingKey = (key: string, paths: KeyPaths) =>
      Effect.gen(function*() {
        if (yield* exists(paths.flat)) return yield* lookupKey(store, key, paths, false)
        if (!(yield* exists(paths.legacy))) return Option.none()
        return yield* lookupKey(store, key, paths, false)
      })

    /**
     * None when the key has no format-1 folder (the usual case, one `stat`), else what
     * `existingKey` finds. Such folders are never made any more, so none can appear later.
     */
    const noLegacyFolder = (key: string, paths: KeyPaths) =>
      Effect.flatMap(exists(paths.legacy), (legacy) => legacy ? existingKey(key, paths) : Effect.succeedNone)

    const readLive = (operation: string, key: string, withBody: boolean) =>
      Effect.gen(function*() {
        const paths = yield* store.paths(key)
        const found = yield* lookupKey(store, key, paths, withBody)
        return Option.filter(Option.map(found, (f) => f.top), (top) => !top.header.deleted)
      }).pipe(Effect.mapError(toStoreError(operation, key)))

    const get = (key: string) =>
      readLive("get", key, true).pipe(
        Effect.map(Option.map((t): StoredObject => ({
          bytes: t.body ?? new Uint8Array(0),
          version: versionOf(t.gen, t.header.nonce),
          metadata: t.header.metadata
        }))),
        traced("FileStore.get")
      )

    const head = (key: string) =>
      readLive("head", key, false).pipe(
        Effect.map(Option.map((t): ObjectHead => ({
          version: versionOf(t.gen, t.header.nonce),
          metadata: t.header.metadata
        }))),
        traced("FileStore.head")
      )

    const put = (key: string, body: Body, condition: WriteCondition, putOptions?: { readonly metadata?: Metadata }) =>
      write("put", key, body, condition, false, putOptions?.metadata ?? {}).pipe(traced("FileStore.put"))

    /** An unconditional delete removes the key for good; a conditional one writes a tombstone. */
    const del = (key: string, ifMatch?: string) =>
      (ifMatch === undefined
        ? Effect.gen(function*() {
          const paths = yield* store.paths(key)
          if (!(yield* removeFlat(store, key, paths))) yield* removeLegacy(store, key, paths)
        }).pipe(Effect.mapError(toStoreError("delete", key)))
        : Effect.asVoid(write("delete", key, new Uint8Array(0), { ifMatch }, true, {}))).pipe(
          traced("FileStore.delete")
        )

    const list = (prefix: string) =>
      Effect.gen(function*() {
        const parts = prefix.split("/")
        const partial = parts[parts.length - 1] ?? ""
        const folders = parts.slice(0, -1)
        if (folders.some((segment) => segment === "." || segment === "..")) {
          return yield* new StoreFailure({
            operation: "list",
            key: prefix,
            reason: "\".\" and \"..\" segments are not allowed (path traversal)"
          })
        }
        // No key has an empty segment, so such a prefix matches nothing.
        if (folders.some((segment) => segment.length === 0)) return []
        const candidates = yield* keysWithNames(objectsDir, folders, partial).pipe(
          Effect.mapError(toStoreError("list", prefix))
        )
        // One after the other: each check is a few synchronous syscalls, so fibers add only overhead.
        const live: Array<string> = []
        for (const [key, file] of candidates) {
          if (!key.startsWith(prefix)) continue
          // Live by the listing alone, if the file seen is the key's own (not a hand-made name
          // that decodes to another key's).
          const paths = file === undefined ? undefined : Either.getOrUndefined(store.paths(key))
          if (paths !== undefined && paths.flat === file) live.push(key)
          else if (Option.isSome(yield* readLive("list", key, false))) live.push(key)
        }
        return live.sort()
      }).pipe(traced("FileStore.list"))

    // --- opening the directory ----------------------------------------------------------------
    const openError = toStoreError("open", root)
    yield* fsOp("mkdir", root, () => NodeFs.mkdirSync(root, { recursive: true })).pipe(Effect.mapError(openError))
    const formatPath = NodePath.join(root, FORMAT_FILE)
    const existing = yield* optional(readWhole(formatPath)).pipe(Effect.mapError(openError))
    if (Option.isNone(existing)) {
      const entries = yield* fsOp("readdir", root, () => NodeFs.readdirSync(root)).pipe(Effect.mapError(openError))
      if (entries.some((name) => name !== "objects" && name !== "tmp" && name !== "logs" && name !== FORMAT_FILE)) {
        return yield* new StoreFailure({
          operation: "open",
          key: root,
          reason: `${root} is not empty and holds no ${FORMAT_FILE}: point the file store at an empty or new directory`
        })
      }
      yield* fsOp("mkdir", tmpDir, () => NodeFs.mkdirSync(tmpDir, { recursive: true })).pipe(Effect.mapError(openError))
      const staged = store.tmpPath("")
      yield* writeDurable(staged, Buffer.from(JSON.stringify(FORMAT) + "\n"), undefined, sync).pipe(
        Effect.zipRight(fsOp("link", formatPath, () => NodeFs.linkSync(staged, formatPath))),
        Effect.catchIf((e) => e.code === "EEXIST", () => Effect.void),
        Effect.ensuring(unlinkQuietly(staged)),
        Effect.zipRight(syncDirectory(root, sync)),
        Effect.mapError(openError)
      )
    }
    const format = decodeFormatFile((yield* readWhole(formatPath).pipe(Effect.mapError(openError))).toString("utf8"))
    if (Either.isLeft(format)) {
      return yield* new StoreFailure({
        operation: "open",
        key: root,
        reason:
          `${formatPath} does not describe a version 1 to ${FORMAT.version} osqueue file store (a newer release's?); refusing to guess its layout`
      })
    }
    if (format.right.version < FORMAT.version) {
      // A directory of a release before logs were kept in segment files (or before keys were
      // kept as one file): what it holds stays as it is, read and written as before; from now on
      // an older release refuses it, as it could not see the entries and keys made here.
      const staged = store.tmpPath("")
      yield* writeDurable(staged, Buffer.from(JSON.stringify(FORMAT) + "\n"), undefined, sync).pipe(
        Effect.zipRight(fsOp("rename", formatPath, () => NodeFs.renameSync(staged, formatPath))),
        Effect.zipRight(syncDirectory(root, sync)),
        Effect.ensuring(unlinkQuietly(staged)),
        Effect.mapError(openError)
      )
      yield* Effect.logInfo(`FileStore: directory upgraded to format ${FORMAT.version} (logs in segment files)`).pipe(
        Effect.annotateLogs({ directory: root, from: format.right.version })
      )
    }
    yield* fsOp("mkdir", objectsDir, () => NodeFs.mkdirSync(objectsDir, { recursive: true })).pipe(
      Effect.mapError(openError)
    )
    yield* fsOp("mkdir", tmpDir, () => NodeFs.mkdirSync(tmpDir, { recursive: true })).pipe(Effect.mapError(openError))
    yield* removeStaleTemporaries(store)
    yield* Effect.logDebug("FileStore opened").pipe(
      Effect.annotateLogs({ directory: root, keepGenerations: store.keep })
    )

    const logs = makeSegmentLogs(store)
    const objectStore: ObjectStoreShape = {
      backend: "file",
      minWriteInterval: Duration.zero,
      get,
      head,
      put,
      delete: del,
      list,
      appendLogs: logs
    }
    return { store: objectStore, close: logs.close }
  })

/** The file store as the `ObjectStore`. Each build opens the directory (cheap); all builds share the disk. */
export const layer = (options: FileStoreOptions): Layer.Layer<ObjectStore, StoreFailure | StoreUnavailable> =>
  Layer.scoped(ObjectStore, scoped(options))

/** The file store configured from the environment (see `config`). */
export const layerConfig: Layer.Layer<ObjectStore, StoreFailure | StoreUnavailable | ConfigError.ConfigError> = Layer
  .scoped(ObjectStore, Effect.flatMap(config, scoped))
