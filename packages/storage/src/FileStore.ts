/**
 * The embedded default `ObjectStore`: objects in a local directory, safe for several processes
 * on one host and for a crash (or SIGKILL) at any instant.
 *
 * Each key is a folder of immutable generation files. A write prepares the complete file under
 * `tmp/`, fsyncs it and then publishes it with `link(tmp, <key>/@/<n+1>)`, which the kernel
 * performs atomically and refuses with EEXIST when another writer published generation n+1
 * first: that refusal *is* the compare-and-swap. Readers take the newest generation. See the
 * package README for the layout and the argument for why garbage collection of old generations
 * can never let a stale writer "re-create" a collected generation and win (no lost update).
 *
 * A create (`ifAbsent`) of a key without a folder prepares the folder, with the object as its
 * generation 0, and renames it into place: exactly one of racing creators wins, and the key
 * appears whole. An unconditional delete removes the key's folder for good, so a log that creates
 * and deletes keys all day keeps no trace of them: one `rename` of the generations folder into
 * `tmp/` (the instant the key becomes absent, for every reader at once), then its removal there.
 * A crash leaves the key absent and at worst a leftover in `tmp/` that the next store to open
 * removes. A conditional delete (`ifMatch`) writes a tombstone generation and keeps the folder.
 *
 * What this gives up: a write on top of an existing generation (`ifMatch`, or a create on a
 * conditional delete's tombstone) that races a delete *and* a re-creation of the same key is not
 * fenced by the folder. The new folder numbers its generations from 0 again, so the write can
 * land in it. Such a file is never confirmed or read (its parent is not there) and its writer
 * removes it and answers OutcomeUnknown (a create looks again), but until then it can make a
 * write to the new key fail, and a writer killed in that instant leaves a file that blocks the
 * key (reads answer StoreUnavailable). osqueue never deletes a key it writes with `ifMatch`
 * (queue.json is never deleted), and deletes its log entries unconditionally only, so each
 * create of one is the rename of a new folder.
 */
import * as NodeCrypto from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import {
  type Body,
  bodyLength,
  bodyParts,
  type Metadata,
  type ObjectHead,
  ObjectStore,
  type ObjectStoreShape,
  OutcomeUnknown,
  PreconditionFailed,
  StoreFailure,
  type StoredObject,
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

// ---------------------------------------------------------------------------------------------
// On-disk format

const FORMAT_FILE = "osqueue-store.json"
const FORMAT = { format: "osqueue-file-store", version: 1 } as const
/** Name of the folder of generations inside a key's folder. Encoded key segments never contain a raw "@". */
const GENERATIONS = "@"
const NEWLINE = 0x0a

/** First line of every generation file; the object's bytes follow the newline. */
const Header = Schema.Struct({
  v: Schema.Literal(1),
  key: Schema.String,
  gen: Schema.Number,
  /** Random per file: tells two files that ever held the same generation number apart. */
  nonce: Schema.String,
  /** Nonce of the generation this one was written on top of; null for generation 0. */
  parent: Schema.NullOr(Schema.String),
  deleted: Schema.Boolean,
  size: Schema.Number,
  metadata: Schema.Record({ key: Schema.String, value: Schema.String })
})
type Header = typeof Header.Type
const decodeHeader = Schema.decodeUnknownEither(Schema.parseJson(Header))

const genName = (gen: number) => String(gen).padStart(12, "0")
const parseGenName = (name: string): number | undefined => (/^\d+$/.test(name) ? Number(name) : undefined)

const versionOf = (gen: number, nonce: string) => `${gen}.${nonce}`
const parseVersion = (version: string): { readonly gen: number; readonly nonce: string } | undefined => {
  const match = /^(\d+)\.([0-9a-f]{16})$/.exec(version)
  return match?.[1] === undefined || match[2] === undefined ? undefined : { gen: Number(match[1]), nonce: match[2] }
}
const newNonce = () => NodeCrypto.randomBytes(8).toString("hex")

// encodeURIComponent leaves [A-Za-z0-9-_.!~*'()] alone and escapes "@", so a key segment never
// collides with the GENERATIONS folder; "*" is escaped too because some file systems reject it.
const encodeSegment = (segment: string) => encodeURIComponent(segment).replace(/\*/g, "%2A")
const decodeSegment = (name: string): string | undefined => {
  try {
    return decodeURIComponent(name)
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Internal errors of the file layer, mapped to the ObjectStore errors at the service boundary

class FsError extends Data.TaggedError("FsError")<{
  readonly op: string
  readonly path: string
  readonly code: string | undefined
  readonly cause: unknown
}> {}

class Corrupt extends Data.TaggedError("Corrupt")<{ readonly path: string; readonly reason: string }> {}

class BadKey extends Data.TaggedError("BadKey")<{ readonly reason: string }> {}

const errnoOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined

/**
 * One file-system step, done synchronously. A write is a dozen small syscalls on a local disk,
 * each a few microseconds; the async API would send each through the thread pool and back,
 * which cost several milliseconds per write on a busy broker. Only the steps that wait for the
 * disk (fsync, and unlinking old generations) go to the thread pool.
 */
const fsOp = <A>(op: string, path: string, run: () => A): Effect.Effect<A, FsError> =>
  Effect.try({ try: run, catch: (cause) => new FsError({ op, path, code: errnoOf(cause), cause }) })

/** ENOENT becomes None: "not there" is an answer, not an error, for most lookups here. */
const optional = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<Option.Option<A>, E> =>
  effect.pipe(
    Effect.map(Option.some),
    Effect.catchIf(
      (e) => e instanceof FsError && e.code === "ENOENT",
      () => Effect.succeed(Option.none<A>())
    )
  )

// ---------------------------------------------------------------------------------------------
// Raw file primitives

interface GenFile {
  readonly header: Header
  /** Present when the body was read. */
  readonly body: Uint8Array | undefined
}

const parseGenFile = (path: string, buffer: Buffer, withBody: boolean): Either.Either<GenFile, Corrupt> => {
  const newline = buffer.indexOf(NEWLINE)
  if (newline < 0) return Either.left(new Corrupt({ path, reason: "no header line" }))
  const header = decodeHeader(buffer.subarray(0, newline).toString("utf8"))
  if (Either.isLeft(header)) return Either.left(new Corrupt({ path, reason: "unreadable header" }))
  if (!withBody) return Either.right({ header: header.right, body: undefined })
  const size = buffer.length - newline - 1
  if (size !== header.right.size) {
    return Either.left(new Corrupt({ path, reason: `body is ${size} bytes, header says ${header.right.size}` }))
  }
  // A plain Uint8Array view (not a Buffer) so callers see exactly the type the interface names.
  return Either.right({ header: header.right, body: new Uint8Array(buffer.buffer, buffer.byteOffset + newline + 1, size) })
}

const readWhole = (path: string) => fsOp("read", path, () => NodeFs.readFileSync(path))

/** Reads only up to the end of the header line. */
const readHead = (path: string): Effect.Effect<Buffer, FsError> =>
  fsOp("read", path, () => {
    const fd = NodeFs.openSync(path, "r")
    try {
      const chunks: Array<Buffer> = []
      let position = 0
      for (;;) {
        const chunk = Buffer.allocUnsafe(position === 0 ? 4096 : 65536)
        const bytesRead = NodeFs.readSync(fd, chunk, 0, chunk.length, position)
        if (bytesRead === 0) break
        const piece = chunk.subarray(0, bytesRead)
        chunks.push(piece)
        position += bytesRead
        if (piece.includes(NEWLINE)) break
      }
      return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
    } finally {
      NodeFs.closeSync(fd)
    }
  })

/**
 * fsync on the thread pool: the one slow step of a write, which the broker spends serving
 * requests instead of blocking on the disk.
 */
const fsyncOnPool = (path: string, fd: number): Effect.Effect<void, FsError> =>
  Effect.async((resume) =>
    NodeFs.fsync(fd, (cause) =>
      resume(cause === null ? Effect.void : Effect.fail(new FsError({ op: "fsync", path, code: errnoOf(cause), cause }))))
  )

const withFd = <A>(path: string, flags: string, use: (fd: number) => Effect.Effect<A, FsError>) =>
  Effect.acquireUseRelease(
    fsOp("open", path, () => NodeFs.openSync(path, flags)),
    use,
    (fd) => Effect.sync(() => NodeFs.closeSync(fd))
  )

/** Buffers per `writev` call (the kernel's IOV_MAX). */
const maxIovecs = 1024

/** Writes the parts in order: a `writev` per 1,024 parts, not a write per part or a joined copy. */
const writeParts = (fd: number, parts: ReadonlyArray<Uint8Array>) => {
  for (let from = 0; from < parts.length; from += maxIovecs) {
    const slice = parts.slice(from, from + maxIovecs)
    let written = NodeFs.writevSync(fd, slice)
    // A short write (rare on a regular file) goes on part by part from where it stopped.
    for (const part of slice) {
      if (written >= part.length) {
        written -= part.length
        continue
      }
      for (let offset = written; offset < part.length;) offset += NodeFs.writeSync(fd, part, offset, part.length - offset)
      written = 0
    }
  }
}

/**
 * Creates `path` (failing if it exists) with `head` and then the body's parts, then fsyncs it.
 * (The head goes first in a call of its own: putting it in front of 100,000 parts would copy
 * the array of parts on every commit.)
 */
const writeDurable = (path: string, head: Uint8Array, body: Body | undefined, sync: boolean) =>
  withFd(path, "wx", (fd) =>
    Effect.zipRight(
      fsOp("write", path, () => {
        writeParts(fd, [head])
        if (body !== undefined) writeParts(fd, bodyParts(body))
      }),
      sync ? fsyncOnPool(path, fd) : Effect.void
    ))

const syncDirectory = (path: string, sync: boolean) =>
  sync
    ? withFd(path, "r", (fd) => fsyncOnPool(path, fd)).pipe(
      // Some platforms cannot fsync a directory; the data itself was already synced.
      Effect.catchIf((e) => ["EINVAL", "EISDIR", "EPERM", "EBADF"].includes(e.code ?? ""), () => Effect.void)
    )
    : Effect.void

/** Whether something is at `path`, without building an ENOENT exception when nothing is. */
const exists = (path: string) => fsOp("stat", path, () => NodeFs.statSync(path, { throwIfNoEntry: false }) !== undefined)

const unlinkQuietly = (path: string) => fsOp("unlink", path, () => NodeFs.unlinkSync(path)).pipe(Effect.ignore)

// ---------------------------------------------------------------------------------------------
// The store

/** A generation that a reader has confirmed as the newest, written by a writer that won its race. */
interface Top {
  readonly gen: number
  readonly header: Header
  readonly body: Uint8Array | undefined
}

const MAX_LOOKUP_ATTEMPTS = 25
const MAX_CREATE_ATTEMPTS = 25
const STALE_TMP_MS = 60 * 60 * 1000
/** Suffix of a deleted key's generations folder while it is removed from `tmp/`. */
const REMOVED_SUFFIX = ".deleted"

/**
 * A write's own generation file turned out to be unconfirmed (its base was gone after the link,
 * and nothing was written on top of it), and the writer removed it: nobody ever read it.
 */
class Discarded extends Data.TaggedError("Discarded")<{ readonly gen: number }> {}

/**
 * Opens (creating if needed) a store in `options.directory`. Several stores — in this process or
 * in others — may use one directory at the same time.
 */
export const make = (options: FileStoreOptions): Effect.Effect<ObjectStoreShape, StoreFailure | StoreUnavailable> =>
  Effect.gen(function* () {
    const root = NodePath.resolve(options.directory)
    const objectsDir = NodePath.join(root, "objects")
    const tmpDir = NodePath.join(root, "tmp")
    const keep = Math.max(2, Math.floor(options.keepGenerations ?? 8))
    const gcEvery = Math.max(1, Math.ceil(keep / 2))
    const sync = options.fsync ?? true

    // The newest generation this process last confirmed, only a place to start looking: every use
    // re-validates it against the disk, so a stale or wrong entry costs a retry, never a wrong
    // answer. It is replaced, not only raised: a deleted and re-created key starts again at 0.
    const cache = new Map<string, { readonly gen: number; readonly nonce: string }>()
    const remember = (key: string, gen: number, nonce: string) => void cache.set(key, { gen, nonce })

    const toStoreError = (operation: string, key: string) => (
      e: FsError | Corrupt | BadKey | StoreUnavailable | StoreFailure
    ): StoreUnavailable | StoreFailure => {
      switch (e._tag) {
        case "StoreUnavailable":
        case "StoreFailure":
          return e
        case "BadKey":
          return new StoreFailure({ operation, key, reason: e.reason })
        case "Corrupt":
          return new StoreFailure({
            operation,
            key,
            reason: `corrupt file ${e.path} (${e.reason}); it was changed outside osqueue or the disk is failing`
          })
        case "FsError":
          return fsErrorToStoreError(operation, key, e)
      }
    }
    const fsErrorToStoreError = (operation: string, key: string, e: FsError): StoreUnavailable | StoreFailure => {
      const failure = (reason: string) => new StoreFailure({ operation, key, reason, cause: e.cause })
      switch (e.code) {
        case "ENOSPC":
        case "EDQUOT":
        case "EIO":
        case "EMFILE":
        case "ENFILE":
        case "EAGAIN":
        case "EBUSY":
        case "EINTR":
        case "ETIMEDOUT":
          return new StoreUnavailable({ operation, key, cause: e.cause })
        case "EACCES":
        case "EPERM":
          return failure(
            e.op === "link"
              ? `cannot create a hard link at ${e.path} (${e.code}): give this user write access to ${root}, and keep it on a local file system with hard links (ext4, xfs, btrfs, apfs)`
              : `permission denied on ${e.path} (${e.code}): give the user running osqueue read and write access to ${root} (owner or mode)`
          )
        case "EROFS":
          return failure(`${root} is on a read-only file system; point the file store at a writable directory`)
        case "ENOTSUP":
        case "EOPNOTSUPP":
        case "EXDEV":
          return failure(
            `the file system at ${root} cannot ${e.op} here (${e.code}); the file store needs hard links within one local file system`
          )
        case "ENAMETOOLONG":
          return failure(`key too long for the file system (${e.path}); use shorter key segments`)
        case "ENOTDIR":
        case "EISDIR":
          return failure(`unexpected file type at ${e.path}: something other than osqueue wrote into ${root}`)
        default:
          return failure(`${e.op} of ${e.path} failed: ${e.code ?? String(e.cause)}`)
      }
    }

    /** Folder of a key's generations; rejects keys that could escape the store's directory. */
    const generationsDir = (key: string): Either.Either<string, BadKey> => {
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
    const genPath = (dir: string, gen: number) => NodePath.join(dir, genName(gen))
    const tmpPath = (suffix: string) => NodePath.join(tmpDir, `${process.pid}-${newNonce()}${suffix}`)

    const readGen = (dir: string, gen: number, withBody: boolean): Effect.Effect<Option.Option<GenFile>, FsError | Corrupt> => {
      const path = genPath(dir, gen)
      return optional(
        (withBody ? readWhole(path) : readHead(path)).pipe(
          Effect.flatMap((buffer) => parseGenFile(path, buffer, withBody))
        )
      )
    }
    /** Whether the file with this nonce is still published at this generation. */
    const stillThere = (dir: string, gen: number, nonce: string) =>
      readGen(dir, gen, false).pipe(Effect.map(Option.exists((file) => file.header.nonce === nonce)))

    /** The highest generation number on disk, by listing the folder (only when the cache cannot help). */
    const newestListed = (dir: string): Effect.Effect<Option.Option<number>, FsError> =>
      optional(fsOp("readdir", dir, () => NodeFs.readdirSync(dir))).pipe(
        Effect.map(Option.flatMap((names) => {
          let max: number | undefined
          for (const name of names) {
            const gen = parseGenName(name)
            if (gen !== undefined && (max === undefined || gen > max)) max = gen
          }
          return Option.fromNullable(max)
        }))
      )

    /**
     * Finds the newest generation of a key. Correct against concurrent writers and garbage
     * collection: the answer was the newest generation at some instant during the call, and it
     * was written by a writer that won its race (see README, "Why no lost update").
     */
    const lookup = (key: string, dir: string, withBody: boolean): Effect.Effect<Option.Option<Top>, FsError | Corrupt | StoreUnavailable> =>
      Effect.gen(function* () {
        let start = cache.get(key)
        for (let attempt = 0; attempt < MAX_LOOKUP_ATTEMPTS; attempt++) {
          let current: { readonly gen: number; readonly nonce: string }
          if (start !== undefined) {
            current = start
          } else {
            const newest = yield* newestListed(dir)
            if (Option.isNone(newest)) return Option.none()
            const file = yield* readGen(dir, newest.value, false)
            if (Option.isNone(file)) continue
            current = { gen: newest.value, nonce: file.value.header.nonce }
          }
          start = undefined
          // Walk up while the next generation exists and was written on top of the current one.
          let broken = false
          for (;;) {
            // Usually there is none: a stat that answers "no" costs far less than a failed open.
            if (!(yield* exists(genPath(dir, current.gen + 1)))) break
            const next = yield* readGen(dir, current.gen + 1, false)
            if (Option.isNone(next)) break
            if (next.value.header.parent !== current.nonce) {
              broken = true
              break
            }
            current = { gen: current.gen + 1, nonce: next.value.header.nonce }
          }
          if (broken) continue
          // Re-read the top after seeing no successor: then it was the newest at that instant.
          const top = yield* readGen(dir, current.gen, withBody)
          if (Option.isNone(top) || top.value.header.nonce !== current.nonce) continue
          const known = cache.get(key)
          const alreadyConfirmed = known !== undefined && known.gen === current.gen && known.nonce === current.nonce
          // Its parent still being there proves the top's writer did not publish into a
          // generation number that garbage collection had already freed. Generation 0 is never
          // published into a folder: it comes with the folder.
          if (!alreadyConfirmed && current.gen > 0) {
            const parent = top.value.header.parent
            if (parent === null || !(yield* stillThere(dir, current.gen - 1, parent))) continue
          }
          remember(key, current.gen, current.nonce)
          return Option.some({ gen: current.gen, header: top.value.header, body: top.value.body })
        }
        return yield* new StoreUnavailable({
          operation: "lookup",
          key,
          cause: `lost ${MAX_LOOKUP_ATTEMPTS} races with concurrent writers and garbage collection in a row`
        })
      })

    /**
     * Creates a key that has no folder: its folder is prepared under tmp/ with the object as
     * generation 0 and renamed into place, which fails if the folder exists, so of racing
     * creators exactly one wins and the key appears whole. None when it lost: the folder exists,
     * or a delete removed the folder above it meanwhile; the caller looks again.
     */
    const createFolder = (
      key: string,
      dir: string,
      body: Body,
      metadata: Metadata
    ): Effect.Effect<Option.Option<string>, FsError | OutcomeUnknown> => {
      const parentDir = NodePath.dirname(dir)
      const nonce = newNonce()
      const staging = tmpPath(".d")
      const lost = (e: FsError) =>
        ["EEXIST", "ENOTEMPTY"].includes(e.code ?? "") ||
        (e.code === "ENOENT" && (e.path === parentDir || e.path === dir))
      return Effect.gen(function* () {
        yield* fsOp("mkdir", staging, () => NodeFs.mkdirSync(staging))
        const header: Header = { v: 1, key, gen: 0, nonce, parent: null, deleted: false, size: bodyLength(body), metadata: { ...metadata } }
        yield* writeDurable(genPath(staging, 0), Buffer.from(JSON.stringify(header) + "\n"), body, sync)
        yield* syncDirectory(staging, sync)
        yield* fsOp("mkdir", parentDir, () => NodeFs.mkdirSync(parentDir, { recursive: true }))
        // rename() onto an existing folder fails (a generations folder is never empty).
        yield* fsOp("rename", dir, () => NodeFs.renameSync(staging, dir))
        // The key exists from here on; a delete may already have removed it (ENOENT) again.
        yield* optional(syncDirectory(parentDir, sync)).pipe(Effect.mapError((cause) => new OutcomeUnknown({ key, cause })))
        remember(key, 0, nonce)
        return Option.some(versionOf(0, nonce))
      }).pipe(
        Effect.catchIf((e): e is FsError => e._tag === "FsError" && lost(e), () => Effect.succeedNone),
        Effect.ensuring(fsOp("rm", staging, () => NodeFs.rmSync(staging, { recursive: true, force: true })).pipe(Effect.ignore))
      )
    }

    /** Deletes old generations, lowest first (the order the no-lost-update argument relies on). */
    const collect = (key: string, dir: string, newest: number) =>
      Effect.gen(function* () {
        const names = yield* fsOp("readdir", dir, () => NodeFs.readdirSync(dir))
        const old = names
          .map(parseGenName)
          .filter((gen): gen is number => gen !== undefined && gen <= newest - keep)
          .sort((a, b) => a - b)
        if (old.length === 0) return
        for (const gen of old) {
          // On the thread pool: freeing a large file's pages takes a while.
          yield* Effect.tryPromise({
            try: () => NodeFs.promises.unlink(genPath(dir, gen)),
            catch: (cause) => new FsError({ op: "unlink", path: genPath(dir, gen), code: errnoOf(cause), cause })
          }).pipe(
            Effect.catchIf((e) => e.code === "ENOENT", () => Effect.void)
          )
        }
        yield* syncDirectory(dir, sync)
      }).pipe(
        Effect.catchAll((e) => Effect.logDebug("FileStore: garbage collection skipped", e)),
        Effect.annotateLogs({ key })
      )

    const baseCollected = (key: string, gen: number) =>
      Effect.logWarning("FileStore: write of unknown outcome, its base generation was collected meanwhile").pipe(
        Effect.annotateLogs({ key, generation: gen, keepGenerations: keep }),
        Effect.zipRight(
          Effect.fail(new OutcomeUnknown({ key, cause: "the generation this write was based on was garbage-collected concurrently" }))
        )
      )

    /**
     * Publishes generation `base.gen + 1` on top of `base`. Fails with PreconditionFailed when
     * another writer published that generation first (or the key's folder is gone), and with
     * Discarded when it removed its own unconfirmed file.
     */
    const publish = (
      operation: string,
      key: string,
      dir: string,
      base: { readonly gen: number; readonly nonce: string },
      body: Body,
      deleted: boolean,
      metadata: Metadata,
      expected: string
    ): Effect.Effect<string, StoreFailure | StoreUnavailable | PreconditionFailed | OutcomeUnknown | Discarded> =>
      Effect.gen(function* () {
        const gen = base.gen + 1
        const nonce = newNonce()
        const header: Header = { v: 1, key, gen, nonce, parent: base.nonce, deleted, size: bodyLength(body), metadata: { ...metadata } }
        const target = genPath(dir, gen)
        const staged = tmpPath("")

        yield* Effect.gen(function* () {
          yield* writeDurable(staged, Buffer.from(JSON.stringify(header) + "\n"), body, sync).pipe(
            Effect.mapError(toStoreError(operation, key))
          )
          // The compare-and-swap: the kernel creates the name only if nobody else did.
          yield* fsOp("link", target, () => NodeFs.linkSync(staged, target)).pipe(
            Effect.catchIf(
              (e) => e.code === "EEXIST" || e.code === "ENOENT",
              () => Effect.fail(new PreconditionFailed({ key, expected }))
            ),
            Effect.mapError((e) =>
              e._tag === "PreconditionFailed"
                ? e
                : ["ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS", "EMLINK", "ENOTSUP", "EOPNOTSUPP", "EXDEV", "ENAMETOOLONG"].includes(e.code ?? "")
                ? toStoreError(operation, key)(e)
                : new OutcomeUnknown({ key, cause: e })
            )
          )
        }).pipe(Effect.ensuring(unlinkQuietly(staged)))

        // From here on the write may have landed: anything that goes wrong is OutcomeUnknown.
        const unknown = (cause: unknown) => new OutcomeUnknown({ key, cause })
        yield* syncDirectory(dir, sync).pipe(Effect.mapError(unknown))
        // The base still being there proves that generation `gen` had never existed before our
        // link, so we are its one and only writer (README, "Why no lost update").
        const confirmed = yield* stillThere(dir, base.gen, base.nonce).pipe(Effect.mapError(unknown))
        if (!confirmed) {
          // The base was collected meanwhile. If the next generation was written on top of ours,
          // someone read ours as the newest, which readers only do for a writer that won.
          const successor = yield* readGen(dir, gen + 1, false).pipe(Effect.mapError(unknown))
          if (Option.isNone(successor) || successor.value.header.parent !== nonce) {
            // Our file is still there with nothing on top: we published into a generation number
            // that garbage collection had freed, or into the folder of a key deleted and created
            // again. Readers skip such a file (its parent is gone), so nobody read it: remove it.
            const ours = yield* stillThere(dir, gen, nonce).pipe(Effect.orElseSucceed(() => false))
            if (ours) {
              yield* unlinkQuietly(target)
              return yield* new Discarded({ gen })
            }
            // Gone already: we may have won and been outpaced by `keep` newer writes.
            return yield* baseCollected(key, gen)
          }
        }
        remember(key, gen, nonce)
        if (gen % gcEvery === 0 && gen >= keep) yield* collect(key, dir, gen)
        return versionOf(gen, nonce)
      })

    /** Conditional write (or tombstone) of a key: the shared path of put and conditional delete. */
    const write = (
      operation: string,
      key: string,
      body: Body,
      condition: WriteCondition,
      deleted: boolean,
      metadata: Metadata
    ): Effect.Effect<string, StoreFailure | StoreUnavailable | PreconditionFailed | OutcomeUnknown> =>
      Effect.gen(function* () {
        const dir = yield* generationsDir(key).pipe(Effect.mapError(toStoreError(operation, key)))
        if ("ifMatch" in condition) {
          const expected = condition.ifMatch
          const base = parseVersion(expected)
          // A version this store never issued (another backend's ETag, garbage) cannot match.
          if (base === undefined) return yield* new PreconditionFailed({ key, expected })
          // Generations only grow while a key's folder lives: if we know a newer one, fail fast.
          const known = cache.get(key)
          if (known !== undefined && known.gen > base.gen) return yield* new PreconditionFailed({ key, expected })
          const current = yield* readGen(dir, base.gen, false).pipe(Effect.mapError(toStoreError(operation, key)))
          if (Option.isNone(current) || current.value.header.nonce !== base.nonce || current.value.header.deleted) {
            return yield* new PreconditionFailed({ key, expected })
          }
          return yield* publish(operation, key, dir, base, body, deleted, metadata, expected).pipe(
            Effect.catchTag("Discarded", (e) => baseCollected(key, e.gen))
          )
        }
        // A key without a folder is created with its folder; one whose newest generation is a
        // tombstone (a conditional delete's) gets the object on top of it. A lost race looks
        // again: the key may be absent still, its folder removed by a delete meanwhile.
        for (let attempt = 0; attempt < MAX_CREATE_ATTEMPTS; attempt++) {
          const top = yield* lookup(key, dir, false).pipe(Effect.mapError(toStoreError(operation, key)))
          if (Option.isNone(top)) {
            const created = yield* createFolder(key, dir, body, metadata).pipe(
              Effect.catchTag("FsError", (e) => Effect.fail(toStoreError(operation, key)(e)))
            )
            if (Option.isSome(created)) return created.value
            continue
          }
          if (!top.value.header.deleted) return yield* new PreconditionFailed({ key, expected: "absent" })
          const base = { gen: top.value.gen, nonce: top.value.header.nonce }
          const created = yield* publish(operation, key, dir, base, body, deleted, metadata, "absent").pipe(
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
     * Removes a key for good: its generations folder is renamed into tmp/ (the one step that
     * makes the key absent, atomically, for readers and writers in every process), then removed
     * there; the key's own folder and the ones above it go too when they hold no other key. A
     * crash in between leaves the folder under tmp/, removed by the next store that opens the
     * directory, or empty folders, which cost `list` a readdir each and nothing else.
     */
    const removeKey = (key: string) =>
      Effect.gen(function* () {
        const dir = yield* generationsDir(key)
        const keyDir = NodePath.dirname(dir)
        const removed = tmpPath(REMOVED_SUFFIX)
        const moved = yield* optional(fsOp("rename", dir, () => NodeFs.renameSync(dir, removed)))
        cache.delete(key)
        if (Option.isSome(moved)) {
          // Durable before the answer; ENOENT: another delete already removed the key's folder.
          yield* optional(syncDirectory(keyDir, sync))
          yield* Effect.tryPromise({
            try: () => NodeFs.promises.rm(removed, { recursive: true, force: true }),
            catch: (cause) => new FsError({ op: "rm", path: removed, code: errnoOf(cause), cause })
          }).pipe(Effect.catchAll((e) => Effect.logDebug("FileStore: a deleted key's folder stays in tmp/ until the next open", e)))
        }
        // Then the folders above it that are left empty, up to objects/: rmdir fails (harmlessly)
        // at the first one that holds another key, or that a create has just made again.
        for (let folder = keyDir; folder !== objectsDir; folder = NodePath.dirname(folder)) {
          const removedFolder = yield* fsOp("rmdir", folder, () => NodeFs.rmdirSync(folder)).pipe(
            Effect.as(true),
            Effect.orElseSucceed(() => false)
          )
          if (!removedFolder) break
        }
      }).pipe(Effect.mapError(toStoreError("delete", key)))

    const readLive = (operation: string, key: string, withBody: boolean) =>
      Effect.gen(function* () {
        const dir = yield* generationsDir(key)
        const top = yield* lookup(key, dir, withBody)
        return Option.filter(top, (t) => !t.header.deleted)
      }).pipe(Effect.mapError(toStoreError(operation, key)))

    const get = Effect.fn("FileStore.get", { captureStackTrace: false })(function* (key: string) {
      const top = yield* readLive("get", key, true)
      return Option.map(top, (t): StoredObject => ({
        bytes: t.body ?? new Uint8Array(0),
        version: versionOf(t.gen, t.header.nonce),
        metadata: t.header.metadata
      }))
    })

    const head = Effect.fn("FileStore.head", { captureStackTrace: false })(function* (key: string) {
      const top = yield* readLive("head", key, false)
      return Option.map(top, (t): ObjectHead => ({ version: versionOf(t.gen, t.header.nonce), metadata: t.header.metadata }))
    })

    const put = Effect.fn("FileStore.put", { captureStackTrace: false })(function* (
      key: string,
      body: Body,
      condition: WriteCondition,
      putOptions?: { readonly metadata?: Metadata }
    ) {
      return yield* write("put", key, body, condition, false, putOptions?.metadata ?? {})
    })

    const del = Effect.fn("FileStore.delete")(function* (key: string, ifMatch?: string) {
      if (ifMatch === undefined) return yield* removeKey(key)
      yield* write("delete", key, new Uint8Array(0), { ifMatch }, true, {})
    })

    const list = Effect.fn("FileStore.list")(function* (prefix: string) {
      const parts = prefix.split("/")
      const partial = parts[parts.length - 1] ?? ""
      const folders = parts.slice(0, -1)
      if (folders.some((segment) => segment === "." || segment === "..")) {
        return yield* new StoreFailure({ operation: "list", key: prefix, reason: "\".\" and \"..\" segments are not allowed (path traversal)" })
      }
      // No key has an empty segment, so such a prefix matches nothing.
      if (folders.some((segment) => segment.length === 0)) return []
      const startDir = NodePath.join(objectsDir, ...folders.map(encodeSegment))
      const candidates: Array<string> = []
      const walk = (dir: string, segments: ReadonlyArray<string>, top: boolean): Effect.Effect<void, FsError> =>
        Effect.gen(function* () {
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
      yield* walk(startDir, folders, true).pipe(Effect.mapError(toStoreError("list", prefix)))
      // One after the other: each check is a few synchronous syscalls, so fibers add only overhead.
      const live: Array<string> = []
      for (const key of candidates) {
        if (key.startsWith(prefix) && Option.isSome(yield* readLive("list", key, false))) live.push(key)
      }
      return live.sort()
    })

    // --- opening the directory ----------------------------------------------------------------
    const openError = (e: FsError | Corrupt | BadKey) => toStoreError("open", root)(e)
    yield* fsOp("mkdir", root, () => NodeFs.mkdirSync(root, { recursive: true })).pipe(Effect.mapError(openError))
    const formatPath = NodePath.join(root, FORMAT_FILE)
    const existing = yield* optional(readWhole(formatPath)).pipe(Effect.mapError(openError))
    if (Option.isNone(existing)) {
      const entries = yield* fsOp("readdir", root, () => NodeFs.readdirSync(root)).pipe(Effect.mapError(openError))
      if (entries.some((name) => name !== "objects" && name !== "tmp" && name !== FORMAT_FILE)) {
        return yield* new StoreFailure({
          operation: "open",
          key: root,
          reason: `${root} is not empty and holds no ${FORMAT_FILE}: point the file store at an empty or new directory`
        })
      }
      yield* fsOp("mkdir", tmpDir, () => NodeFs.mkdirSync(tmpDir, { recursive: true })).pipe(Effect.mapError(openError))
      const staged = tmpPath("")
      yield* writeDurable(staged, Buffer.from(JSON.stringify(FORMAT) + "\n"), undefined, sync).pipe(
        Effect.zipRight(fsOp("link", formatPath, () => NodeFs.linkSync(staged, formatPath))),
        Effect.catchIf((e) => e.code === "EEXIST", () => Effect.void),
        Effect.ensuring(unlinkQuietly(staged)),
        Effect.zipRight(syncDirectory(root, sync)),
        Effect.mapError(openError)
      )
    }
    const format = yield* readWhole(formatPath).pipe(Effect.mapError(openError))
    const parsed = Either.try(() => JSON.parse(format.toString("utf8")) as unknown)
    if (
      Either.isLeft(parsed) ||
      typeof parsed.right !== "object" ||
      parsed.right === null ||
      !("format" in parsed.right) ||
      !("version" in parsed.right) ||
      parsed.right.format !== FORMAT.format ||
      parsed.right.version !== FORMAT.version
    ) {
      return yield* new StoreFailure({
        operation: "open",
        key: root,
        reason: `${formatPath} does not describe a version ${FORMAT.version} osqueue file store; refusing to guess its layout`
      })
    }
    yield* fsOp("mkdir", objectsDir, () => NodeFs.mkdirSync(objectsDir, { recursive: true })).pipe(Effect.mapError(openError))
    yield* fsOp("mkdir", tmpDir, () => NodeFs.mkdirSync(tmpDir, { recursive: true })).pipe(Effect.mapError(openError))
    yield* removeStaleTemporaries(tmpDir)
    yield* Effect.logDebug("FileStore opened").pipe(Effect.annotateLogs({ directory: root, keepGenerations: keep }))

    const store: ObjectStoreShape = {
      backend: "file",
      minWriteInterval: Duration.zero,
      get,
      head,
      put,
      delete: del,
      list
    }
    return store
  })

/**
 * Leftovers of writers that crashed between writing and publishing (young ones may be in use),
 * and folders of deleted keys whose removal a crash cut short (nobody uses those: any age).
 */
const removeStaleTemporaries = (tmpDir: string) =>
  Effect.gen(function* () {
    const names = yield* fsOp("readdir", tmpDir, () => NodeFs.readdirSync(tmpDir))
    const now = yield* Clock.currentTimeMillis
    for (const name of names) {
      const path = NodePath.join(tmpDir, name)
      yield* Effect.gen(function* () {
        if (!name.endsWith(REMOVED_SUFFIX)) {
          const stat = yield* optional(fsOp("stat", path, () => NodeFs.statSync(path)))
          if (Option.isNone(stat) || now - stat.value.mtimeMs <= STALE_TMP_MS) return
        }
        yield* fsOp("rm", path, () => NodeFs.rmSync(path, { recursive: true, force: true }))
      }).pipe(Effect.catchAll((e) => Effect.logDebug("FileStore: could not remove a temporary file", e)))
    }
  }).pipe(Effect.catchAll((e) => Effect.logDebug("FileStore: could not clean temporary files", e)))

/** The file store as the `ObjectStore`. Each build opens the directory (cheap); all builds share the disk. */
export const layer = (options: FileStoreOptions): Layer.Layer<ObjectStore, StoreFailure | StoreUnavailable> =>
  Layer.effect(ObjectStore, make(options))

/** The file store configured from the environment (see `config`). */
export const layerConfig: Layer.Layer<ObjectStore, StoreFailure | StoreUnavailable | ConfigError.ConfigError> =
  Layer.effect(ObjectStore, Effect.flatMap(config, make))
