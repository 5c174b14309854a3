/**
 * The broker's CPU per enqueue with tracing off and on (docs/tracing.md): a broker's engine and
 * `Operations` in this process over the memory store, taking enqueues as the REST fast path hands
 * them over (`enqueueEach`, 100 at a time). Modes, interleaved round by round so that a loaded
 * machine weighs on each alike:
 *   - `builtin`: Effect's own tracer (a program that sets none: a library user's default);
 *   - `off`: the tracer disabled (the `osqueue` command without OTEL_EXPORTER_OTLP_ENDPOINT);
 *   - `on`: a tracer that exports (every span handed to an exporter that drops it).
 * Prints the median process CPU (user + system) per enqueued job of each mode.
 *
 *   npx tsx --conditions=source scripts/bench-tracing.ts [--jobs 20000] [--rounds 7]
 */
import { Broker, Operations } from "@osqueue/broker"
import { Election } from "@osqueue/core"
import { MemoryStore, ObjectStore } from "@osqueue/storage"
import { Duration, Effect, Layer, Logger, LogLevel, Schedule, Tracer } from "effect"
import { parseArgs } from "node:util"

const { values } = parseArgs({
  options: { jobs: { type: "string", default: "20000" }, rounds: { type: "string", default: "7" } }
})
const jobs = Number(values.jobs)
const rounds = Number(values.rounds)
const batch = 100

/** Spans that are made, timed and ended as an exporter's are, then dropped. */
const discarding = Tracer.make({
  span: (name, parent, context, links, startTime, kind) => {
    const attributes = new Map<string, unknown>()
    const span: Tracer.Span = {
      _tag: "Span",
      name,
      spanId: Math.random().toString(16).slice(2, 10).padEnd(16, "1"),
      traceId: parent._tag === "Some" ? parent.value.traceId : Math.random().toString(16).slice(2, 10).padEnd(32, "1"),
      parent,
      context,
      status: { _tag: "Started", startTime },
      attributes,
      links,
      sampled: true,
      kind,
      end: () => {},
      attribute: (key, value) => void attributes.set(key, value),
      event: () => {},
      addLinks: () => {}
    }
    return span
  },
  context: (f) => f()
})

const modes = {
  builtin: Layer.empty,
  off: Layer.setTracerEnabled(false),
  on: Layer.setTracer(discarding)
} as const

/** CPU microseconds per job of `jobs` enqueues, after a warm-up, with the mode's tracer. */
const measure = (mode: keyof typeof modes) =>
  Effect.gen(function*() {
    const handlers = yield* Operations.Operations
    const election = yield* Election.Election
    // A fresh store: this broker takes over at once, once its election has run.
    yield* Effect.repeat(election.role, {
      until: (role) => role._tag === "Leader",
      schedule: Schedule.spaced("10 millis")
    })
    const options = Array.from({ length: batch }, (_, i) => ({ type: "bench", payload: { i } }))
    const run = (n: number) => Effect.repeatN(handlers.enqueueEach(options), n / batch - 1)
    yield* run(batch * 20)
    const before = process.cpuUsage()
    yield* run(jobs)
    const used = process.cpuUsage(before)
    return (used.user + used.system) / jobs
  }).pipe(
    Effect.provide(
      Operations.layer.pipe(
        Layer.provideMerge(Broker.engine({ advertisedUrl: "http://127.0.0.1:1", electionTtl: Duration.seconds(10) })),
        Layer.provide(Layer.effect(ObjectStore, MemoryStore.make))
      )
    ),
    Effect.provide(modes[mode]),
    Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))
  )

const results: Record<string, Array<number>> = { builtin: [], off: [], on: [] }
for (let round = 0; round < rounds; round++) {
  for (const mode of Object.keys(modes) as Array<keyof typeof modes>) {
    results[mode]!.push(await Effect.runPromise(Effect.scoped(measure(mode))))
  }
}
for (const [mode, figures] of Object.entries(results)) {
  const sorted = figures.sort((a, b) => a - b)
  console.log(
    `${mode.padEnd(8)} median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} µs CPU/job  (runs: ${
      sorted.map((f) => f.toFixed(1)).join(", ")
    })`
  )
}
