/**
 * The file store's file-system steps, each an Effect that fails with `FsError` (the errno kept,
 * for `errors.ts` to give it a meaning), and the slow ones also as callbacks (`...Then`), for a
 * create or delete that chains its steps in one `Effect.async`. Synchronous where the step is a
 * few microseconds, on the thread pool where it waits for the disk.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import { type Body, bodyLength, bodyParts } from "../../ObjectStore.js"

export class FsError extends Data.TaggedError("FsError")<{
  readonly op: string
  readonly path: string
  readonly code: string | undefined
  readonly cause: unknown
}> {}

export const errnoOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined

/**
 * One file-system step, done synchronously. A write is a dozen small syscalls on a local disk,
 * each a few microseconds; the async API would send each through the thread pool and back,
 * which cost several milliseconds per write on a busy broker. Only the steps that wait for the
 * disk (fsync, and unlinking old generations) go to the thread pool.
 */
export const fsOp = <A>(op: string, path: string, run: () => A): Effect.Effect<A, FsError> =>
  Effect.try({ try: run, catch: (cause) => new FsError({ op, path, code: errnoOf(cause), cause }) })

/** A step on the thread pool (a promise of `node:fs`). */
export const fsOpOnPool = <A>(op: string, path: string, run: () => Promise<A>): Effect.Effect<A, FsError> =>
  Effect.tryPromise({ try: run, catch: (cause) => new FsError({ op, path, code: errnoOf(cause), cause }) })

/** ENOENT becomes None: "not there" is an answer, not an error, for most lookups here. */
export const optional = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<Option.Option<A>, E> =>
  effect.pipe(
    Effect.map(Option.some),
    Effect.catchIf(
      (e) => e instanceof FsError && e.code === "ENOENT",
      () => Effect.succeed(Option.none<A>())
    )
  )

export const NEWLINE = 0x0a

export const readWhole = (path: string) => fsOp("read", path, () => NodeFs.readFileSync(path))

/** Reads only up to the end of the first line; throws what `node:fs` throws. */
export const readFirstLineSync = (path: string): Buffer => {
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
}

/** Reads only up to the end of the first line. */
export const readFirstLine = (path: string): Effect.Effect<Buffer, FsError> =>
  fsOp("read", path, () => readFirstLineSync(path))

const fsError = (op: string, path: string, cause: unknown) => new FsError({ op, path, code: errnoOf(cause), cause })

const closeQuietly = (fd: number) => {
  try {
    NodeFs.closeSync(fd)
  } catch {
    // Written and synced (or failed) already: a close that fails loses nothing.
  }
}

/** Writes what a file holds to `fd`, then calls `then` once, with why it could not. */
type WriteStep = (fd: number, then: (failure: FsError | undefined) => void) => void

/**
 * Opens `path`, runs `write` on it, fsyncs it on the thread pool (the one slow step, which the
 * broker spends serving requests instead of blocking on the disk) and closes it, then calls
 * `done`: no fiber or Effect of its own, so that a create can chain its steps in callbacks.
 * The file is closed before `done` is called, whatever happened.
 */
const durablyThen = (
  path: string,
  flags: string,
  write: WriteStep,
  sync: boolean,
  done: (failure: FsError | undefined) => void
): void => {
  let fd: number
  try {
    fd = NodeFs.openSync(path, flags)
  } catch (cause) {
    return done(fsError("open", path, cause))
  }
  write(fd, (failure) => {
    if (failure !== undefined || !sync) {
      closeQuietly(fd)
      return done(failure)
    }
    NodeFs.fsync(fd, (cause) => {
      closeQuietly(fd)
      done(cause === null ? undefined : fsError("fsync", path, cause))
    })
  })
}

/** A step in callback form (`...Then`) as an Effect: one resumption of the caller. */
const resumed = (step: (done: (failure: FsError | undefined) => void) => void): Effect.Effect<void, FsError> =>
  Effect.async((resume) => step((failure) => resume(failure === undefined ? Effect.void : Effect.fail(failure))))

/**
 * `durablyThen` as an Effect: one resumption of the caller per file. Interrupted while the fsync
 * is under way, the callback still closes the file.
 */
const durably = (path: string, flags: string, write: WriteStep, sync: boolean) =>
  resumed((done) => durablyThen(path, flags, write, sync, done))

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
      for (let offset = written; offset < part.length;) {
        offset += NodeFs.writeSync(fd, part, offset, part.length - offset)
      }
      written = 0
    }
  }
}

/**
 * A body past this many bytes is written a slice at a time, each slice fdatasynced before the
 * next is written (`inSlices`).
 */
export const syncedSliceBytes = 512 * 1024

/**
 * Writes the parts about `syncedSliceBytes` at a time, fdatasyncing each slice on the thread
 * pool before writing the next. A checkpoint of a big queue is tens of MB: written whole, its
 * dirty pages went out with the file system's next journal commit, which the log's next
 * `fdatasync` waits for, and appends stalled for up to a quarter of a second behind it (ext4;
 * docs/performance.md, "A checkpoint written in synced slices"). In slices, an append waits
 * for one slice at most, and the event loop copies one slice at a time. A slice is whole parts:
 * a part longer than a slice (a body of one buffer) is a slice of its own.
 */
const inSlices = (
  fd: number,
  path: string,
  parts: ReadonlyArray<Uint8Array>,
  then: (failure: FsError | undefined) => void
) => {
  let next = 0
  const slice = () => {
    const from = next
    let bytes = 0
    while (next < parts.length && bytes < syncedSliceBytes) bytes += parts[next++]!.length
    try {
      writeParts(fd, parts.slice(from, next))
    } catch (cause) {
      return then(fsError("write", path, cause))
    }
    if (next === parts.length) return then(undefined)
    NodeFs.fdatasync(fd, (cause) => (cause === null ? slice() : then(fsError("fdatasync", path, cause))))
  }
  slice()
}

/**
 * Writes `head` and then the body's parts: at once, or the body in synced slices when it is
 * durable (`sync`) and long (`inSlices`). The head goes first in a call of its own: putting it in
 * front of 100,000 parts would copy the array of parts on every commit.
 */
const headAndBody = (path: string, head: Uint8Array, body: Body | undefined, sync: boolean): WriteStep => {
  const parts = body === undefined ? [] : bodyParts(body)
  const sliced = sync && body !== undefined && bodyLength(body) > syncedSliceBytes
  return (fd, then) => {
    try {
      writeParts(fd, [head])
      if (!sliced) writeParts(fd, parts)
    } catch (cause) {
      return then(fsError("write", path, cause))
    }
    if (sliced) inSlices(fd, path, parts, then)
    else then(undefined)
  }
}

/** Creates `path` (failing if it exists) with `head` and then the body's parts, then fsyncs it. */
export const writeDurable = (path: string, head: Uint8Array, body: Body | undefined, sync: boolean) =>
  durably(path, "wx", headAndBody(path, head, body, sync), sync)

/** `writeDurable` in callback form (`durablyThen`). */
export const writeDurableThen = (
  path: string,
  head: Uint8Array,
  body: Body | undefined,
  sync: boolean,
  done: (failure: FsError | undefined) => void
) => durablyThen(path, "wx", headAndBody(path, head, body, sync), sync, done)

/** Errors of a folder's fsync that lose nothing: some platforms cannot fsync a folder (the data itself was synced). */
const folderSyncHarmless = ["EINVAL", "EISDIR", "EPERM", "EBADF"]

export const syncDirectory = (path: string, sync: boolean) =>
  sync
    ? durably(path, "r", (_, then) => then(undefined), true).pipe(
      // Some platforms cannot fsync a directory; the data itself was already synced.
      Effect.catchIf((e) => folderSyncHarmless.includes(e.code ?? ""), () => Effect.void)
    )
    : Effect.void

/**
 * fsyncs folders at the same time (all on the thread pool at once, `done` called when the last
 * answers): what one write changed in several folders becomes durable in the time of one fsync.
 * A folder that is gone is skipped: a delete removed it, and with it what was to be synced.
 */
export const syncFoldersTogetherThen = (
  paths: ReadonlyArray<string>,
  sync: boolean,
  done: (failure: FsError | undefined) => void
): void => {
  if (!sync) return done(undefined)
  let waiting = 1
  let failure: FsError | undefined
  const answered = () => {
    if (--waiting === 0) done(failure)
  }
  const failed = (e: FsError) => {
    if (e.code !== "ENOENT" && !folderSyncHarmless.includes(e.code ?? "")) failure ??= e
  }
  for (const path of paths) {
    let fd: number
    try {
      fd = NodeFs.openSync(path, "r")
    } catch (cause) {
      failed(fsError("open", path, cause))
      continue
    }
    waiting++
    NodeFs.fsync(fd, (cause) => {
      closeQuietly(fd)
      if (cause !== null) failed(fsError("fsync", path, cause))
      answered()
    })
  }
  answered()
}

/** `syncFoldersTogetherThen` as an Effect. */
export const syncDirectoriesTogether = (paths: ReadonlyArray<string>, sync: boolean) =>
  sync
    ? resumed((done) => syncFoldersTogetherThen(paths, sync, done))
    : Effect.void

/** Folders whose fsync is under way, and the callers waiting for the next one (`syncDirectoryShared`). */
const folderSyncs = new Map<string, { waiting: Array<(failure: FsError | undefined) => void> }>()

const startFolderSync = (path: string, entry: { waiting: Array<(failure: FsError | undefined) => void> }) => {
  const served = entry.waiting
  entry.waiting = []
  const finish = (failure: FsError | undefined) => {
    // Some platforms cannot fsync a folder (the data itself was synced), and a folder that is
    // gone held nothing left to sync.
    const real = failure !== undefined && failure.code !== "ENOENT" && !folderSyncHarmless.includes(failure.code ?? "")
    for (const resume of served) resume(real ? failure : undefined)
    if (entry.waiting.length > 0) startFolderSync(path, entry)
    else folderSyncs.delete(path)
  }
  let fd: number
  try {
    fd = NodeFs.openSync(path, "r")
  } catch (cause) {
    return finish(fsError("open", path, cause))
  }
  NodeFs.fsync(fd, (cause) => {
    closeQuietly(fd)
    finish(cause === null ? undefined : fsError("fsync", path, cause))
  })
}

/**
 * fsyncs a folder, shared with every caller in this process that asks for the same folder
 * meanwhile: a caller waits for an fsync that begins after it asked (the one under way may have
 * begun before its change), and all who asked during one fsync are served by the next. Eight
 * deletes of log entries at once cost two fsyncs of `log/`, not eight.
 */
export const syncFolderSharedThen = (
  path: string,
  sync: boolean,
  done: (failure: FsError | undefined) => void
): void => {
  if (!sync) return done(undefined)
  const entry = folderSyncs.get(path)
  if (entry !== undefined) {
    entry.waiting.push(done)
    return
  }
  const fresh = { waiting: [done] }
  folderSyncs.set(path, fresh)
  startFolderSync(path, fresh)
}

/** `syncFolderSharedThen` as an Effect. */
export const syncDirectoryShared = (path: string, sync: boolean): Effect.Effect<void, FsError> =>
  sync
    ? resumed((done) => syncFolderSharedThen(path, sync, done))
    : Effect.void

/** Whether something is at `path`, without building an ENOENT exception when nothing is. */
export const exists = (path: string) =>
  fsOp("stat", path, () => NodeFs.statSync(path, { throwIfNoEntry: false }) !== undefined)

export const unlinkQuietly = (path: string) => fsOp("unlink", path, () => NodeFs.unlinkSync(path)).pipe(Effect.ignore)
