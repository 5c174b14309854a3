/**
 * The jobs and the indexes over them: a set per state, a ready heap per type, heaps of the
 * delayed, the leased, the finished and the dead by time, counts of each type's jobs by state,
 * and jobs by their idempotency key's hash. `install` is the one place that keeps them in
 * step with the jobs; the heaps use lazy deletion (an item whose stamp is not its job's is stale).
 */
import { type Job, type JobId, type JobState, jobStates } from "@osqueue/types"
import { randomInt } from "node:crypto"
import type { Heap } from "../Heap.js"
import type { Entry } from "./entry.js"
import { ItemHeap } from "./itemHeap.js"

export interface Item {
  /** Priority for the ready heaps, a time for the others. */
  readonly key: number
  readonly seq: number
  readonly id: JobId
  readonly stamp: number
}

/**
 * A job's key in the heap its state puts it in: its priority while queued, when it is due while
 * waiting, when its lease expires while running, when it finished once done (a flow's parent
 * waiting for its children is in none).
 */
export const heapKey = (job: Job): number => {
  switch (job.state) {
    case "queued":
      return job.priority
    case "delayed":
    case "failed-waiting-retry":
      return job.runAt
    case "running":
      return job.lease!.expiresAt
    case "completed":
    case "cancelled":
    case "dead":
      return job.finishedAt ?? 0
    case "waiting-children":
      // In no heap: its children's ends move it on.
      return 0
  }
}

/**
 * Drawn once per process: the hashes of idempotency keys only place jobs in an index in memory
 * (never written), and a client cannot choose keys that all land in one place.
 */
const keySeed = randomInt(2 ** 31)

/**
 * A 32-bit hash of an idempotency key (FNV-1a from a random seed, then murmur3's finalizer): the
 * index keeps this number per job rather than the key, which only the job's bytes hold; a
 * client's key (a UUID) cost about 56 bytes of heap per job as a string of its own
 * (docs/performance.md, target 3).
 */
export const keyHash = (key: string): number => {
  let h = keySeed
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return h ^ (h >>> 16)
}

/** A type's jobs by state (`JobIndex.byType`), and all of them. */
export interface TypeCounts {
  readonly states: Record<JobState, number>
  total: number
}

/** Each state at 0. */
export const noJobs = (): Record<JobState, number> =>
  Object.fromEntries(jobStates.map((s) => [s, 0])) as Record<JobState, number>

export const itemLess = (a: Item, b: Item) => a.key < b.key || (a.key === b.key && a.seq < b.seq)
const newHeap = () => new ItemHeap()

/** Stale items a heap may hold beyond as many as its current ones before it is compacted. */
const staleMargin = 1024

export class JobIndex {
  readonly entries = new Map<JobId, Entry>()
  readonly byState = Object.fromEntries(jobStates.map((s) => [s, new Set<JobId>()])) as Record<
    JobState,
    Set<JobId>
  >
  readonly ready = new Map<string, ItemHeap>()
  /**
   * Every type's jobs by state, kept here as the jobs change: the broker's stats history reads
   * them every few seconds, which counted every job of the state each time, in code that stays
   * cold at that pace (37 ms for 100,000 jobs; docs/performance.md, "An enqueued job written
   * field by field, and the client's batch checked once"). A type's queued and running jobs,
   * which the stats and the limits on claims read, are read from here too.
   */
  readonly byType = new Map<string, TypeCounts>()
  readonly scheduled = newHeap()
  readonly leases = newHeap()
  readonly finished = newHeap()
  readonly dead = newHeap()
  /** Jobs by their idempotency key. */
  readonly byKey = new KeyIndex(this.entries)

  /**
   * Replaces a job's entry and keeps every index in step. `key`: the job's key in the heap its
   * state puts it in (`heapKey`), when the caller has it without the job's object.
   */
  install(id: JobId, prev: Entry | undefined, next: Entry | undefined, key?: number): void {
    if (prev !== undefined) {
      this.byState[prev.state].delete(id)
      const counts = this.byType.get(prev.type)!
      counts.states[prev.state]--
      if (--counts.total === 0) this.byType.delete(prev.type)
      if (prev.keyHash !== undefined && prev.keyHash !== next?.keyHash) this.byKey.drop(prev.keyHash, id)
    }
    if (next === undefined) {
      this.entries.delete(id)
      return
    }
    this.entries.set(id, next)
    const { keyHash, seq, stamp, state, type } = next
    this.byState[state].add(id)
    let counts = this.byType.get(type)
    if (counts === undefined) this.byType.set(type, counts = { states: noJobs(), total: 0 })
    counts.states[state]++
    counts.total++
    if (keyHash !== undefined && keyHash !== prev?.keyHash) this.byKey.add(keyHash, id)
    const item: Item = { key: key ?? heapKey(next.job), seq, id, stamp }
    const byState = this.byState
    switch (state) {
      case "queued": {
        let heap = this.ready.get(type)
        if (heap === undefined) this.ready.set(type, heap = newHeap())
        this.pushTo(heap, item, counts.states.queued)
        break
      }
      case "delayed":
      case "failed-waiting-retry":
        this.pushTo(this.scheduled, item, byState["delayed"].size + byState["failed-waiting-retry"].size)
        break
      case "running":
        this.pushTo(this.leases, item, byState["running"].size)
        break
      case "completed":
      case "cancelled":
        this.pushTo(this.finished, item, byState["completed"].size + byState["cancelled"].size)
        break
      case "dead":
        this.pushTo(this.dead, item, byState["dead"].size)
        break
    }
  }

  /**
   * Pushes `item` on `heap`, which should hold `current` current items: past twice that (and a
   * margin), its stale items are dropped at once, so a heap stays within a constant factor of its
   * jobs even where nothing pops it (a replica following the log).
   */
  private pushTo(heap: ItemHeap, item: Item, current: number): void {
    heap.push(item)
    if (heap.size > 2 * current + staleMargin) heap.retain(this.isCurrent)
  }

  private readonly isCurrent = (id: JobId, stamp: number): boolean => this.entries.get(id)?.stamp === stamp

  /** How many jobs of `type` are in `state`. */
  countOf(type: string, state: JobState): number {
    return this.byType.get(type)?.states[state] ?? 0
  }

  /** The job behind a heap item, if the item is still current (and the job in `state`). */
  live(item: Item, state?: JobState): Job | undefined {
    return this.isLive(item, state) ? this.entries.get(item.id)!.job : undefined
  }

  /** `live` without the job: a job kept as bytes is not decoded to learn that its item is current. */
  isLive(item: Item, state?: JobState): boolean {
    const entry = this.entries.get(item.id)
    return entry !== undefined && entry.stamp === item.stamp && (state === undefined || entry.state === state)
  }

  validTop(heap: Heap<Item>): Item | undefined {
    for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
      if (this.isLive(top, "queued")) return top
      heap.pop()
    }
    return undefined
  }

  /** The current top of a retention heap (finished or dead jobs): stale items are dropped on the way. */
  oldest(heap: Heap<Item>): Item | undefined {
    for (let item = heap.peek(); item !== undefined; item = heap.peek()) {
      const entry = this.entries.get(item.id)
      // An unchanged entry (same stamp) is still in the state the heap holds it for.
      if (entry !== undefined && entry.stamp === item.stamp) return item
      heap.pop()
    }
    return undefined
  }
}

/**
 * Jobs by their idempotency key, held as the key's hash (`keyHash`): one id, or the ids whose
 * keys share it. A job's key is read back from the job to tell them apart.
 */
class KeyIndex {
  private readonly byHash = new Map<number, JobId | Array<JobId>>()

  constructor(private readonly entries: ReadonlyMap<JobId, Entry>) {}

  /** The job holding `key`. */
  get(key: string): JobId | undefined {
    const held = this.byHash.get(keyHash(key))
    if (held === undefined) return undefined
    if (typeof held === "string") return this.holds(held, key) ? held : undefined
    return held.find((id) => this.holds(id, key))
  }

  has(key: string): boolean {
    return this.get(key) !== undefined
  }

  add(hash: number, id: JobId): void {
    const held = this.byHash.get(hash)
    if (held === undefined) this.byHash.set(hash, id)
    else if (typeof held === "string") this.byHash.set(hash, [held, id])
    else held.push(id)
  }

  drop(hash: number, id: JobId): void {
    const held = this.byHash.get(hash)
    if (held === id) this.byHash.delete(hash)
    else if (typeof held === "object") {
      const rest = held.filter((other) => other !== id)
      this.byHash.set(hash, rest.length === 1 ? rest[0]! : rest)
    }
  }

  private holds(id: JobId, key: string): boolean {
    return this.entries.get(id)?.job.idempotencyKey === key
  }
}
