/**
 * A job as the state holds it: its cached bytes (what a commit writes) and, while at hand, its
 * object. Kept apart from the indexes so that the cache's rule — encode once, decode on read —
 * lives in one place.
 */
import { fromStoredJob, type Job, type JobState, leftOutRules, publicJob, storedJob } from "@osqueue/types"
import { elementText } from "../JsonElements.js"
import { keyHash } from "./jobIndex.js"
import { storedText } from "./jobText.js"

/**
 * Bytes of one slab that new jobs' bytes are written into, one after another: the size of
 * Node's own pool for small buffers, so that a job that outlives its neighbours keeps no more
 * of them alive than a `Buffer` of its own did.
 */
const slabBytes = 8 * 1024

/** A job's bytes longer than this get a buffer of their own rather than a slab's room. */
const ownBufferFrom = slabBytes / 4

const comma = 0x2c

/**
 * `at` of a job with no bytes yet whose bytes are made only when something needs them
 * (`Entry.claimed`); its `end` is then its size once its log entry measured it, 0 before.
 */
const bytesWhenNeeded = -1

/** The slab being filled: written up to `slabUsed`, never rewritten (a job's bytes are immutable). */
let slab = new ArrayBuffer(slabBytes)
let slabView = Buffer.from(slab)
let slabUsed = 0

/** What a job's stored JSON holds in the payload's place in `spliced`, before the payload is written in. */
const payloadSlot = `"payload":null`
/** The length of `"payload":`, after which the payload's JSON goes. */
const payloadAt = payloadSlot.length - 4

/**
 * `JSON.stringify(storedJob(job))` with the payload's JSON given (`payloadJson`, as the enqueue
 * rule measured it) rather than made again: written field by field (`enqueuedText` for a job as
 * `enqueue` builds it, else `storedText`). A job with a value JSON leaves out is stringified with
 * `null` in the payload's place, which keeps the field where it was, and the payload's text is
 * put there. The first `"payload":null` in that text is the field's own as long as only strings
 * come before it (in a string every `"` is escaped), as in every job: `id`, `type`, then `payload`.
 */
const spliced = (job: Job, payloadJson: string): string => {
  if (
    leftOutRules.backoff(job) && leftOutRules.attempts(job) && leftOutRules.claims(job) && leftOutRules.history(job) &&
    !isInFlow(job) && job.onChildFailure === undefined
  ) return enqueuedText(job, payloadJson)
  const written = storedText(job, payloadJson)
  if (written !== undefined) return written
  const stored: { payload: unknown } = storedJob(job)
  stored.payload = null
  const text = JSON.stringify(stored)
  const at = text.indexOf(payloadSlot) + payloadAt
  return text.slice(0, at) + payloadJson + text.slice(at + 4)
}

/**
 * `JSON.stringify(storedJob(job))` of a job as `enqueue` builds it outside a flow, with the
 * fields `spliced` checked left out, written field by field: `storedJob`'s fields in its order,
 * each it may leave out asked of `leftOutRules` (its rule, in `@osqueue/types`); the
 * fields an enqueue never sets (a start, a lease, a result…) are absent, so none is looked up:
 * 0.52 µs a job in a loop where `storedText`, which looks each optional field up, took 0.77
 * (docs/performance.md, "An enqueued job written field by field, and the client's batch checked
 * once"). The numbers are safe integers (`checkJobsSince` checked the job first), which JSON
 * writes as `String` does; the id (one `enqueue` made) and the state need no escapes.
 */
const enqueuedText = (job: Job, payloadJson: string): string => {
  let text = `{"id":"${job.id}","type":${JSON.stringify(job.type)},"payload":${payloadJson},"state":"${job.state}",`
    + `"maxAttempts":${job.maxAttempts},"seq":${job.seq},"createdAt":${job.createdAt}`
  if (job.idempotencyKey !== undefined) text += `,"idempotencyKey":${JSON.stringify(job.idempotencyKey)}`
  if (job.traceparent !== undefined) text += `,"traceparent":${JSON.stringify(job.traceparent)}`
  if (job.timeoutMs !== undefined) text += `,"timeoutMs":${job.timeoutMs}`
  if (!leftOutRules.priority(job)) text += `,"priority":${job.priority}`
  if (!leftOutRules.runAt(job)) text += `,"runAt":${job.runAt}`
  return text + "}"
}

/** A parent or a child of a flow (`Entry.inFlow`). */
export const isInFlow = (job: Job): boolean => job.parentId !== undefined || job.children !== undefined

/**
 * A job in the state. Once encoded, the job is kept only as its bytes (it is decoded again when
 * read): a queued job's object, payload included, cost about three times its bytes, and a big
 * queue is mostly jobs nobody reads until they are claimed. The fields the indexes need stay.
 * A running job keeps its object too: its heartbeats and its outcome read it again soon, and
 * running jobs are only as many as the leases workers hold.
 *
 * The bytes are a range of a buffer shared with other jobs (`buffer`, `at`, `end`): the buffer a
 * checkpoint or log entry was read into, or a slab that new jobs' bytes are written into one
 * after another — not one `Buffer` object per job, which cost about 100 bytes of heap each and
 * as much again of the allocator's pool (docs/performance.md, target 3). Jobs written one after
 * another lie one after another, so a checkpoint writes them as a few large parts.
 */
export class Entry {
  private constructor(
    readonly state: JobState,
    readonly type: string,
    readonly seq: number,
    /** The hash of the job's idempotency key (`keyHash`), which only its bytes hold. */
    readonly keyHash: number | undefined,
    /** A parent or a child of a flow (internal/flows.ts looks only at these). */
    readonly inFlow: boolean,
    private decoded: Job | undefined,
    /**
     * `,` and the job's stored JSON as UTF-8 (`buffer` from `at` to `end`), filled in at the
     * first encode after the job changed: a commit then copies bytes instead of stringifying the
     * whole queue.
     */
    private buffer: ArrayBufferLike | undefined,
    private at: number,
    private end: number,
    /** Changes whenever the job does: heap items carrying an older stamp are stale. */
    readonly stamp: number,
    /**
     * The payload's JSON as the enqueue that made the job measured it (`rules.ts`), until the
     * first encode writes it into the job's instead of stringifying the payload again.
     */
    private payloadJson: string | undefined
  ) {}

  /** `payloadJson`: the payload's JSON, given only for a job built as `enqueue` builds it (`spliced`). */
  static of(job: Job, stamp: number, payloadJson?: string): Entry {
    const hash = job.idempotencyKey === undefined ? undefined : keyHash(job.idempotencyKey)
    return new Entry(job.state, job.type, job.seq, hash, isInFlow(job), job, undefined, 0, 0, stamp, payloadJson)
  }

  /**
   * `of` for the job a claim made running out of a job just read from its bytes (so its values
   * are plain JSON, written the same every time): its bytes are made only when something needs
   * them, a checkpoint or a log entry that writes it whole. The log entry that writes it as a
   * patch measures its size instead (`measured`): a running job is mostly completed before
   * the next checkpoint, and its encode was the larger part of a claim's (docs/performance.md,
   * "A claimed job encoded only when needed").
   */
  static claimed(job: Job, stamp: number): Entry {
    const hash = job.idempotencyKey === undefined ? undefined : keyHash(job.idempotencyKey)
    return new Entry(
      job.state,
      job.type,
      job.seq,
      hash,
      isInFlow(job),
      job,
      undefined,
      bytesWhenNeeded,
      0,
      stamp,
      undefined
    )
  }

  /**
   * A job kept as the bytes it was read from (`KeptJobs`: `buffer` from `at` to `end`, a comma
   * in front): its object only if it is running.
   */
  static stored(
    state: JobState,
    type: string,
    seq: number,
    keyHash: number | undefined,
    inFlow: boolean,
    running: Job | undefined,
    buffer: ArrayBufferLike,
    at: number,
    end: number,
    stamp: number
  ): Entry {
    return new Entry(state, type, seq, keyHash, inFlow, running, buffer, at, end, stamp, undefined)
  }

  /** The same job under a new stamp (a rollback puts it back). */
  restamped(stamp: number): Entry {
    return new Entry(
      this.state,
      this.type,
      this.seq,
      this.keyHash,
      this.inFlow,
      this.decoded,
      this.buffer,
      this.at,
      this.end,
      stamp,
      this.payloadJson
    )
  }

  get job(): Job {
    // Bytes this state wrote from a valid job: no need to check them again.
    return this.decoded ??= fromStoredJob(JSON.parse(elementText(this.bytes())) as Record<string, unknown>)
  }

  /** The job's object if it is at hand (no decode). */
  get decodedIfAny(): Job | undefined {
    return this.decoded
  }

  /**
   * About how many bytes the job's JSON takes: exactly, once a commit wrote it (its stored bytes,
   * or for a claimed job those its log entry measured).
   */
  get size(): number {
    if (this.buffer !== undefined) return this.end - this.at
    if (this.at !== bytesWhenNeeded) return JSON.stringify(storedJob(this.decoded!)).length + 1
    if (this.end > 0) return this.end
    this.prepare()
    return this.end - this.at
  }

  /** Whether its bytes wait until something needs them and its size is not yet known (`claimed`). */
  get awaitsSize(): boolean {
    return this.buffer === undefined && this.at === bytesWhenNeeded && this.end === 0
  }

  /** Whether its bytes are made only when needed (`claimed`) and not yet made: no encode to check it. */
  get bytesWhenNeeded(): boolean {
    return this.buffer === undefined && this.at === bytesWhenNeeded
  }

  /** The size of its bytes, `,` included, as its log entry's patch measured it (`claimed`). */
  measured(size: number): void {
    if (this.awaitsSize) this.end = size
  }

  /**
   * Encodes the job now, if it was not yet: the command that put it is refused (and undone) if
   * that throws, instead of the commit that carries it (docs/architecture.md, "Hostile input").
   */
  prepare(): void {
    if (this.buffer !== undefined) return
    let json: string
    if (this.payloadJson === undefined) {
      const job = this.decoded!
      const payloadJson = JSON.stringify(job.payload) as string | undefined
      json = (payloadJson === undefined ? undefined : storedText(job, payloadJson)) ?? JSON.stringify(storedJob(job))
    } else {
      json = spliced(this.decoded!, this.payloadJson)
      // From now on the job is what these bytes say: its object holds the caller's payload,
      // which need not write the same twice (a `toJSON`), and is never written again.
      this.payloadJson = undefined
      this.decoded = undefined
    }
    // The comma written as a byte in front, not joined to the text (a copy of it).
    const length = Buffer.byteLength(json) + 1
    if (length > ownBufferFrom) {
      const own = Buffer.allocUnsafe(length)
      own[0] = comma
      own.write(json, 1)
      this.buffer = own.buffer
      this.at = own.byteOffset
      this.end = own.byteOffset + length
      return
    }
    if (slabUsed + length > slabBytes) {
      slab = new ArrayBuffer(slabBytes)
      slabView = Buffer.from(slab)
      slabUsed = 0
    }
    this.buffer = slab
    this.at = slabUsed
    slabView[slabUsed] = comma
    slabView.write(json, slabUsed + 1)
    slabUsed += length
    this.end = slabUsed
  }

  get prepared(): boolean {
    return this.buffer !== undefined
  }

  /** False only when the job's JSON surely does not contain `needle` (a `list` search's first pass). */
  mayContain(needle: Uint8Array): boolean {
    return this.buffer === undefined || this.bytes().indexOf(needle) >= 0
  }

  /** The bytes a commit writes; from now on they stand for the job. */
  encoded(): Buffer {
    this.encodeInPlace()
    return this.bytes()
  }

  /** How many bytes `encoded` gives (it encodes the job, as `encoded` does, unless its size is known without). */
  encodedLength(): number {
    if (this.bytesWhenNeeded && this.end > 0) return this.end
    this.encodeInPlace()
    return this.end - this.at
  }

  /**
   * `encoded` as where the bytes lie (`bytesIn` from `bytesAt` to `bytesEnd`): a checkpoint
   * joins the ranges that follow one another into one part.
   */
  encodeInPlace(): void {
    this.prepare()
    if (this.state !== "running") this.decoded = undefined
  }

  get bytesIn(): ArrayBufferLike | undefined {
    return this.buffer
  }

  get bytesAt(): number {
    return this.at
  }

  get bytesEnd(): number {
    return this.end
  }

  /** `encoded` for the operator's view: a running job without its lease's secret. */
  encodedPublic(): Uint8Array {
    return this.state === "running" ? Buffer.from(`,${JSON.stringify(storedJob(publicJob(this.job)))}`) : this.encoded()
  }

  private bytes(): Buffer {
    return Buffer.from(this.buffer!, this.at, this.end - this.at)
  }
}
