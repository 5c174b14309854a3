/**
 * Property test: the job indexes' heap of columns (`ItemHeap`) gives items back in the order a
 * binary heap of objects does — least key first, then least seq — through any mix of pushes and
 * pops, growing past its first room and giving room back as it drains, with each item's id and
 * stamp intact.
 */
import { describe, expect, it } from "@effect/vitest"
import type { JobId } from "@osqueue/types"
import { FastCheck as fc } from "effect"
import { BinaryHeap } from "../src/Heap.js"
import { ItemHeap } from "../src/internal/itemHeap.js"
import { type Item, itemLess } from "../src/internal/jobIndex.js"

const step = fc.oneof(
  fc.record({
    // Few distinct keys and seqs: ties on the key decide by seq, and equal items occur.
    key: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constant(1_796_525_222_680.5)),
    seq: fc.integer({ min: 1, max: 50 }),
    stamp: fc.nat()
  }),
  fc.constant("pop" as const)
)

describe("ItemHeap", () => {
  it("pops what a binary heap of objects pops, in any mix of pushes and pops", () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 400 }), (steps) => {
        const columns = new ItemHeap()
        const objects = new BinaryHeap<Item>(itemLess)
        let pushed = 0
        for (const s of steps) {
          if (s === "pop") {
            const a = columns.pop()
            const b = objects.pop()
            // Equal (key, seq) pairs may come out in either order: compare what orders them.
            expect(a === undefined ? undefined : [a.key, a.seq]).toEqual(b === undefined ? undefined : [b.key, b.seq])
          } else {
            const item = { ...s, id: `job-${pushed++}` as JobId }
            columns.push(item)
            objects.push(item)
          }
          expect(columns.size).toBe(objects.size)
          expect(columns.peek()?.key).toEqual(objects.peek()?.key)
        }
      })
    )
  })

  it("keeps each item's id and stamp with its key and seq, through growth and draining", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1_000 }), { minLength: 1, maxLength: 300 }), (keys) => {
        const heap = new ItemHeap()
        keys.forEach((key, seq) => heap.push({ key, seq, id: `job-${seq}` as JobId, stamp: seq * 7 }))
        const out: Array<Item> = []
        for (let item = heap.pop(); item !== undefined; item = heap.pop()) out.push(item)
        expect(out.map(({ id, key, stamp }) => [id, key, stamp])).toEqual(
          out.map(({ seq }) => [`job-${seq}`, keys[seq], seq * 7])
        )
        expect(out.map(({ key, seq }) => [key, seq])).toEqual(
          keys.map((key, seq) => [key, seq]).sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!)
        )
        expect(heap.size).toBe(0)
      })
    )
  })
})

describe("ItemHeap.retain", () => {
  it("keeps exactly the items kept, then pops them in order, and takes pushes as before", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ key: fc.integer({ min: -5, max: 5 }), drop: fc.boolean() }), { maxLength: 300 }),
        fc.array(fc.integer({ min: -5, max: 5 }), { maxLength: 20 }),
        (items, later) => {
          const heap = new ItemHeap()
          const dropped = new Set<string>()
          items.forEach(({ drop, key }, seq) => {
            heap.push({ key, seq, id: `job-${seq}` as JobId, stamp: seq })
            if (drop) dropped.add(`job-${seq}`)
          })
          heap.retain((id, stamp) => !dropped.has(id) && stamp === Number(id.slice(4)))
          later.forEach((key, i) => heap.push({ key, seq: 1_000 + i, id: `job-${1_000 + i}` as JobId, stamp: 0 }))
          const expected = [
            ...items.flatMap(({ drop, key }, seq) => (drop ? [] : [[key, seq]])),
            ...later.map((key, i) => [key, 1_000 + i])
          ].sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!)
          expect(heap.size).toBe(expected.length)
          const out: Array<Array<number>> = []
          for (let item = heap.pop(); item !== undefined; item = heap.pop()) {
            expect(item.id).toBe(`job-${item.seq}`)
            out.push([item.key, item.seq])
          }
          expect(out).toEqual(expected)
        }
      )
    )
  })
})
