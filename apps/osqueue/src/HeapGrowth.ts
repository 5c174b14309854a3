/**
 * How far the broker lets V8's heap grow between full collections (docs/performance.md, target 3).
 * After each full collection V8 lets the old generation grow to a multiple of what survived
 * before it collects again, a multiple it picks from its own speed: for a queue of a million
 * jobs, the garbage of claims and completions then doubled the drain's memory (2,048 MB of RSS
 * in-process where the queue held 908). Bounding the growth at 20% kept the peak at 1,082 MB.
 * A small heap is left to V8's own multiple: there the bound saves little memory and costs a full
 * collection every half second or so under load, a fifth of the broker's CPU per call
 * (docs/performance.md, "The heap's growth bounded only when it is large"). So the bound is set
 * as soon as any collection finds more than `boundAboveBytes` in use, and lifted only when a full
 * collection leaves less than half of it. V8 reads the setting at each full collection, to set how
 * far the heap may grow before the next: set before the first full collection past the threshold,
 * the bound holds from that one on. A `--heap-growing-percent` the process was started with wins.
 */
import { constants, PerformanceObserver } from "node:perf_hooks"
import { getHeapStatistics, setFlagsFromString } from "node:v8"

export const heapGrowingPercent = 20

/**
 * Heap in use past which growth is bounded. Below it V8 may let the heap grow up to four times
 * what the last full collection left: 512 MB at most, under target 3's 1 GB.
 */
export const boundAboveBytes = 128 * 1024 * 1024

/**
 * Whether growth is bounded after a collection that left `usedBytes` in use (`full`: a full
 * one, whose figure is what lives; a young one's includes the old generation's garbage), `bounded`
 * before it.
 */
export const bounds = (usedBytes: number, full: boolean, bounded: boolean): boolean =>
  bounded ? !full || usedBytes >= boundAboveBytes / 2 : usedBytes > boundAboveBytes

export const boundHeapGrowth = (): void => {
  // V8 reads its flags with dashes or underscores alike.
  if (process.execArgv.some((flag) => flag.replaceAll("_", "-").startsWith("--heap-growing-percent"))) return
  let bounded = false
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const { detail } = entry as { readonly detail?: { readonly kind?: number } }
      const full = detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR
      const next = bounds(getHeapStatistics().used_heap_size, full, bounded)
      if (next === bounded) continue
      bounded = next
      // 0 is V8's own multiple.
      setFlagsFromString(`--heap-growing-percent=${bounded ? heapGrowingPercent : 0}`)
    }
  }).observe({ entryTypes: ["gc"] })
}
