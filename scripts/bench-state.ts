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
 *        [--payload BYTES] [--jobs-per-enqueue J] [--keys] [--compare DIR] [--dist]
 *
 * `--payload` gives each job `{ t, pad }` with a pad of BYTES (`pnpm bench`'s payload; without
 * it `{ n: 1 }`); `--jobs-per-enqueue` makes each enqueue an `EnqueueMany` of J jobs (claims
 * then take up to J, and the figures are per job rather than per command); `--keys` gives each
 * job an idempotency key, as `@osqueue/client` gives every job it sends. `--compare DIR`
 * runs the state machine of another checkout (DIR: its root, built) in this process too, round
 * after round with this one's, each on its own state, the two in turn first: an A/B that a busy
 * spell of the shared machine falls on alike. `--dist` runs each build's compiled `dist/` (after
 * `pnpm build`) rather than its sources: the code as the broker runs it, where tsx's transform
 * names every closure it creates (esbuild's `keepNames`, a call per closure made) and so
 * overstates what a closure costs. Run under `node --expose-gc --import tsx` for
 * steadier figures: a full collection before each phase, so that one phase (or build) is not
 * charged with collecting another's garbage.
 */
import { Session } from "node:inspector/promises"
import { resolve } from "node:path"
import { parseArgs } from "node:util"
import type { ClaimResult, Command } from "../packages/core/src/Command.js"
import * as LeaseSecret from "../packages/core/src/LeaseSecret.js"
import { QueueState } from "../packages/core/src/QueueState.js"

const { values } = parseArgs({
  options: {
    ops: { type: "string", default: "20000" },
    batch: { type: "string", default: "16" },
    rounds: { type: "string", default: "3" },
    alloc: { type: "boolean", default: false },
    payload: { type: "string" },
    "jobs-per-enqueue": { type: "string", default: "1" },
    keys: { type: "boolean", default: false },
    compare: { type: "string" },
    dist: { type: "boolean", default: false }
  }
})
const ops = Number(values.ops)
const batchSize = Number(values.batch)
const rounds = Number(values.rounds)
const pad = values.payload === undefined ? undefined : "x".repeat(Number(values.payload))
const jobsPerEnqueue = Number(values["jobs-per-enqueue"])
const payload = () => (pad === undefined ? { n: 1 } : { t: Date.now(), pad })

/** With node's `--expose-gc`: a full collection before each phase, so that no phase collects another's garbage. */
const gc = (globalThis as { gc?: () => void }).gc

/** A checkout's state machine: this one's, or `--compare`'s. */
interface Build {
  readonly QueueState: typeof QueueState
  readonly random: typeof LeaseSecret.random
}

const loadBuild = async (root: string): Promise<Build> => {
  const core = resolve(root, values.dist ? "packages/core/dist" : "packages/core/src")
  const ext = values.dist ? "js" : "ts"
  const [state, secret] = await Promise.all([
    import(`${core}/QueueState.${ext}`) as Promise<{ QueueState: typeof QueueState }>,
    import(`${core}/LeaseSecret.${ext}`) as Promise<typeof LeaseSecret>
  ])
  return { QueueState: state.QueueState, random: secret.random }
}

/** A round of the three phases on a state of `build`'s own, kept from round to round. */
const runner = (build: Build) => {
  const state = build.QueueState.empty()
  let now = 1_700_000_000_000

  /** One commit's work on the state, as `internal/appends.ts` and `internal/commitLoop.ts` do it. */
  const commit = (commands: ReadonlyArray<Command>, results: Array<unknown>) => {
    now += 1
    state.begin()
    state.tick(now)
    for (const command of commands) {
      const result = state.apply(command, now, build.random)
      if (result._tag === "Left") throw new Error(result.left.message)
      results.push(result.right)
    }
    const position = state.seq + 1
    state.entryParts("batch", position, `bench:${position}:1`)
    state.seal(position)
    state.committed(position, `bench:${position}:1`)
  }

  /** CPU µs per job of `count` commands made by `command`, in batches. */
  const phase = (count: number, command: (i: number) => Command, results: Array<unknown>) => {
    gc?.()
    const before = process.cpuUsage()
    for (let i = 0; i < count; i += batchSize) {
      const commands: Array<Command> = []
      for (let k = i; k < Math.min(count, i + batchSize); k++) commands.push(command(k))
      commit(commands, results)
    }
    const used = process.cpuUsage(before)
    return (used.user + used.system) / (ops * jobsPerEnqueue)
  }

  return () => {
    const enqueue = phase(
      ops,
      () => ({
        _tag: "Enqueue",
        jobs: Array.from(
          { length: jobsPerEnqueue },
          () => (values.keys
            ? { type: "bench", payload: payload(), idempotencyKey: crypto.randomUUID() }
            : { type: "bench", payload: payload() })
        )
      }),
      []
    )
    const claimed: Array<ReadonlyArray<ClaimResult>> = []
    const claim = phase(ops, () => ({ _tag: "Claim", workerId: "w", max: jobsPerEnqueue }), claimed)
    const tokens = claimed.flat().map(({ token }) => token)
    const complete = phase(tokens.length, (i) => ({ _tag: "Complete", token: tokens[i]! }), [])
    return { enqueue, claim, complete }
  }
}

const builds: Array<{ readonly name: string; readonly round: () => Record<"enqueue" | "claim" | "complete", number> }> =
  [{
    name: "this",
    round: runner(
      values.dist ? await loadBuild(resolve(import.meta.dirname, "..")) : { QueueState, random: LeaseSecret.random }
    )
  }]
if (values.compare !== undefined) builds.push({ name: "compare", round: runner(await loadBuild(values.compare)) })
const round = builds[0]!.round

process.stdout.write(
  `${ops} commands per phase, ${batchSize} per commit, ${jobsPerEnqueue} jobs per command, QueueState alone\n`
)
for (const build of builds) build.round()
for (let r = 0; r < rounds; r++) {
  for (const build of r % 2 === 0 ? builds : [...builds].reverse()) {
    const { claim, complete, enqueue } = build.round()
    process.stdout.write(
      `${builds.length > 1 ? `${build.name.padEnd(8)}` : ""}enqueue ${enqueue.toFixed(1)} µs  claim ${
        claim.toFixed(1)
      } µs  complete ${complete.toFixed(1)} µs  job ${(enqueue + claim + complete).toFixed(1)} µs\n`
    )
  }
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
