/**
 * The engine without a broker: election, group commit and the queue's state machine over an
 * in-memory store. It takes the lead, enqueues two jobs, claims one and completes it, then
 * prints the counts. Run from the repo root: `pnpm exec tsx packages/core/examples/engine.ts`.
 */
import { Election, Engine, EngineConfig, GroupCommit } from "@osqueue/core"
import { MemoryStore } from "@osqueue/storage"
import { Console, Effect, Layer, Schedule } from "effect"

const EngineLive = Engine.layer.pipe(
  Layer.provide(MemoryStore.layer),
  Layer.provide(EngineConfig.layer({ advertisedUrl: "http://localhost:8080" }))
)

const program = Effect.gen(function*() {
  const election = yield* Election.Election
  const commit = yield* GroupCommit.GroupCommit

  // A fresh store has no leader: this engine takes over at its first look.
  yield* election.role.pipe(
    Effect.filterOrFail((role) => role._tag === "Leader"),
    Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("5 seconds")))
  )

  // Each submit is durable (its log entry written) when it answers.
  const [email] = yield* commit.submit({
    _tag: "Enqueue",
    jobs: [{ type: "email", payload: { to: "a@example.com" } }, { type: "report", payload: { day: 1 }, priority: 5 }]
  })
  const [claimed] = yield* commit.submit({ _tag: "Claim", workerId: "example", types: ["email"], max: 1 })
  if (claimed === undefined || claimed.job.id !== email!.id) {
    return yield* Effect.dieMessage("expected to claim the email job")
  }
  const done = yield* commit.submit({ _tag: "Complete", token: claimed.token, result: { sent: true } })
  yield* Console.log(`${done.id} ${done.state}`)

  const stats = yield* commit.stats
  yield* Console.log(`queued ${stats.counts.queued}, completed ${stats.counts.completed}`)
})

Effect.runPromise(program.pipe(Effect.provide(EngineLive)))
