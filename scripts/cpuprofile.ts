/**
 * Where a `.cpuprofile` spent its time, as text: the functions with the most self time, and with
 * the most inclusive time (self plus everything they called), as shares of the busy time.
 * Profiles come from `pnpm bench --profile DIR` or `node --cpu-prof`.
 *
 *   npx tsx scripts/cpuprofile.ts FILE [--top 30] [--match text] [--from S] [--to S] [--timeline]
 *
 * `--match` keeps the rows whose function or file contains the text (e.g. `QueueState`).
 * `--from` and `--to` keep the samples taken between those seconds after the profile started, so
 * that a process's start and warm-up stay out of a phase's figures; `--timeline` prints the busy
 * share of each second, to find the phase.
 */
import { readFileSync } from "node:fs"
import { parseArgs } from "node:util"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: "string", default: "30" },
    match: { type: "string" },
    from: { type: "string", default: "0" },
    to: { type: "string", default: "Infinity" },
    timeline: { type: "boolean", default: false }
  }
})
const file = positionals[0]
if (file === undefined) {
  process.stderr.write("usage: npx tsx scripts/cpuprofile.ts FILE [--top 30] [--match text]\n")
  process.exit(2)
}
const top = Number(values.top)
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile

const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const parent = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
const name = (node: ProfileNode) => {
  const { functionName, lineNumber, url } = node.callFrame
  return `${functionName || "(anonymous)"} ${url.split("/").slice(-2).join("/")}:${lineNumber + 1}`
}

const from = Number(values.from) * 1e6
const to = Number(values.to) * 1e6
const isIdle = (id: number) => byId.get(id)!.callFrame.functionName === "(idle)"
const selfTime = new Map<number, number>()
/** Busy µs per whole second since the start. */
const perSecond: Array<number> = []
let at = 0
profile.samples.forEach((id, i) => {
  const delta = profile.timeDeltas[i] ?? 0
  at += delta
  if (!isIdle(id)) perSecond[Math.floor(at / 1e6)] = (perSecond[Math.floor(at / 1e6)] ?? 0) + delta
  if (at >= from && at < to) selfTime.set(id, (selfTime.get(id) ?? 0) + delta)
})

let busy = 0
let idle = 0
const self = new Map<string, number>()
const inclusive = new Map<string, number>()
for (const [id, time] of selfTime) {
  const node = byId.get(id)!
  if (isIdle(id)) {
    idle += time
    continue
  }
  busy += time
  self.set(name(node), (self.get(name(node)) ?? 0) + time)
  // A recursive function counts once per sample.
  const seen = new Set<string>()
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const key = name(byId.get(at)!)
    if (seen.has(key)) continue
    seen.add(key)
    inclusive.set(key, (inclusive.get(key) ?? 0) + time)
  }
}

const table = (title: string, times: Map<string, number>) => {
  const rows = [...times]
    .filter(([key]) => values.match === undefined || key.includes(values.match))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
  process.stdout.write(`\n${title}\n`)
  for (const [key, time] of rows) process.stdout.write(`${((time / busy) * 100).toFixed(1).padStart(6)}%  ${key}\n`)
}

if (values.timeline) {
  process.stdout.write("busy share per second since the start\n")
  for (let second = 0; second < perSecond.length; second++) {
    process.stdout.write(
      `${String(second).padStart(4)}s ${(((perSecond[second] ?? 0) / 1e6) * 100).toFixed(0).padStart(4)}%\n`
    )
  }
}
process.stdout.write(`${file}: busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms\n`)
table("self time (share of busy time)", self)
table("inclusive time (share of busy time)", inclusive)
