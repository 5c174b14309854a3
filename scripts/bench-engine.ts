/**
 * The engine's CPU per command, without a broker: `Engine.layer` (GroupCommit, Election, Replica,
 * Cas, Log) over the memory store, fed as the edge feeds it — `submitAll` of one turn's single
 * commands from C closed-loop callers (each sends its next command once answered). Phases as
 * `scripts/bench/ops.ts`: N enqueues, N claims (`max: 1`) of them, their N completions, after an
 * untimed warm-up of the same. The figure is this process's CPU (user + system) over a phase
 * divided by its commands: the commit loop, `Replica`, `QueueState`, the memory store and GC.
 *
 *   npx tsx scripts/bench-engine.ts [--ops 20000] [--callers 16] [--rounds 3] [--in-flight 1|2] [--count]
 *
 * `--callers 256` is issue 15's target 5 without the store's 50 ms: the CPU of a batch of 256.
 *
 * `--count` prints, instead of CPU, the Effect operations the runtime ran and the fibers it
 * started per commit over the timed rounds, in the engine's fibers (the callers' `submitAll` run
 * in fibers of their own, not counted): counts the machine's noise does not move. Counting slows
 * every operation, so its CPU says nothing.
 */
import { type Command, Engine, EngineConfig, GroupCommit, Metrics } from "@osqueue/core"
import { MemoryStore } from "@osqueue/storage"
import type { LeaseToken } from "@osqueue/types"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as RuntimeFlags from "effect/RuntimeFlags"
import * as RuntimeFlagsPatch from "effect/RuntimeFlagsPatch"
import * as Scope from "effect/Scope"
import * as Supervisor from "effect/Supervisor"
import { parseArgs } from "node:util"

const { values } = parseArgs({
  options: {
    ops: { type: "string", default: "20000" },
    callers: { type: "string", default: "16" },
    rounds: { type: "string", default: "3" },
    "in-flight": { type: "string", default: "2" },
    count: { type: "boolean", default: false }
  }
})
const ops = Number(values.ops)
const callers = Number(values.callers)
const rounds = Number(values.rounds)
const appendsInFlight = Number(values["in-flight"]) === 1 ? 1 : 2

/** Effect operations run and fibers started while `counting` (`--count`). */
class Counter extends Supervisor.AbstractSupervisor<void> {
  counting = false
  operations = 0
  fibers = 0
  readonly value = Effect.void
  override onStart() {
    if (this.counting) this.fibers++
  }
  override onEffect() {
    if (this.counting) this.operations++
  }
}
const counter = new Counter()

const cpuMicros = () => {
  const usage = process.cpuUsage()
  return usage.user + usage.system
}

const program = Effect.gen(function*() {
  const scope = yield* Scope.make()
  const layer = Engine.layer.pipe(
    Layer.provide(MemoryStore.layer),
    Layer.provide(EngineConfig.layer({ advertisedUrl: "http://bench:1", appendsInFlight }))
  )
  const commit = Context.get(yield* Layer.buildWithScope(layer, scope), GroupCommit.GroupCommit)
  // Lead first: a submit before the takeover is refused.
  while ((yield* Effect.either(commit.submit({ _tag: "Pause", type: "warm-up" })))._tag === "Left") {
    yield* Effect.sleep(10)
  }

  /** Runs `total` commands from `callers` closed-loop callers, gathered per turn as the edge does. */
  const phase = (
    total: number,
    command: (i: number) => Command,
    onResult: (i: number, result: unknown) => void
  ) =>
    Effect.async<void>((resume) => {
      let next = 0
      let done = 0
      let gathered: Array<number> = []
      const flush = () => {
        const batch = gathered
        gathered = []
        Effect.runCallback(commit.submitAll(batch.map(command)), {
          onExit: (exit) => {
            if (exit._tag === "Failure") throw new Error(String(exit.cause))
            exit.value.forEach((outcome, k) => {
              if (outcome._tag === "Left") throw new Error(outcome.left.message)
              onResult(batch[k]!, outcome.right)
              done++
              if (next < total) call()
            })
            if (done === total) resume(Effect.void)
          }
        })
      }
      const call = () => {
        if (gathered.length === 0) setImmediate(flush)
        gathered.push(next++)
      }
      for (let c = 0; c < callers && next < total; c++) call()
    })

  const tokens: Array<LeaseToken> = new Array(ops)
  const run = (timed: boolean) =>
    Effect.gen(function*() {
      const figures: Record<string, number> = {}
      const perCommit: Record<string, number> = {}
      const measure = (name: string, effect: Effect.Effect<void>) =>
        Effect.gen(function*() {
          const commitsBefore = (yield* Metric.value(Metrics.commits)).count
          const before = cpuMicros()
          yield* effect
          figures[name] = (cpuMicros() - before) / ops
          perCommit[name] = ops / ((yield* Metric.value(Metrics.commits)).count - commitsBefore)
        })
      yield* measure(
        "enqueue",
        phase(ops, () => ({ _tag: "Enqueue", jobs: [{ type: "bench", payload: { n: 1 } }] }), () => {})
      )
      yield* measure(
        "claim",
        phase(ops, () => ({ _tag: "Claim", workerId: "w", max: 1 }), (i, claimed) => {
          tokens[i] = (claimed as ReadonlyArray<{ readonly token: LeaseToken }>)[0]!.token
        })
      )
      yield* measure("complete", phase(ops, (i) => ({ _tag: "Complete", token: tokens[i]! }), () => {}))
      if (timed) {
        const job = figures.enqueue! + figures.claim! + figures.complete!
        process.stdout.write(
          `enqueue ${figures.enqueue!.toFixed(1)} µs  claim ${figures.claim!.toFixed(1)} µs  complete ${
            figures.complete!.toFixed(1)
          } µs  job ${job.toFixed(1)} µs  (commands per commit ${
            [perCommit.enqueue!, perCommit.claim!, perCommit.complete!].map((n) => n.toFixed(1)).join(" / ")
          })\n`
        )
      }
    })

  yield* run(false)
  const commitsBefore = (yield* Metric.value(Metrics.commits)).count
  counter.counting = values.count
  for (let round = 0; round < rounds; round++) yield* run(!values.count)
  counter.counting = false
  if (values.count) {
    const commits = (yield* Metric.value(Metrics.commits)).count - commitsBefore
    process.stdout.write(
      `per commit: ${(counter.operations / commits).toFixed(1)} Effect operations, ${
        (counter.fibers / commits).toFixed(2)
      } fibers started (${commits} commits)\n`
    )
  }
  yield* Scope.close(scope, { _tag: "Success", value: undefined } as never)
})

process.stdout.write(`${ops} commands per phase, ${callers} callers, memory store\n`)
// As the `osqueue` command runs the engine when no tracing endpoint is set: spans are no-ops.
const counted = <A, E>(effect: Effect.Effect<A, E>) =>
  values.count
    ? effect.pipe(
      Effect.supervised(counter),
      Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
    )
    : effect
Effect.runPromise(program.pipe(Effect.withTracerEnabled(false), counted)).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${error}\n`)
    process.exit(1)
  }
)
