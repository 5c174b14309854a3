/**
 * When the broker bounds V8's heap growth (`HeapGrowth`): from the first collection, young or
 * full, that finds more than `boundAboveBytes` in use (so that it holds before the next full
 * collection sets how far the heap may grow), until a full one leaves less than half of it, so
 * that a heap near the threshold never flips between the two at every collection.
 */
import { describe, expect, it } from "vitest"
import { boundAboveBytes, bounds } from "../src/HeapGrowth.js"

const mb = 1024 * 1024

describe("the heap's growth bound", () => {
  it("holds once the heap is large, and is lifted only well below that", () => {
    for (const full of [false, true]) {
      // a small heap grows as V8 likes
      expect(bounds(60 * mb, full, false)).toBe(false)
      expect(bounds(boundAboveBytes, full, false)).toBe(false)
      // a large one is bounded, whichever collection finds it so
      expect(bounds(boundAboveBytes + 1, full, false)).toBe(true)
      expect(bounds(900 * mb, full, false)).toBe(true)
      // bounded, it stays so down to half the threshold
      expect(bounds(boundAboveBytes - 1, full, true)).toBe(true)
      expect(bounds(boundAboveBytes / 2, full, true)).toBe(true)
    }
    // lifted only when a full collection leaves less: a young one's figure holds old garbage
    expect(bounds(boundAboveBytes / 2 - 1, true, true)).toBe(false)
    expect(bounds(10 * mb, false, true)).toBe(true)
  })
})
