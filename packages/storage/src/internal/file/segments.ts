/**
 * The file store's logs (`AppendLogs`; package README, "Logs in segment files"). A log named
 * `queues/emails/log/` is the folder `logs/queues/emails/log/`; its entries are appended to
 * segment files of `SEGMENT_ENTRIES` positions each, named by their first position
 * (`0000000000000128.seg`), so every writer of position n appends to the same file.
 *
 * An entry is a mark byte 0xFF, a header line and the body (`segmentFile.ts`). An append is one
 * `writev` on a file opened `O_APPEND`, which the kernel places after every write before it,
 * whole, then one `fdatasync`, which makes every byte before it durable too. Then the writer
 * reads the segment up to its entry (or, when the entry is all the segment gained since it last
 * read, knows it without reading): the first intact entry of a position is the one that holds
 * it, for every reader and writer, and the file only grows, so all agree on it. No lock is held:
 * a paused or killed writer blocks no one.
 *
 * One append costs a `writev` and an `fdatasync`, where a create of an object costs a file made,
 * written and fsynced, a link and the folder's fsync (docs/performance.md, "The log in segment
 * files").
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import {
  type Body,
  bodyParts,
  OutcomeUnknown,
  type ReadError,
  StoreFailure,
  StoreUnavailable
} from "../../ObjectStore.js"
import type { StoreDirectory } from "./directory.js"
import { errnoOf, FsError, syncFoldersTogetherThen } from "./fs.js"
import { encodeSegment } from "./keys.js"
import { headerOf, indexedAsOnlyNew, MARK, scan, SEGMENT_ENTRIES, type SegmentIndex, TAG } from "./segmentFile.js"

/** Segments of one log a process keeps open; the oldest idle one is closed past this. */
const OPEN_SEGMENTS = 4
/** Buffers per `writev` call (the kernel's IOV_MAX). */
const MAX_IOVECS = 1024
const SEGMENT_NAME = /^(\d{16})\.seg$/
/** Whether a segment file's name is one this store makes (any other file in a log's folder is left alone). */
const isSegmentStart = (start: number) => Number.isSafeInteger(start) && start % SEGMENT_ENTRIES === 0

interface Segment extends SegmentIndex {
  readonly path: string
  /**
   * Folders to fsync before this process answers its first append to the segment, so that the
   * segment's name is durable as well as its bytes (whoever created it). Empty once done.
   */
  foldersToSync: ReadonlyArray<string>
  /** Appends under way: the file stays open until they end. */
  busy: number
  closed: boolean
}

interface SegmentLog {
  readonly folder: string
  readonly segments: Map<number, Segment>
  /**
   * The log's folder and those above it up to the store's root, until this process first
   * fsynced them (any may be new, made by this process or another); then the log's folder alone,
   * where each segment's name is.
   */
  foldersToSync: ReadonlyArray<string>
}

const fsError = (op: string, path: string, cause: unknown) => new FsError({ op, path, code: errnoOf(cause), cause })

const close = (segment: Segment) => {
  segment.closed = true
  if (segment.busy > 0) return
  try {
    NodeFs.closeSync(segment.fd)
  } catch {
    // Closed already: nothing is lost.
  }
}

/** The file store's `AppendLogs`, in `<root>/logs/`. */
export const makeSegmentLogs = (store: StoreDirectory) => {
  const logsDir = NodePath.join(store.root, "logs")
  const logs = new Map<string, SegmentLog>()

  const logOf = (log: string): SegmentLog => {
    const known = logs.get(log)
    if (known !== undefined) return known
    const names = log.split("/")
    if (names.pop() !== "" || names.length === 0 || names.some((n) => n === "" || n === "." || n === "..")) {
      throw new StoreFailure({
        operation: "log",
        key: log,
        reason: "a log is named by a key prefix ending in \"/\", without empty, \".\" or \"..\" segments"
      })
    }
    const folder = NodePath.join(logsDir, ...names.map(encodeSegment))
    const folders: Array<string> = []
    if (store.sync) {
      for (let f = folder; f.startsWith(store.root); f = NodePath.dirname(f)) {
        folders.push(f)
        if (f === store.root) break
      }
    }
    const fresh: SegmentLog = { folder, segments: new Map(), foldersToSync: folders }
    logs.set(log, fresh)
    return fresh
  }

  const keyOf = (log: string, position: number) => `${log}${position}`

  /** The segment holding `position`, opened (created when `create`); undefined when absent and not created. */
  const segmentOf = (state: SegmentLog, position: number, create: boolean): Segment | undefined => {
    const start = position - (position % SEGMENT_ENTRIES)
    const open = state.segments.get(start)
    if (open !== undefined) return open
    const path = NodePath.join(state.folder, `${String(start).padStart(16, "0")}.seg`)
    let fd: number
    try {
      fd = NodeFs.openSync(path, NodeFs.constants.O_RDWR | NodeFs.constants.O_APPEND)
    } catch (cause) {
      if (errnoOf(cause) !== "ENOENT") throw fsError("open", path, cause)
      if (!create) return undefined
      try {
        NodeFs.mkdirSync(state.folder, { recursive: true })
        fd = NodeFs.openSync(
          path,
          NodeFs.constants.O_RDWR | NodeFs.constants.O_APPEND | NodeFs.constants.O_CREAT,
          0o644
        )
      } catch (cause) {
        throw fsError("create", path, cause)
      }
    }
    const segment: Segment = {
      start,
      path,
      fd,
      scanned: 0,
      entries: new Map(),
      foldersToSync: state.foldersToSync,
      busy: 0,
      closed: false
    }
    state.segments.set(start, segment)
    if (state.segments.size > OPEN_SEGMENTS) {
      const idle = [...state.segments.values()].filter((s) => s.busy === 0 && s !== segment)
      const oldest = idle.reduce<Segment | undefined>(
        (a, s) => (a === undefined || s.start < a.start ? s : a),
        undefined
      )
      if (oldest !== undefined) {
        state.segments.delete(oldest.start)
        close(oldest)
      }
    }
    return segment
  }

  const failed = (operation: string, key: string) => (cause: unknown): StoreUnavailable | StoreFailure =>
    cause instanceof StoreFailure || cause instanceof StoreUnavailable
      ? cause
      : store.toStoreError(operation, key)(
        cause instanceof FsError ? cause : new FsError({ op: operation, path: key, code: errnoOf(cause), cause })
      )

  const append = (log: string, position: number, tag: string, body: Body) =>
    Effect.async<string, StoreUnavailable | StoreFailure | OutcomeUnknown>((resume) => {
      const key = keyOf(log, position)
      const parts = bodyParts(body)
      if (!Number.isSafeInteger(position) || position < 0) {
        return resume(
          Effect.fail(new StoreFailure({ operation: "append", key, reason: "a position is a safe integer ≥ 0" }))
        )
      }
      if (!TAG.test(tag)) {
        return resume(Effect.fail(
          new StoreFailure({
            operation: "append",
            key,
            reason: "a tag is 1 to 256 characters of printable ASCII, no spaces"
          })
        ))
      }
      let length = 0
      for (const part of parts) {
        if (part.indexOf(MARK) !== -1) {
          return resume(Effect.fail(
            new StoreFailure({ operation: "append", key, reason: "a log entry is UTF-8 text: it holds no byte 0xFF" })
          ))
        }
        length += part.length
      }
      let segment: Segment
      let state: SegmentLog
      let header: Buffer
      try {
        state = logOf(log)
        segment = segmentOf(state, position, true)!
        // Known taken: no write. (Not known is not free: the read after the append decides.)
        const known = segment.entries.get(position)
        if (known !== undefined) return resume(Effect.succeed(known.tag))
        header = headerOf(position, length, tag, parts)
      } catch (cause) {
        return resume(Effect.fail(failed("append", key)(cause)))
      }
      const open = segment
      const entryLength = header.length + length
      open.busy++
      const done = (answer: Effect.Effect<string, StoreUnavailable | StoreFailure | OutcomeUnknown>) => {
        if (--open.busy === 0 && open.closed) close(open)
        resume(answer)
      }
      const settle = (failure: FsError | undefined) => {
        if (failure !== undefined) return done(Effect.fail(new OutcomeUnknown({ key, cause: failure })))
        try {
          // Nothing but this entry after what was read: it is the position's (nothing before
          // holds it), indexed without reading it back.
          if (!indexedAsOnlyNew(open, position, tag, header.length, length)) scan(open, position)
        } catch (cause) {
          return done(Effect.fail(new OutcomeUnknown({ key, cause })))
        }
        const entry = open.entries.get(position)
        done(
          entry === undefined
            ? Effect.fail(new OutcomeUnknown({ key, cause: "the entry was not found where it was appended" }))
            : Effect.succeed(entry.tag)
        )
      }
      // One system call, so that the kernel places the entry whole: past the kernel's 1,024
      // buffers a call, libuv would write the rest in a second one, after another writer's.
      // Written at once: a trip through the thread pool costs the event loop more than the copy,
      // even of an entry of a batch of 100 jobs (docs/performance.md, "The log in segment files").
      let written: number
      try {
        written = NodeFs.writevSync(
          open.fd,
          parts.length < MAX_IOVECS ? [header, ...parts] : [header, Buffer.concat(parts, length)]
        )
      } catch (cause) {
        // A failed writev wrote nothing.
        return done(Effect.fail(failed("append", key)(fsError("writev", open.path, cause))))
      }
      if (written !== entryLength) {
        // A short one left a torn entry, which readers pass over.
        return done(Effect.fail(
          new StoreUnavailable({
            operation: "append",
            key,
            cause: `only ${written} of ${entryLength} bytes were written (is the disk full?)`
          })
        ))
      }
      if (!store.sync) return settle(undefined)
      NodeFs.fdatasync(open.fd, (cause) => {
        if (cause !== null) return settle(fsError("fdatasync", open.path, cause))
        if (open.foldersToSync.length === 0) return settle(undefined)
        syncFoldersTogetherThen(open.foldersToSync, true, (failure) => {
          if (failure === undefined) {
            open.foldersToSync = []
            state.foldersToSync = [state.folder]
          }
          settle(failure)
        })
      })
    })

  const read = (log: string, position: number): Effect.Effect<Option.Option<Uint8Array>, ReadError> =>
    Effect.try({
      try: () => {
        if (!Number.isSafeInteger(position) || position < 0) return Option.none()
        const segment = segmentOf(logOf(log), position, false)
        if (segment === undefined) return Option.none()
        scan(segment, position)
        const entry = segment.entries.get(position)
        if (entry === undefined) return Option.none()
        const bytes = Buffer.allocUnsafe(entry.length)
        NodeFs.readSync(segment.fd, bytes, 0, entry.length, entry.offset)
        return Option.some(bytes)
      },
      catch: failed("read", keyOf(log, position))
    })

  /** The first positions of the log's segment files (none when it has no folder yet). */
  const segmentStarts = (state: SegmentLog): Array<number> => {
    let names: Array<string>
    try {
      names = NodeFs.readdirSync(state.folder)
    } catch (cause) {
      if (errnoOf(cause) === "ENOENT") return []
      throw fsError("readdir", state.folder, cause)
    }
    return names.map((name) => Number(SEGMENT_NAME.exec(name)?.[1] ?? NaN)).filter(isSegmentStart)
  }

  const collect = (log: string, position: number): Effect.Effect<number, ReadError> =>
    Effect.try({
      try: () => {
        const state = logOf(log)
        let removed = 0
        for (const start of segmentStarts(state)) {
          if (start + SEGMENT_ENTRIES - 1 > position) continue
          const segment = segmentOf(state, start, false)
          if (segment === undefined) continue
          scan(segment, undefined)
          removed += segment.entries.size
          try {
            NodeFs.unlinkSync(segment.path)
          } catch (cause) {
            if (errnoOf(cause) !== "ENOENT") throw fsError("unlink", segment.path, cause)
          }
          state.segments.delete(start)
          close(segment)
        }
        return removed
      },
      catch: failed("collect", log)
    })

  const positions = (log: string): Effect.Effect<ReadonlyArray<number>, ReadError> =>
    Effect.try({
      try: () => {
        const state = logOf(log)
        const held: Array<number> = []
        for (const start of segmentStarts(state)) {
          const segment = segmentOf(state, start, false)
          if (segment === undefined) continue
          scan(segment, undefined)
          held.push(...segment.entries.keys())
        }
        return held.sort((a, b) => a - b)
      },
      catch: failed("positions", log)
    })

  /** Closes every segment file this store holds open (those with appends under way once they end). */
  const closeAll = () => {
    for (const state of logs.values()) {
      for (const segment of state.segments.values()) close(segment)
      state.segments.clear()
    }
  }

  return { append, read, collect, positions, close: closeAll }
}
