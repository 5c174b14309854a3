/**
 * The jobs and the indexes over them: a set per state, a ready heap per type, heaps of the
 * delayed, the leased, the finished and the dead by time, counts of queued and running jobs per
 * type, and idempotency keys. `install` is the one place that keeps them in step with the jobs;
 * the heaps use lazy deletion (an item whose stamp is not its job's is stale).
 */
import { type Job, type JobId, type JobState, jobStates } from "@osqueue/types"
import { Heap } from "../Heap.js"
import type { Entry } from "./entry.js"

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

export const itemLess = (a: Item, b: Item) => a.key < b.key || (a.key === b.key && a.seq < b.seq)
const newHeap = () => new Heap<Item>(itemLess)

export class JobIndex {
  readonly entries = new Map<JobId, Entry>()
  readonly byState = Object.fromEntries(jobStates.map((s) => [s, new Set<JobId>()])) as Record<
    JobState,
    Set<JobId>
  >
  readonly ready = new Map<string, Heap<Item>>()
  readonly queuedByType = new Map<string, number>()
  readonly runningByType = new Map<string, number>()
  readonly scheduled = newHeap()
  readonly leases = newHeap()
  readonly finished = newHeap()
  readonly dead = newHeap()
  readonly byKey = new Map<string, JobId>()

  /**
   * Replaces a job's entry and keeps every index in step. `key`: the job's key in the heap its
   * state puts it in (`heapKey`), when the caller has it without the job's object.
   */
  install(id: JobId, prev: Entry | undefined, next: Entry | undefined, key?: number): void {
    if (prev !== undefined) {
      this.byState[prev.state].delete(id)
      if (prev.state === "queued") countDown(this.queuedByType, prev.type)
      if (prev.state === "running") countDown(this.runningByType, prev.type)
      if (prev.idempotencyKey !== undefined && this.byKey.get(prev.idempotencyKey) === id) {
        this.byKey.delete(prev.idempotencyKey)
      }
    }
    if (next === undefined) {
      this.entries.delete(id)
      return
    }
    this.entries.set(id, next)
    const { idempotencyKey, seq, stamp, state, type } = next
    this.byState[state].add(id)
    if (idempotencyKey !== undefined) this.byKey.set(idempotencyKey, id)
    const item: Item = { key: key ?? heapKey(next.job), seq, id, stamp }
    switch (state) {
      case "queued": {
        this.queuedByType.set(type, (this.queuedByType.get(type) ?? 0) + 1)
        let heap = this.ready.get(type)
        if (heap === undefined) this.ready.set(type, heap = newHeap())
        heap.push(item)
        break
      }
      case "delayed":
      case "failed-waiting-retry":
        this.scheduled.push(item)
        break
      case "running":
        this.runningByType.set(type, (this.runningByType.get(type) ?? 0) + 1)
        this.leases.push(item)
        break
      case "completed":
      case "cancelled":
        this.finished.push(item)
        break
      case "dead":
        this.dead.push(item)
        break
    }
  }

  /** The job behind a heap item, if the item is still current (and the job in `state`). */
  live(item: Item, state?: JobState): Job | undefined {
    const entry = this.entries.get(item.id)
    if (entry === undefined || entry.stamp !== item.stamp) return undefined
    return state === undefined || entry.state === state ? entry.job : undefined
  }

  validTop(heap: Heap<Item>): Item | undefined {
    for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
      if (this.live(top, "queued") !== undefined) return top
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

/** One less of `key` in a count map; a count that reaches 0 leaves the map. */
const countDown = (counts: Map<string, number>, key: string): void => {
  const left = (counts.get(key) ?? 1) - 1
  if (left === 0) counts.delete(key)
  else counts.set(key, left)
}
