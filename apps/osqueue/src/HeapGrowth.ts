/**
 * How far the broker lets V8's heap grow between full collections (docs/performance.md, target 3).
 * After each full collection V8 lets the old generation grow to a multiple of what survived
 * before it collects again, a multiple it picks from its own speed: for a queue of a million
 * jobs, the garbage of claims and completions then doubled the drain's memory (2,048 MB of RSS
 * in-process where the queue held 908). Bounding the growth at 20% kept the peak at 1,082 MB for
 * a few percent more CPU. A `--heap-growing-percent` the process was started with wins.
 */
import { setFlagsFromString } from "node:v8"

export const heapGrowingPercent = 20

export const boundHeapGrowth = (): void => {
  // V8 reads its flags with dashes or underscores alike.
  if (process.execArgv.some((flag) => flag.replaceAll("_", "-").startsWith("--heap-growing-percent"))) return
  setFlagsFromString(`--heap-growing-percent=${heapGrowingPercent}`)
}
