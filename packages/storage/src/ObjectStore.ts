/**
 * Bytes in keyed objects with a version token, and writes that land only if the version still
 * matches: the one primitive osqueue needs from storage. Every backend (memory, file, S3, GCS)
 * is a layer of this service; `Cas` in @osqueue/core builds the typed state cell on top.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"

/** The write's condition did not hold: someone else wrote (or deleted) the object first. */
export class PreconditionFailed extends Data.TaggedError("PreconditionFailed")<{
  readonly key: string
  readonly expected: string
}> {
  override get message() {
    return `object ${this.key} is no longer at ${this.expected}: another writer changed it`
  }
}

/** The store refused or timed out before anything could have happened; retry with backoff. */
export class StoreUnavailable extends Data.TaggedError("StoreUnavailable")<{
  readonly operation: string
  readonly key: string
  readonly cause?: unknown
}> {
  override get message() {
    return `storage unavailable during ${this.operation} of ${this.key}; retry later`
  }
}

/** A conditional write may or may not have landed (timeout, 5xx, lost response): read back to know. */
export class OutcomeUnknown extends Data.TaggedError("OutcomeUnknown")<{
  readonly key: string
  readonly cause?: unknown
}> {
  override get message() {
    return `the write of ${this.key} may or may not have landed; read the object back to find out`
  }
}

/** Anything else: misconfiguration, permissions, a bug. Not worth retrying as is. */
export class StoreFailure extends Data.TaggedError("StoreFailure")<{
  readonly operation: string
  readonly key: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `storage failed during ${this.operation} of ${this.key}: ${this.reason}`
  }
}

export type StoreError = PreconditionFailed | StoreUnavailable | OutcomeUnknown | StoreFailure
export type ReadError = StoreUnavailable | StoreFailure

export type Metadata = Readonly<Record<string, string>>

/**
 * What a put writes: bytes, or bytes in parts, written in order as one object. A commit of
 * `queue.json` is the cached bytes of each job: the file store writes those parts as they are
 * (`writev`), so a commit does not copy the whole queue into one buffer first. A store must not
 * keep a body past its put: the broker refills the same array of parts for its next commit.
 */
export type Body = Uint8Array | ReadonlyArray<Uint8Array>

/** The parts of a body, in order. */
export const bodyParts = (body: Body): ReadonlyArray<Uint8Array> => (body instanceof Uint8Array ? [body] : body)

/** A body's size in bytes. */
export const bodyLength = (body: Body): number => {
  if (body instanceof Uint8Array) return body.length
  let length = 0
  for (const part of body) length += part.length
  return length
}

/** A body as one buffer (no copy when it is one already). */
export const bodyBytes = (body: Body): Uint8Array =>
  body instanceof Uint8Array ? body : Buffer.concat(body, bodyLength(body))

export interface StoredObject {
  readonly bytes: Uint8Array
  /**
   * Opaque: ETag, generation, file generation… Changes on every write that changes the bytes
   * (memory, file and GCS: on every write; S3's ETag is the MD5 of the bytes, so rewriting
   * identical bytes keeps it — osqueue's commits always differ by their `seq`).
   */
  readonly version: string
  readonly metadata: Metadata
}

export interface ObjectHead {
  readonly version: string
  readonly metadata: Metadata
}

/** Every write is conditional: on the version read (`ifMatch`) or on the key being absent. */
export type WriteCondition = { readonly ifMatch: string } | { readonly ifAbsent: true }

export interface PutOptions {
  /** Small string pairs stored beside the object (S3 user metadata, GCS metadata). */
  readonly metadata?: Metadata
}

/**
 * Numbered logs that a store keeps itself, where appending to a file costs a fraction of creating
 * an object per entry (the file store's segment files: package README, "Logs in segment files").
 * A log is named by a key prefix ending in "/" (`log/`, `queues/emails/log/`). Its entry n is
 * whatever the first intact append of n wrote: every later append of n is told whose entry holds
 * the position, so of racing writers exactly one wins it, as with a create of `<log><n>` only if
 * absent. A body is UTF-8 text (a log entry is JSON): a byte 0xFF never occurs in it.
 */
export interface AppendLogs {
  /**
   * Appends `body` as entry `position` of `log`, marked with `tag` (printable ASCII, no spaces),
   * durably; answers the tag of the entry that holds the position: `tag` when this append won it.
   */
  readonly append: (
    log: string,
    position: number,
    tag: string,
    body: Body
  ) => Effect.Effect<string, StoreUnavailable | StoreFailure | OutcomeUnknown>
  /** Entry `position` of `log`, or None when it has none (not yet, or collected). */
  readonly read: (log: string, position: number) => Effect.Effect<Option.Option<Uint8Array>, ReadError>
  /**
   * Removes entries at or below `position`, a segment at a time (so some may stay until a later
   * call); answers how many it removed.
   */
  readonly collect: (log: string, position: number) => Effect.Effect<number, ReadError>
  /** The positions `log` holds, in order. Reads every segment: for tools and checks, not for a broker's work. */
  readonly positions: (log: string) => Effect.Effect<ReadonlyArray<number>, ReadError>
}

export interface ObjectStoreShape {
  /** For logs and metrics: "memory", "file", "s3", "gcs". */
  readonly backend: string
  /** The store's own limit on writes to one object (GCS: one per second). Zero when none. */
  readonly minWriteInterval: Duration.Duration
  readonly get: (key: string) => Effect.Effect<Option.Option<StoredObject>, ReadError>
  readonly head: (key: string) => Effect.Effect<Option.Option<ObjectHead>, ReadError>
  /** Writes the body if the condition holds and returns the new version. */
  readonly put: (
    key: string,
    body: Body,
    condition: WriteCondition,
    options?: PutOptions
  ) => Effect.Effect<string, StoreError>
  /** Deletes the object (if `ifMatch` is given, only at that version). Absent keys are fine. */
  readonly delete: (key: string, ifMatch?: string) => Effect.Effect<void, StoreError>
  /** Keys under a prefix, sorted. */
  readonly list: (prefix: string) => Effect.Effect<ReadonlyArray<string>, ReadError>
  /** Present where the store keeps logs of its own, cheaper than an object per entry (the file store). */
  readonly appendLogs?: AppendLogs
}

export class ObjectStore extends Context.Tag("@osqueue/storage/ObjectStore")<ObjectStore, ObjectStoreShape>() {}
