/**
 * A min-heap. The queue's indexes use it with lazy deletion: an item carries the stamp its job
 * had when pushed, and is ignored when popped if the job has changed since.
 */
export interface Heap<A> {
  readonly size: number
  peek(): A | undefined
  push(item: A): void
  pop(): A | undefined
}

/** A binary min-heap of any items, in an array. */
export class BinaryHeap<A> implements Heap<A> {
  private readonly items: Array<A> = []

  constructor(private readonly less: (a: A, b: A) => boolean) {}

  get size(): number {
    return this.items.length
  }

  peek(): A | undefined {
    return this.items[0]
  }

  // Sift with a hole instead of swaps: no temporary arrays on the claim path.
  push(item: A): void {
    const items = this.items
    let i = items.length
    items.push(item)
    while (i > 0) {
      const parent = (i - 1) >> 1
      const above = items[parent]!
      if (!this.less(item, above)) break
      items[i] = above
      i = parent
    }
    items[i] = item
  }

  pop(): A | undefined {
    const items = this.items
    const top = items[0]
    const last = items.pop()
    if (items.length > 0 && last !== undefined) {
      const n = items.length
      let i = 0
      for (;;) {
        const left = 2 * i + 1
        if (left >= n) break
        const right = left + 1
        const child = right < n && this.less(items[right]!, items[left]!) ? right : left
        if (!this.less(items[child]!, last)) break
        items[i] = items[child]!
        i = child
      }
      items[i] = last
    }
    return top
  }
}
