/**
 * Property test of the log under crashes (docs/ha.md, "The log and the fence"): random programs
 * of commands against two or three engines sharing one in-memory store, with TestClock driving
 * every time rule. Each broker reaches the store through its own faulty wrapper: it dies at a
 * random store call (the call in flight may land first, then every later call hangs or fails,
 * and its scope is never closed: no handoff), one of its calls may stall for longer than the
 * grace and land late, and its writes may fail or land without an answer (OutcomeUnknown).
 * Checkpoint timing is random per broker, and the clock jumps far enough for takeovers and for
 * collection after the grace. Below every broker, one recorder sees each log entry created.
 *
 * Properties, at the end of every program:
 *  1. What the store holds (`Replica.recover()`) is the reference model (fixtures/model.ts) run
 *     over the commands whose effects the log holds, in log order; every acknowledged command is
 *     among them, and its answer is the model's (the same job ids, the same claims). Limits on
 *     claims are set now and then (each scope once, with a rate's window longer than a program,
 *     so every start counts): the claims keep to them across takeovers, and the limits and the
 *     starts each scope remembers are the model's.
 *  2. No entry of epoch e is created at or after the position of an entry of a later epoch,
 *     except at a position the checkpoint already covered when it was created (a stalled append
 *     landing after its entry was collected: the fence must turn it down, and property 1 checks
 *     it was not acknowledged).
 *  3. Nothing is ever StateCorrupt: not the final state, not an answer, not a broker's log.
 *  4. Schedules (docs/architecture.md, "Schedules"): each acknowledged schedule is in the final
 *     state, and the runs in the log have strictly increasing slots per schedule, each a slot of
 *     its rule: no slot ever runs twice, through takeovers, lost answers and re-applied batches.
 *
 * One fixed program comes first: the stalled append that lands where an entry was collected,
 * which random programs reach only now and then.
 *
 * Each program costs about a second of real time (TestClock wakes every sleeping fiber in turn),
 * so the runs are few by default; OSQ_FC_RUNS=<n> runs more. A failure is reported as found, not
 * shrunk (OSQ_FC_SHRINK=1 shrinks it); replay it with the seed and path fast-check prints:
 *   OSQ_FC_SEED=<seed> OSQ_FC_PATH=<path> pnpm vitest run packages/core/test/LogCrash.property
 */
import { describe, expect, it } from "@effect/vitest"
import {
  Cas,
  type ClaimResult,
  type Command,
  Election,
  Engine,
  EngineConfig,
  GroupCommit,
  Log,
  LogEntry,
  Replica
} from "@osqueue/core"
import {
  bodyBytes,
  MemoryStore,
  ObjectStore,
  type ObjectStoreShape,
  OutcomeUnknown,
  type ReadError,
  StoreUnavailable
} from "@osqueue/storage"
import type { ClaimLimit, Job, OsqueueError } from "@osqueue/types"
import {
  Cause,
  Context,
  Duration,
  Effect,
  Either,
  Exit,
  FastCheck as fc,
  type Fiber,
  Layer,
  Logger,
  Option,
  Random,
  Scope,
  TestClock,
  TestContext
} from "effect"
import { isDeepStrictEqual } from "node:util"
import { Model, type ModelLimits, testSecrets } from "./fixtures/model.js"

const seed = Number(process.env["OSQ_FC_SEED"] ?? 20_261_205)
const numRuns = Number(process.env["OSQ_FC_RUNS"] ?? 12)
const path = process.env["OSQ_FC_PATH"]

// A multiple of 3 and 2: the renewal (TTL/3) and the polls (TTL/2) sleep whole milliseconds, so
// TestClock never hands the state machine a fractional time (a real clock never does).
const ttlMs = 1_200
/** Long enough that no lease expires within a program: a job is claimed at most once. */
const leaseMs = 30 * 60_000

const modelLimits: ModelLimits = {
  maxPayloadBytes: 256 * 1024,
  keepFinished: 1_000_000,
  keepFinishedMs: 24 * 3_600_000,
  keepDead: 1_000_000,
  keepDeadMs: 24 * 3_600_000,
  defaultMaxAttempts: 3,
  defaultLeaseMs: leaseMs,
  maxLeaseMs: 60 * 60_000
}

// ------------------------------------------------------------------ the plan

/** One life of a broker: how it fails, and when it writes checkpoints. */
interface Life {
  /**
   * Which calls `crashAt` and `stallAt` count: every call, or writes only (a follower reads a
   * window of entries per poll, a leader mostly writes: counting writes is how a leader dies
   * or stalls mid-append).
   */
  readonly counts: "calls" | "writes"
  /** The counted call at which it dies (null: it does not, by itself). */
  readonly crashAt: number | null
  /** The write in flight at the crash lands before the broker goes silent. */
  readonly crashLands: boolean
  /** After the crash its calls hang (a dead process) or fail (a cut network). */
  readonly crashMode: "hang" | "fail"
  /** One call stalls this long before it reaches the store (and then lands). */
  readonly stallAt: number | null
  readonly stallMs: number
  /**
   * How long each write takes: with time to spare, the leader sends the next batch behind one
   * in flight (docs/architecture.md, "Appends in flight"), and a failure voids both.
   */
  readonly writeMs: number
  /** Share of writes that land but answer OutcomeUnknown. */
  readonly ambiguous: number
  /** Share of calls refused with StoreUnavailable before reaching the store. */
  readonly failures: number
  readonly checkpointEntries: number
  readonly checkpointIntervalMs: number
  readonly seed: number
}

/** A broker by its place, or whichever leads at that moment. */
type Slot = number | "leader"

type Step =
  | { readonly kind: "enqueue"; readonly to: number; readonly n: number; readonly type: "a" | "b" }
  | { readonly kind: "claim"; readonly to: number; readonly max: number }
  | { readonly kind: "complete"; readonly to: number; readonly pick: number }
  | {
    readonly kind: "schedule"
    readonly to: number
    readonly id: "s1" | "s2"
    readonly everyMs: number
    readonly missed: "catch-up" | "skip"
  }
  | {
    readonly kind: "limit"
    readonly to: number
    readonly scope: "a" | "b" | "queue"
    readonly concurrency: number
    readonly rated: boolean
  }
  | { readonly kind: "advance"; readonly ms: number }
  | { readonly kind: "kill"; readonly slot: Slot; readonly mode: "hang" | "fail" }
  | { readonly kind: "stop"; readonly slot: Slot }
  | { readonly kind: "restart"; readonly slot: number }

interface Plan {
  readonly lives: ReadonlyArray<ReadonlyArray<Life>>
  readonly steps: ReadonlyArray<Step>
}

const life: fc.Arbitrary<Life> = fc.record({
  counts: fc.constantFrom("calls" as const, "writes" as const),
  // One life in three dies by itself (the program's kill steps end others).
  crashAt: fc.oneof({ weight: 2, arbitrary: fc.constant(null) }, {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 120 })
  }),
  crashLands: fc.boolean(),
  crashMode: fc.constantFrom("hang" as const, "fail" as const),
  stallAt: fc.option(fc.integer({ min: 1, max: 30 }), { freq: 2 }),
  // Past the grace after a takeover's checkpoint (2 TTLs), and past the next checkpoint: the
  // stalled write can land where an entry was collected.
  stallMs: fc.constantFrom(ttlMs / 2, 2 * ttlMs, 5 * ttlMs, 7 * ttlMs),
  writeMs: fc.constantFrom(0, 30, 100),
  ambiguous: fc.constantFrom(0, 0.05, 0.2),
  // Low: a follower's catch-up reads 16 positions at once and fails if any read does.
  failures: fc.constantFrom(0, 0, 0.02),
  checkpointEntries: fc.integer({ min: 1, max: 6 }),
  checkpointIntervalMs: fc.constantFrom(500, 3_600_000),
  seed: fc.integer({ min: 1, max: 1 << 30 })
})

const to = fc.nat({ max: 2 })
const slot: fc.Arbitrary<Slot> = fc.oneof(to, fc.constant("leader" as const))
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("enqueue" as const),
      to,
      n: fc.integer({ min: 1, max: 2 }),
      type: fc.constantFrom("a" as const, "b" as const)
    })
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("claim" as const), to, max: fc.integer({ min: 1, max: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("complete" as const), to, pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("schedule" as const),
      to,
      id: fc.constantFrom("s1" as const, "s2" as const),
      everyMs: fc.constantFrom(1_000, 3_000),
      missed: fc.constantFrom("catch-up" as const, "skip" as const)
    })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("limit" as const),
      to,
      scope: fc.constantFrom("a" as const, "b" as const, "queue" as const),
      concurrency: fc.constantFrom(1, 2, 1_000),
      rated: fc.boolean()
    })
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.constantFrom(0, 0, 5, 10, 50, 300, ttlMs, 2.5 * ttlMs)
    })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("kill" as const),
      slot,
      mode: fc.constantFrom("hang" as const, "fail" as const)
    })
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("stop" as const), slot }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("restart" as const), slot: to }) }
)

const plan: fc.Arbitrary<Plan> = fc.record({
  lives: fc.integer({ min: 2, max: 3 }).chain((slots) =>
    fc.array(fc.array(life, { minLength: 1, maxLength: 2 }), { minLength: slots, maxLength: slots })
  ),
  steps: fc.array(step, { minLength: 10, maxLength: 40 })
})

// ------------------------------------------------------------------ the store

/** A log entry as it was created, with what the checkpoint covered just before. */
interface Created {
  readonly entry: LogEntry.LogEntry
  readonly coveredBefore: number
}

/** Below every broker: records each log entry that lands (creations only; a refused put creates nothing). */
const recording = (memory: ObjectStoreShape, created: Array<Created>): ObjectStoreShape => ({
  ...memory,
  put: (key, body, condition, options) => {
    const position = LogEntry.positionOf(key)
    if (position === undefined) return memory.put(key, body, condition, options)
    return memory.head("queue.json").pipe(
      Effect.orDie,
      Effect.flatMap((head) =>
        memory.put(key, body, condition, options).pipe(
          Effect.tap(() => {
            const coveredBefore = Option.match(head, {
              onNone: () => 0,
              onSome: (h) => Number(h.metadata["osqueue-position"] ?? 0)
            })
            created.push({ entry: Either.getOrThrow(LogEntry.decode(key, bodyBytes(body))), coveredBefore })
          })
        )
      )
    )
  }
})

/** One broker's view of the store: it dies, stalls and loses answers as its `Life` says. */
const faulty = (store: ObjectStoreShape, plan: Life) => {
  const random = Random.make(plan.seed)
  let calls = 0
  let dead: "hang" | "fail" | undefined
  const silence = (operation: string, key: string) =>
    dead === "hang" ? Effect.never : Effect.fail(new StoreUnavailable({ operation, key, cause: "the broker is gone" }))

  /** A call that reaches the store: refused, answered, or landed with its answer lost. */
  const reach = <A, E>(operation: string, key: string, effect: Effect.Effect<A, E>, write: boolean) =>
    Effect.flatMap(random.next, (r): Effect.Effect<A, E | StoreUnavailable | OutcomeUnknown> => {
      if (r < plan.failures) return Effect.fail(new StoreUnavailable({ operation, key, cause: "injected" }))
      const landing = write && plan.writeMs > 0
        ? Effect.zipRight(Effect.sleep(Duration.millis(plan.writeMs)), effect)
        : effect
      if (write && r < plan.failures + plan.ambiguous) {
        return Effect.zipRight(Effect.either(landing), Effect.fail(new OutcomeUnknown({ key, cause: "injected" })))
      }
      return landing
    })

  const call = <A, E>(operation: string, key: string, effect: Effect.Effect<A, E>, write: boolean) =>
    Effect.suspend((): Effect.Effect<A, E | StoreUnavailable | OutcomeUnknown> => {
      if (dead !== undefined) return silence(operation, key)
      if (!write && plan.counts === "writes") return reach(operation, key, effect, write)
      const n = ++calls
      if (n === plan.crashAt) {
        dead = plan.crashMode
        return Effect.zipRight(write && plan.crashLands ? Effect.ignore(effect) : Effect.void, silence(operation, key))
      }
      if (n === plan.stallAt) {
        return Effect.zipRight(Effect.sleep(Duration.millis(plan.stallMs)), reach(operation, key, effect, write))
      }
      return reach(operation, key, effect, write)
    })

  /** A read never answers OutcomeUnknown. */
  const read = <A>(operation: string, key: string, effect: Effect.Effect<A, ReadError>) =>
    call(operation, key, effect, false).pipe(Effect.catchIf((e) => e instanceof OutcomeUnknown, Effect.die))

  const shape: ObjectStoreShape = {
    ...store,
    get: (key) => read("get", key, store.get(key)),
    head: (key) => read("head", key, store.head(key)),
    list: (prefix) => read("list", prefix, store.list(prefix)),
    put: (key, body, condition, options) => call("put", key, store.put(key, body, condition, options), true),
    delete: (key, ifMatch) => call("delete", key, store.delete(key, ifMatch), true)
  }
  return { store: shape, kill: (mode: "hang" | "fail") => void (dead ??= mode) }
}

// ------------------------------------------------------------------ the brokers

interface Broker {
  readonly name: string
  readonly scope: Scope.CloseableScope
  readonly kill: (mode: "hang" | "fail") => void
  /** Done once the engine is built (it may never be, if its store dies first). */
  readonly started: Fiber.RuntimeFiber<Context.Context<GroupCommit.GroupCommit | Election.Election>, unknown>
  gone: boolean
}

const startBroker = (store: ObjectStoreShape, name: string, plan: Life) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const { kill, store: own } = faulty(store, plan)
    const layer = Engine.layer.pipe(
      Layer.provide(Layer.succeed(ObjectStore, own)),
      Layer.provide(EngineConfig.layer({
        advertisedUrl: `http://${name}:8080`,
        electionTtl: Duration.millis(ttlMs),
        // Fewer wakeups per TTL than the default fifth: each costs the TestClock a few real milliseconds.
        pollInterval: Duration.millis(ttlMs / 2),
        checkpoint: {
          entries: plan.checkpointEntries,
          minBytes: 1 << 30,
          interval: Duration.millis(plan.checkpointIntervalMs)
        },
        limits: {
          ...EngineConfig.defaults.limits,
          keepFinished: modelLimits.keepFinished,
          keepFinishedMs: modelLimits.keepFinishedMs,
          keepDead: modelLimits.keepDead,
          keepDeadMs: modelLimits.keepDeadMs
        }
      }))
    )
    // Daemons, as everything a broker runs: a dead broker's fibers hang forever, and the program must not wait for them.
    const started = yield* Effect.forkDaemon(Layer.buildWithScope(layer, scope))
    const broker: Broker = { name, scope, kill, started, gone: false }
    return broker
  })

const engineOf = (broker: Broker) =>
  Effect.map(
    broker.started.poll,
    (exit) => exit.pipe(Option.flatMap((e) => (Exit.isSuccess(e) ? Option.some(e.value) : Option.none())))
  )

// ------------------------------------------------------------------ one program

type Issued =
  | { readonly kind: "enqueue"; readonly n: number; readonly type: string }
  | { readonly kind: "claim"; readonly max: number }
  | { readonly kind: "complete"; readonly jobId: string; readonly token: string }
  | { readonly kind: "schedule"; readonly id: string; readonly everyMs: number }
  | { readonly kind: "limit"; readonly limit: ClaimLimit }

/** A rate's window: longer than any program, so that every start counts (the model's clock stands still). */
const rateWindowMs = 24 * 3_600_000

interface Answer {
  readonly issued: Issued
  exit?: Exit.Exit<unknown, OsqueueError>
}

const isCorrupt = (value: unknown): boolean =>
  typeof value === "object" && value !== null && "_tag" in value && value._tag === "StateCorrupt"

/** A few turns of the event loop: the commit loop gathers a batch over real turns before it sends. */
const turns = Effect.repeatN(Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve))), 5)

const advance = (ms: number) =>
  TestClock.adjust(Duration.millis(ms)).pipe(Effect.zipRight(Effect.yieldNow()), Effect.zipRight(turns))

const run = (plan: Plan) =>
  Effect.gen(function*() {
    const created: Array<Created> = []
    const store = recording(yield* MemoryStore.make, created)
    const corrupt: Array<string> = []
    const brokers: Array<Broker> = []
    const lifeIndex = plan.lives.map(() => 0)
    const slots: Array<Broker> = []
    const start = (slot: number) =>
      Effect.gen(function*() {
        const lives = plan.lives[slot]!
        const broker = yield* startBroker(store, `b${slot}-${lifeIndex[slot]}`, lives[lifeIndex[slot]! % lives.length]!)
        lifeIndex[slot]!++
        brokers.push(broker)
        slots[slot] = broker
      })
    for (let slot = 0; slot < plan.lives.length; slot++) yield* start(slot)
    yield* advance(0)

    const answers: Array<Answer> = []
    const clients: Array<Fiber.RuntimeFiber<void>> = []
    /** The broker a command goes to: whichever leads, else the one the step names. */
    const target = (to: number) =>
      Effect.gen(function*() {
        let fallback: GroupCommit.GroupCommitShape | undefined
        for (let i = 0; i < slots.length; i++) {
          const broker = slots[(to + i) % slots.length]!
          if (broker.gone) continue
          const engine = yield* engineOf(broker)
          if (Option.isNone(engine)) continue
          const commit = Context.get(engine.value, GroupCommit.GroupCommit)
          if ((yield* Context.get(engine.value, Election.Election).role)._tag === "Leader") return commit
          fallback ??= commit
        }
        return fallback
      })
    const pick = (slot: Slot) =>
      Effect.gen(function*() {
        if (slot !== "leader") return slots[slot % slots.length]
        for (const broker of slots) {
          const engine = yield* engineOf(broker)
          if (Option.isSome(engine) && (yield* Context.get(engine.value, Election.Election).role)._tag === "Leader") {
            return broker
          }
        }
        return undefined
      })
    const submit = (to: number, issued: Issued, command: (k: number) => Command) =>
      Effect.gen(function*() {
        const answer: Answer = { issued }
        const k = answers.push(answer) - 1
        const commit = yield* target(to)
        if (commit === undefined) return
        const fiber = yield* commit.submit(command(k)).pipe(
          Effect.exit,
          Effect.map((exit) => void (answer.exit = exit as Exit.Exit<unknown, OsqueueError>)),
          Effect.forkDaemon
        )
        clients.push(fiber)
        // The command reaches the broker before the next step: a write that takes time is still in
        // flight when the next command arrives, and the leader sends that one behind it.
        yield* turns
      })
    /** Leases handed out so far: a completion names one of them. */
    const acknowledgedClaims = () =>
      answers.flatMap((a) =>
        a.issued.kind === "claim" && a.exit !== undefined && Exit.isSuccess(a.exit)
          ? (a.exit.value as ReadonlyArray<ClaimResult>)
          : []
      )

    /** Scopes whose limit was set: each once, so that an entry's header tells which command landed. */
    const limited = new Set<string>()
    for (const s of plan.steps) {
      switch (s.kind) {
        case "enqueue":
          yield* submit(s.to, { kind: "enqueue", n: s.n, type: s.type }, (k) => ({
            _tag: "Enqueue",
            jobs: Array.from({ length: s.n }, () => ({ type: s.type, payload: { k } }))
          }))
          break
        case "claim":
          yield* submit(
            s.to,
            { kind: "claim", max: s.max },
            (k) => ({ _tag: "Claim", workerId: `w${k}`, max: s.max, leaseMs })
          )
          break
        case "complete": {
          const held = acknowledgedClaims()
          if (held.length === 0) break
          const { job, token } = held[s.pick % held.length]!
          yield* submit(s.to, { kind: "complete", jobId: job.id, token }, () => ({ _tag: "Complete", token }))
          break
        }
        case "schedule":
          yield* submit(s.to, { kind: "schedule", id: s.id, everyMs: s.everyMs }, () => ({
            _tag: "UpsertSchedule",
            schedule: {
              id: s.id,
              everyMs: s.everyMs,
              missed: s.missed,
              job: { type: "a", payload: { schedule: s.id } }
            }
          }))
          break
        case "limit": {
          if (limited.has(s.scope)) break
          limited.add(s.scope)
          const limit: ClaimLimit = {
            ...(s.scope === "queue" ? {} : { type: s.scope }),
            concurrency: s.concurrency,
            ...(s.rated ? { rate: { max: 2, windowMs: rateWindowMs } } : {})
          }
          yield* submit(s.to, { kind: "limit", limit }, () => ({ _tag: "SetLimit", limit }))
          break
        }
        case "advance":
          yield* advance(s.ms)
          break
        case "kill":
          ;(yield* pick(s.slot))?.kill(s.mode)
          break
        case "stop": {
          // A clean stop: the handoff runs as the scope closes (and may itself hang on a dead store).
          const broker = yield* pick(s.slot)
          if (broker !== undefined && !broker.gone) yield* Effect.forkDaemon(Scope.close(broker.scope, Exit.void))
          if (broker !== undefined) broker.gone = true
          break
        }
        case "restart": {
          // The old process is gone without a handoff; a new one starts in its place.
          const slot = s.slot % slots.length
          slots[slot]!.kill("hang")
          slots[slot]!.gone = true
          yield* start(slot)
          break
        }
      }
    }

    // A broker that never fails joins, so that someone leads at the end; the clock runs until
    // every answer that can come has come (a dead broker's clients never hear back).
    const final = yield* startBroker(store, "final", {
      counts: "calls",
      crashAt: null,
      crashLands: false,
      crashMode: "hang",
      stallAt: null,
      stallMs: 0,
      writeMs: 0,
      ambiguous: 0,
      failures: 0,
      checkpointEntries: 3,
      checkpointIntervalMs: 3_600_000,
      seed: 1
    })
    brokers.push(final)
    for (let i = 0; i < 6; i++) yield* advance(ttlMs)
    yield* Effect.forEach(clients, (fiber) => fiber.interruptAsFork(fiber.id()), { discard: true })

    const recovered = yield* Replica.recover(EngineConfig.defaults.limits).pipe(
      Effect.provide(Layer.merge(Cas.layer(), Log.layer).pipe(Layer.provide(Layer.succeed(ObjectStore, store)))),
      Effect.either
    )
    for (const broker of brokers) {
      const exit = yield* broker.started.poll
      if (
        Option.isSome(exit) && Exit.isFailure(exit.value) &&
        Cause.failures(exit.value.cause).pipe((f) => [...f].some(isCorrupt))
      ) {
        corrupt.push(`${broker.name} could not start: ${Cause.pretty(exit.value.cause)}`)
      }
    }
    return { created, answers, recovered, corrupt }
  })

// ------------------------------------------------------------------ the checks

const check = (outcome: Effect.Effect.Success<ReturnType<typeof run>>, logged: ReadonlyArray<string>) => {
  const { answers, created, recovered } = outcome
  const corrupt = [...outcome.corrupt, ...logged]
  for (const [k, a] of answers.entries()) {
    if (a.exit !== undefined && Exit.isFailure(a.exit) && [...Cause.failures(a.exit.cause)].some(isCorrupt)) {
      corrupt.push(`command ${k} was answered ${Cause.pretty(a.exit.cause)}`)
    }
  }
  // (3) Nothing is StateCorrupt; the store holds a queue.
  if (Either.isLeft(recovered)) throw new Error(`recover failed: ${recovered.left._tag}: ${recovered.left.message}`)
  expect(corrupt).toEqual([])
  const state = Option.getOrThrow(recovered.right)
  const file = Either.getOrThrow(Cas.decode(state.encode(state.seq, state.commitId)))

  // The log as read: the first entry created at each position (a later one at the same
  // position can only be a re-creation after collection, below the checkpoint), passing over
  // the positions an entry skips (docs/architecture.md, "Appends in flight").
  const first = new Map<number, LogEntry.LogEntry>()
  for (const { entry } of created) if (!first.has(entry.position)) first.set(entry.position, entry)
  const chain: Array<LogEntry.LogEntry> = []
  const skipped = new Set<number>()
  for (let position = 1; position <= file.seq;) {
    const entry = first.get(position)
    if (entry === undefined) throw new Error(`entry ${position} is in the state but was never created`)
    chain.push(entry)
    for (let p = position + 1; p <= LogEntry.lastPosition(entry); p++) skipped.add(p)
    position = LogEntry.lastPosition(entry) + 1
  }

  // (2) The fence: an older epoch's entry never lands at or after a newer epoch's position,
  // unless the checkpoint covered that position already, or an entry skips it (then it is never read).
  for (const late of created) {
    if (late.entry.position <= late.coveredBefore || skipped.has(late.entry.position)) continue
    const newer = created.find((c) => c.entry.epoch > late.entry.epoch && c.entry.position <= late.entry.position)
    if (newer !== undefined) {
      throw new Error(
        `entry ${late.entry.position} of epoch ${late.entry.epoch} (${late.entry.commitId}) was created after ` +
          `entry ${newer.entry.position} of epoch ${newer.entry.epoch} (${newer.entry.commitId})`
      )
    }
  }

  const model = new Model(modelLimits, false, testSecrets())
  const seen = new Map<string, Job>()
  /** What the model answered for each command, at its last landing (a batch is applied once more after Reapply). */
  const modelled = new Map<number, unknown>()
  const completer = new Map<string, number>()
  /** Each schedule's latest run slot in the log so far. */
  const lastSlot = new Map<string, number>()
  answers.forEach((a, k) => {
    if (a.issued.kind === "complete" && !completer.has(a.issued.jobId)) completer.set(a.issued.jobId, k)
  })
  const limitsSeen = new Set<string>()
  for (const entry of chain) {
    const position = entry.position
    if (entry.kind === "epoch") model.takeover(0)
    // The commands whose effects this entry holds, in the order they were submitted.
    const landed = new Map<number, { readonly kind: Issued["kind"]; readonly jobs: Array<Job> }>()
    const add = (k: number, kind: Issued["kind"], job?: Job) => {
      const at = landed.get(k) ?? { kind, jobs: [] }
      if (job !== undefined) at.jobs.push(job)
      landed.set(k, at)
    }
    // A limit first in the header: its command landed here (each scope's limit is set once).
    for (const limit of entry.header?.limits ?? []) {
      if (limitsSeen.has(limit.type ?? "")) continue
      limitsSeen.add(limit.type ?? "")
      const k = answers.findIndex((a) => a.issued.kind === "limit" && a.issued.limit.type === limit.type)
      expect(k, `the limit of ${limit.type ?? "the queue"} at entry ${position} was issued`).toBeGreaterThanOrEqual(0)
      add(k, "limit")
    }
    // The jobs it changed as they stand after it: put whole, or patched onto what came before.
    const changed: Array<Job> = [...LogEntry.putJobs(entry)]
    for (const patch of entry.patched ?? []) {
      const job: Record<string, unknown> = { ...seen.get(patch.id), ...patch.set }
      for (const key of patch.unset ?? []) delete job[key]
      changed.push(job as unknown as Job)
    }
    // A schedule's runs come first in their batch (the tick runs before its commands), in enqueue order.
    const runs = changed.filter((job) => !seen.has(job.id) && job.idempotencyKey?.startsWith("schedule:"))
    for (const run of runs.sort((a, b) => a.seq - b.seq)) {
      const [, id = "", slot = ""] = run.idempotencyKey!.split(":")
      const last = lastSlot.get(id)
      if (last !== undefined && Number(slot) <= last) {
        throw new Error(`entry ${position} runs slot ${slot} of schedule ${id}, not after its last run's slot ${last}`)
      }
      lastSlot.set(id, Number(slot))
      expect(Number(slot) % 1_000, `slot ${slot} of schedule ${id}`).toBe(0)
      const outcome = model.enqueue([{ type: run.type, payload: run.payload, idempotencyKey: run.idempotencyKey! }], 0)
      expect(outcome, `run ${run.idempotencyKey} at entry ${position}`).toEqual({ ok: true, value: [run.id] })
    }
    for (const job of changed) {
      const before = seen.get(job.id)
      if (before === undefined && !runs.includes(job)) add((job.payload as { k: number }).k, "enqueue", job)
      if (job.state === "running" && before?.state !== "running") {
        add(Number(job.lease!.workerId.slice(1)), "claim", job)
      }
      if (job.state === "completed" && before?.state !== "completed") add(completer.get(job.id)!, "complete", job)
      seen.set(job.id, job)
    }
    expect(entry.removed, `entry ${position} removed jobs`).toEqual([])
    for (const [k, { jobs, kind }] of [...landed].sort(([a], [b]) => a - b)) {
      const issued = answers[k]!.issued
      expect(issued.kind, `command ${k} at entry ${position}`).toBe(kind)
      if (issued.kind === "enqueue") {
        const outcome = model.enqueue(
          Array.from({ length: issued.n }, () => ({ type: issued.type, payload: { k } })),
          0
        )
        modelled.set(k, outcome.ok ? outcome.value : outcome.tag)
      } else if (issued.kind === "claim") {
        const outcome = model.claim(`w${k}`, undefined, issued.max, leaseMs, 0)
        const ids = outcome.ok ? outcome.value.map((h) => h.jobId) : outcome.tag
        // The entry lists the jobs it changed in its own order, not the claim's.
        const claimed = jobs.map((job) => job.id).sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))
        expect(ids, `claim ${k} at entry ${position}`).toEqual(claimed)
        modelled.set(k, ids)
      } else if (issued.kind === "limit") {
        const outcome = model.setLimit(issued.limit)
        expect(outcome.ok, `limit ${k} at entry ${position}`).toBe(true)
        modelled.set(k, issued.limit)
      } else if (issued.kind === "complete") {
        const job = model.find(issued.jobId)
        const outcome = job === undefined ? undefined : model.complete(model.tokenOf(job), undefined, 0)
        expect(outcome?.ok, `complete ${k} of ${issued.jobId} at entry ${position}`).toBe(true)
        modelled.set(k, issued.jobId)
      }
    }
  }

  // Every acknowledged command is in the log, answered as the model answers it.
  for (const [k, a] of answers.entries()) {
    if (a.exit === undefined || Exit.isFailure(a.exit)) continue
    const value = a.exit.value
    if (a.issued.kind === "enqueue") {
      expect(modelled.get(k), `acknowledged enqueue ${k}`).toEqual((value as ReadonlyArray<Job>).map((job) => job.id))
    } else if (a.issued.kind === "claim") {
      const ids = (value as ReadonlyArray<ClaimResult>).map((c) => c.job.id)
      if (ids.length > 0) expect(modelled.get(k), `acknowledged claim ${k}`).toEqual(ids)
    } else if (a.issued.kind === "schedule") {
      const schedule = file.schedules?.find((x) => x.id === (a.issued as { id: string }).id)
      expect(schedule, `acknowledged schedule ${k}`).toBeDefined()
      expect(schedule?.lastRun?.slot).toBe(lastSlot.get(schedule!.id))
    } else if (a.issued.kind === "limit") {
      expect(modelled.get(k), `acknowledged limit ${k}`).toEqual(a.issued.limit)
    } else {
      const job = file.jobs.find((j) => j.id === (a.issued as { jobId: string }).jobId)
      expect(job?.state, `acknowledged completion ${k}`).toBe("completed")
    }
  }

  // The state replayed from checkpoint + log is the model's.
  const view = (
    jobs: ReadonlyArray<{ id: string; type: string; payload: unknown; state: string; attempts: number; claims: number }>
  ) =>
    jobs.map(({ attempts, claims, id, payload, state, type }) => ({ id, type, payload, state, attempts, claims }))
      .sort((a, b) => a.id.localeCompare(b.id))
  // Each rate-limited scope remembers as many starts as the model (its times are the model's 0).
  const starts = (entries: ReadonlyArray<readonly [string, number]>) =>
    [...entries].sort(([a], [b]) => a.localeCompare(b))
  const actual = {
    jobs: view(file.jobs),
    totals: file.totals,
    nextJobSeq: file.nextJobSeq,
    epoch: file.epoch,
    limits: file.limits ?? [],
    starts: starts((file.starts ?? []).map(({ at, type }) => [type ?? "", at.length] as const))
  }
  const expected = {
    jobs: view(model.jobs),
    totals: model.totals,
    nextJobSeq: model.nextSeq,
    epoch: model.epoch,
    limits: model.claimLimits,
    starts: starts([...model.starts].map(([scope, at]) => [scope, at.length] as const))
  }
  if (!isDeepStrictEqual(actual, expected)) expect(actual).toEqual(expected)
}

/** A logger that keeps quiet, but remembers anything StateCorrupt a broker logged. */
const watching = (logged: Array<string>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ cause, message }) => {
      const parts = Array.isArray(message) ? message : [message]
      if (parts.some(isCorrupt) || [...Cause.failures(cause)].some(isCorrupt)) {
        logged.push(`logged: ${parts.map(String).join(" ")} ${Cause.isEmpty(cause) ? "" : Cause.pretty(cause)}`)
      }
    })
  )

const calm: Life = {
  counts: "writes",
  crashAt: null,
  crashLands: false,
  crashMode: "hang",
  stallAt: null,
  stallMs: 0,
  writeMs: 0,
  ambiguous: 0,
  failures: 0,
  checkpointEntries: 1,
  checkpointIntervalMs: 3_600_000,
  seed: 1
}

const runPlan = async (p: Plan) => {
  const logged: Array<string> = []
  const outcome = await Effect.runPromise(
    run(p).pipe(Effect.provide(watching(logged)), Effect.provide(TestContext.TestContext))
  )
  check(outcome, logged)
  return outcome
}

describe("the log under crashes", () => {
  it(
    "a leader's append that stalls until its position was taken over, checkpointed and collected is not acknowledged",
    async () => {
      // b0 leads (writes: queue.json, its epoch entry, the takeover's checkpoint); its 4th write,
      // the enqueue's entry, stalls for 7 TTLs. b1 takes over at that position, checkpoints every
      // entry and collects it after the grace; then b0's write lands, re-creating the entry.
      const outcome = await runPlan({
        lives: [[{ ...calm, stallAt: 4, stallMs: 7 * ttlMs }], [calm]],
        steps: [
          { kind: "advance", ms: 0 },
          { kind: "enqueue", to: 0, n: 1, type: "a" },
          ...Array.from({ length: 9 }, () => ({ kind: "advance" as const, ms: ttlMs }))
        ]
      })
      const stale = outcome.created.filter((c) => c.entry.position <= c.coveredBefore)
      expect(stale.map((c) => c.entry.epoch)).toEqual([1])
      expect(outcome.answers[0]!.exit !== undefined && Exit.isSuccess(outcome.answers[0]!.exit)).toBe(false)
    },
    60_000
  )

  it(
    "acknowledged commands survive any crash, a deposed leader never appends after a takeover, nothing is corrupt",
    async () => {
      await fc.assert(
        fc.asyncProperty(plan, async (p) => void (await runPlan(p))),
        // Shrinking replays whole programs (a second each): only when asked for.
        {
          seed,
          numRuns,
          endOnFailure: process.env["OSQ_FC_SHRINK"] === undefined,
          ...(path === undefined ? {} : { path })
        }
      )
    },
    180_000
  )
})
