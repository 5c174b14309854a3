/**
 * The job indexes' heaps (internal/jobIndex.ts) as columns: each item's key, seq and stamp in
 * typed arrays and its id in an array, about 32 bytes an item where an object of its own took
 * about 64 with its slot — a million queued jobs are a million items (docs/performance.md,
 * target 3). An item read out is an object made then.
 */
import type { JobId } from "@osqueue/types"
import type { Heap } from "../Heap.js"
import type { Item } from "./jobIndex.js"

const initialRoom = 16

export class ItemHeap implements Heap<Item> {
  private keys = new Float64Array(initialRoom)
  private seqs = new Float64Array(initialRoom)
  private stamps = new Float64Array(initialRoom)
  private readonly ids: Array<JobId> = []

  get size(): number {
    return this.ids.length
  }

  peek(): Item | undefined {
    return this.ids.length === 0 ? undefined : this.itemAt(0)
  }

  // Sift with a hole, comparing by key then seq (`itemLess`).
  push(item: Item): void {
    const n = this.ids.length
    if (n === this.keys.length) this.resize(n * 2)
    this.ids.push(item.id)
    let i = n
    while (i > 0) {
      const parent = (i - 1) >> 1
      const above = this.keys[parent]!
      if (!(item.key < above || (item.key === above && item.seq < this.seqs[parent]!))) break
      this.move(parent, i)
      i = parent
    }
    this.keys[i] = item.key
    this.seqs[i] = item.seq
    this.stamps[i] = item.stamp
    this.ids[i] = item.id
  }

  pop(): Item | undefined {
    const n = this.ids.length - 1
    if (n < 0) return undefined
    const top = this.itemAt(0)
    const id = this.ids.pop()!
    if (n > 0) this.siftDown(0, n, this.keys[n]!, this.seqs[n]!, this.stamps[n]!, id)
    // A drained heap gives its room back.
    if (this.keys.length > initialRoom && n < this.keys.length / 4) this.resize(this.keys.length / 2)
    return top
  }

  /**
   * Keeps only the items `keep` says are current, in O(n): the indexes drop stale items when
   * they reach the top, which a replica following the log never makes them do (it claims,
   * expires and retires nothing itself), so its heaps are compacted instead (`JobIndex`).
   */
  retain(keep: (id: JobId, stamp: number) => boolean): void {
    let kept = 0
    for (let i = 0; i < this.ids.length; i++) {
      if (!keep(this.ids[i]!, this.stamps[i]!)) continue
      this.move(i, kept)
      kept++
    }
    this.ids.length = kept
    for (let i = (kept >> 1) - 1; i >= 0; i--) {
      this.siftDown(i, kept, this.keys[i]!, this.seqs[i]!, this.stamps[i]!, this.ids[i]!)
    }
    let room = this.keys.length
    while (room > initialRoom && kept < room / 4) room /= 2
    if (room !== this.keys.length) this.resize(room)
  }

  /** Places the item (key, seq, stamp, id) at the hole `i` or below it, among the first `n`. */
  private siftDown(i: number, n: number, key: number, seq: number, stamp: number, id: JobId): void {
    for (;;) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && this.less(right, left) ? right : left
      const childKey = this.keys[child]!
      if (!(childKey < key || (childKey === key && this.seqs[child]! < seq))) break
      this.move(child, i)
      i = child
    }
    this.keys[i] = key
    this.seqs[i] = seq
    this.stamps[i] = stamp
    this.ids[i] = id
  }

  private itemAt(i: number): Item {
    return { key: this.keys[i]!, seq: this.seqs[i]!, id: this.ids[i]!, stamp: this.stamps[i]! }
  }

  private less(a: number, b: number): boolean {
    const keyA = this.keys[a]!
    const keyB = this.keys[b]!
    return keyA < keyB || (keyA === keyB && this.seqs[a]! < this.seqs[b]!)
  }

  private move(from: number, to: number): void {
    this.keys[to] = this.keys[from]!
    this.seqs[to] = this.seqs[from]!
    this.stamps[to] = this.stamps[from]!
    this.ids[to] = this.ids[from]!
  }

  private resize(room: number): void {
    const grown = (column: Float64Array) => {
      const next = new Float64Array(room)
      next.set(column.subarray(0, Math.min(column.length, room)))
      return next
    }
    this.keys = grown(this.keys)
    this.seqs = grown(this.seqs)
    this.stamps = grown(this.stamps)
  }
}
