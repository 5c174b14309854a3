/**
 * A job as the state holds it: its cached bytes (what a commit writes) and, while at hand, its
 * object. Kept apart from the indexes so that the cache's rule — encode once, decode on read —
 * lives in one place.
 */
import { fromStoredJob, type Job, type JobState, publicJob, storedJob } from "@osqueue/types"
import { elementText } from "../JsonElements.js"

/**
 * A job in the state. Once encoded, the job is kept only as its bytes (it is decoded again when
 * read): a queued job's object, payload included, cost about three times its bytes, and a big
 * queue is mostly jobs nobody reads until they are claimed. The fields the indexes need stay.
 * A running job keeps its object too: its heartbeats and its outcome read it again soon, and
 * running jobs are only as many as the leases workers hold.
 */
export class Entry {
  private constructor(
    readonly state: JobState,
    readonly type: string,
    readonly seq: number,
    readonly idempotencyKey: string | undefined,
    /** A parent or a child of a flow (internal/flows.ts looks only at these). */
    readonly inFlow: boolean,
    private decoded: Job | undefined,
    /**
     * `,` and the job's stored JSON as UTF-8, filled in at the first encode after the job
     * changed: a commit then copies bytes instead of stringifying the whole queue.
     */
    private bytes: Uint8Array | undefined,
    /** Changes whenever the job does: heap items carrying an older stamp are stale. */
    readonly stamp: number
  ) {}

  /** `bytes`: the job's stored JSON with a comma in front, when it was read from them (a checkpoint, a log entry). */
  static of(job: Job, stamp: number, bytes?: Uint8Array): Entry {
    const inFlow = job.parentId !== undefined || job.children !== undefined
    return new Entry(job.state, job.type, job.seq, job.idempotencyKey, inFlow, job, bytes, stamp)
  }

  /** The same job under a new stamp (a rollback puts it back). */
  restamped(stamp: number): Entry {
    return new Entry(this.state, this.type, this.seq, this.idempotencyKey, this.inFlow, this.decoded, this.bytes, stamp)
  }

  get job(): Job {
    // Bytes this state wrote from a valid job: no need to check them again.
    return this.decoded ??= fromStoredJob(JSON.parse(elementText(this.bytes!)) as Record<string, unknown>)
  }

  /** The job's object if it is at hand (no decode). */
  get decodedIfAny(): Job | undefined {
    return this.decoded
  }

  /** About how many bytes the job's JSON takes (its stored bytes once a commit wrote them). */
  get size(): number {
    return this.bytes?.length ?? JSON.stringify(storedJob(this.decoded!)).length + 1
  }

  /**
   * Encodes the job now, if it was not yet: the command that put it is refused (and undone) if
   * that throws, instead of the commit that carries it (docs/architecture.md, "Hostile input").
   */
  prepare(): void {
    this.bytes ??= Buffer.from(`,${JSON.stringify(storedJob(this.decoded!))}`)
  }

  get prepared(): boolean {
    return this.bytes !== undefined
  }

  /** False only when the job's JSON surely does not contain `needle` (a `list` search's first pass). */
  mayContain(needle: Uint8Array): boolean {
    return this.bytes === undefined ||
      Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength).indexOf(needle) >= 0
  }

  /** The bytes a commit writes; from now on they stand for the job. */
  encoded(): Uint8Array {
    this.prepare()
    if (this.state !== "running") this.decoded = undefined
    return this.bytes!
  }

  /** `encoded` for the operator's view: a running job without its lease's secret. */
  encodedPublic(): Uint8Array {
    return this.state === "running" ? Buffer.from(`,${JSON.stringify(storedJob(publicJob(this.job)))}`) : this.encoded()
  }
}
