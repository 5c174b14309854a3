/**
 * When the broker bounds V8's heap growth (`HeapGrowth`): from the full collection that leaves
 * more than `boundAboveBytes` in use, until one leaves less than half of it, so that a small
 * heap never flips between the two at every collection.
 */
import { describe, expect, it } from "vitest"
import { boundAboveBytes, bounds } from "../src/HeapGrowth.js"

const mb = 1024 * 1024

describe("the heap's growth bound", () => {
  it("holds once the heap is large, and is lifted only well below that", () => {
    // a small heap grows as V8 likes
    expect(bounds(60 * mb, false)).toBe(false)
    expect(bounds(boundAboveBytes, false)).toBe(false)
    // a large one is bounded
    expect(bounds(boundAboveBytes + 1, false)).toBe(true)
    expect(bounds(900 * mb, false)).toBe(true)
    // bounded, it stays so down to half the threshold
    expect(bounds(boundAboveBytes - 1, true)).toBe(true)
    expect(bounds(boundAboveBytes / 2, true)).toBe(true)
    expect(bounds(boundAboveBytes / 2 - 1, true)).toBe(false)
  })
})
