/**
 * The state machine's CPU per command, alone: `QueueState` driven as the commit loop drives it
 * (begin, tick, each command under `apply`, the log entry's parts, seal, committed), with no
 * Effect, store or broker around it. Phases as `scripts/bench-engine.ts`: N enqueues, N claims
 * (`max: 1`) of them, their N completions, in batches of `--batch` commands, after an untimed
 * round. The figure is this process's CPU (user + system) over a phase divided by its commands,
 * garbage collection included. With `--alloc`, also the bytes allocated per command (V8's
 * sampling heap profiler, garbage included), and in which files.
 *
 *   npx tsx scripts/bench-state.ts [--ops 20000] [--batch 16] [--rounds 3] [--alloc]
 */
import { Session } from "node:inspector/promises"
import { parseArgs } from "node:util"
import type { ClaimResult, Command } from "../packages/core/src/Command.js"
import * as LeaseSecret from "../packages/core/src/LeaseSecret.js"
import { QueueState } from "../packages/core/src/QueueState.js"

const { values } = parseArgs({
  options: {
    ops: { type: "string", default: "20000" },
    batch: { type: "string", default: "16" },
    rounds: { type: "string", default: "3" },
    alloc: { type: "boolean", default: false }
  }
})
const ops = Number(values.ops)
const batchSize = Number(values.batch)
const rounds = Number(values.rounds)

const state = QueueState.empty()
let now = 1_700_000_000_000

/** One commit's work on the state, as `internal/appends.ts` and `internal/commitLoop.ts` do it. */
const commit = (commands: ReadonlyArray<Command>, results: Array<unknown>) => {
  now += 1
  state.begin()
  state.tick(now)
  for (const command of commands) {
    const result = state.apply(command, now, LeaseSecret.random)
    if (result._tag === "Left") throw new Error(result.left.message)
    results.push(result.right)
  }
  const position = state.seq + 1
  state.entryParts("batch", position, `bench:${position}:1`)
  state.seal(position)
  state.committed(position, `bench:${position}:1`)
}

/** CPU µs per command of `ops` commands made by `command`, in batches. */
const phase = (command: (i: number) => Command, results: Array<unknown>) => {
  const before = process.cpuUsage()
  for (let i = 0; i < ops; i += batchSize) {
    const commands: Array<Command> = []
    for (let k = i; k < Math.min(ops, i + batchSize); k++) commands.push(command(k))
    commit(commands, results)
  }
  const used = process.cpuUsage(before)
  return (used.user + used.system) / ops
}

const round = () => {
  const enqueue = phase(() => ({ _tag: "Enqueue", jobs: [{ type: "bench", payload: { n: 1 } }] }), [])
  const claimed: Array<ReadonlyArray<ClaimResult>> = []
  const claim = phase(() => ({ _tag: "Claim", workerId: "w", max: 1 }), claimed)
  const complete = phase((i) => ({ _tag: "Complete", token: claimed[i]![0]!.token }), [])
  return { enqueue, claim, complete }
}

process.stdout.write(`${ops} commands per phase, ${batchSize} per commit, QueueState alone\n`)
round()
for (let r = 0; r < rounds; r++) {
  const { claim, complete, enqueue } = round()
  process.stdout.write(
    `enqueue ${enqueue.toFixed(1)} µs  claim ${claim.toFixed(1)} µs  complete ${complete.toFixed(1)} µs  job ${
      (enqueue + claim + complete).toFixed(1)
    } µs\n`
  )
}

if (values.alloc) {
  interface Node {
    readonly callFrame: { readonly url: string }
    readonly selfSize: number
    readonly children: ReadonlyArray<Node>
  }
  const session = new Session()
  session.connect()
  // Garbage included: the objects the collectors freed count too.
  await session.post("HeapProfiler.startSampling", {
    samplingInterval: 256,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true
  } as never)
  round()
  const { profile } = (await session.post("HeapProfiler.stopSampling")) as { profile: { head: Node } }
  const bytes = new Map<string, number>()
  let total = 0
  const walk = (node: Node) => {
    // By file: tsx runs the sources as one line each, so a function's name and line say little.
    const name = node.callFrame.url.split("/").slice(-2).join("/") || "(native)"
    bytes.set(name, (bytes.get(name) ?? 0) + node.selfSize)
    total += node.selfSize
    node.children.forEach(walk)
  }
  walk(profile.head)
  process.stdout.write(`allocated: about ${(total / (3 * ops)).toFixed(0)} bytes per command, of which\n`)
  for (const [name, size] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    process.stdout.write(`${(size / (3 * ops)).toFixed(0).padStart(7)} B  ${name}\n`)
  }
}
