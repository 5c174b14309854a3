/**
 * Property tests: random sequences of batches (commands, ticks, savepoint and whole-batch
 * rollbacks, takeovers, encode → decode → fromFile round trips) are applied both to QueueState
 * and to the reference model in fixtures/model.ts; after every command the observable results
 * must match, and after every step the real state must match the model and keep its invariants.
 *
 * Reproduce a failure with the seed (and path) that fast-check prints:
 *   OSQ_FC_SEED=<seed> npx vitest run test/QueueState.property
 */
import { describe, expect, it } from "@effect/vitest"
import {
  type Backoff,
  type EnqueueOptions,
  type FlowJob,
  type Job,
  type JobState,
  jobStates,
  type LeaseToken,
  type OsqueueError,
  QueueFile
} from "@osqueue/types"
import { Either, FastCheck as fc, Schema } from "effect"
import { isDeepStrictEqual } from "node:util"
import type { Command } from "../src/Command.js"
import { BinaryHeap } from "../src/Heap.js"
import { defaultLimits, type Limits, QueueState, tokenOf } from "../src/QueueState.js"
import {
  type Handle,
  Model,
  type ModelEnqueue,
  type ModelFlowJob,
  type ModelJob,
  type ModelLimit,
  type Outcome,
  testSecrets
} from "./fixtures/model.js"

const seed = Number(process.env["OSQ_FC_SEED"] ?? 20_240_601)
const numRuns = Number(process.env["OSQ_FC_RUNS"] ?? 1_000)

const limits: Limits = {
  ...defaultLimits,
  maxPayloadBytes: 64,
  maxStateBytes: 1_000_000_000,
  keepFinished: 3,
  keepFinishedMs: 5_000,
  keepDead: 2,
  keepDeadMs: 8_000,
  defaultMaxAttempts: 2,
  defaultLeaseMs: 1_000,
  maxLeaseMs: 10_000,
  maxHistory: 4
}

const T0 = 1_700_000_000_000

/** `expect(actual).toEqual(expected)`, through vitest only when they differ (keeps 1,000s of runs fast). */
const same = (actual: unknown, expected: unknown, label: string) => {
  if (!isDeepStrictEqual(actual, expected)) expect(actual, label).toEqual(expected)
}

const holds = (ok: boolean, label: string) => {
  if (!ok) throw new Error(`invariant broken: ${label}`)
}

/** The object without its undefined properties (as `toEqual` would see it). */
const clean = <A extends object>(o: A): A => {
  const out: Record<string, unknown> = {}
  for (const key in o) if (o[key] !== undefined) out[key] = o[key]
  return out as A
}

/**
 * Calls the real state machine. Its errors are Schema.TaggedErrors, and capturing a stack trace
 * for each of the thousands of expected `LeaseLost`/`JobNotFound` answers dominated the runtime.
 */
/** The state machine's lease secrets in the current run (the model draws the same from its own). */
let secrets = testSecrets()

const apply = <C extends Command>(state: QueueState, command: C, now: number) => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return state.apply(command, now, secrets)
  } finally {
    Error.stackTraceLimit = limit
  }
}
const decodeFile = Schema.decodeUnknownSync(QueueFile)

// ------------------------------------------------------------------------------- generators

const TYPES = ["a", "b", "c"] as const

interface GenJob {
  readonly type: string
  readonly payload?: number
  readonly priority?: number
  readonly delayMs?: number
  readonly runAtOffset?: number
  readonly maxAttempts?: number
  readonly backoff?: Backoff
  readonly idempotencyKey?: string
}

type TokRef = { readonly kind: "handle"; readonly back: number } | { readonly kind: "unknown" } | {
  readonly kind: "garbage"
}

interface GenFlowJob extends GenJob {
  readonly children?: ReadonlyArray<GenFlowJob>
}

type Op =
  | { readonly _tag: "Enqueue"; readonly jobs: ReadonlyArray<GenJob> }
  | { readonly _tag: "EnqueueFlow"; readonly job: GenFlowJob; readonly onChildFailure?: "fail" | "ignore" }
  | {
    readonly _tag: "Claim"
    readonly workerId: string
    readonly types?: ReadonlyArray<string>
    readonly max: number
    readonly leaseMs?: number
  }
  | { readonly _tag: "Heartbeat"; readonly tok: TokRef; readonly progress?: number; readonly leaseMs?: number }
  | { readonly _tag: "Complete"; readonly tok: TokRef; readonly result?: number }
  | {
    readonly _tag: "CompleteAndClaim"
    readonly tok: TokRef
    readonly result?: number
    readonly workerId: string
    readonly types?: ReadonlyArray<string>
    readonly max: number
    readonly leaseMs?: number
  }
  | {
    readonly _tag: "Fail"
    readonly tok: TokRef
    readonly error: string
    readonly retryable?: boolean
    readonly retryDelayMs?: number
  }
  | { readonly _tag: "Release"; readonly tok: TokRef }
  | { readonly _tag: "Cancel"; readonly ref: number }
  | { readonly _tag: "Retry"; readonly ref: number }
  | { readonly _tag: "RetryDead"; readonly type?: string }
  | { readonly _tag: "Promote"; readonly ref: number }
  | { readonly _tag: "SetPriority"; readonly ref: number; readonly priority: number }
  | { readonly _tag: "Delete"; readonly ref: number }
  | { readonly _tag: "Purge"; readonly state: JobState; readonly type?: string }
  | { readonly _tag: "Pause"; readonly type?: string }
  | { readonly _tag: "Resume"; readonly type?: string }
  | { readonly _tag: "SetLimit"; readonly limit: ModelLimit }
  | { readonly _tag: "ClearLimit"; readonly type?: string }

type Step =
  | {
    readonly _tag: "Batch"
    readonly advance: number
    readonly ops: ReadonlyArray<Op>
    /** Like GroupCommit: roll a failed command back to its savepoint, or leave it (it must change nothing). */
    readonly onError: "rollback" | "keep"
    readonly end: "commit" | "rollback"
    /** Take a savepoint before ops[at] and roll back to it after ops[at + length]. */
    readonly savepoint: { readonly at: number; readonly length: number } | undefined
  }
  | { readonly _tag: "Takeover"; readonly advance: number; readonly end: "commit" | "rollback" }
  | { readonly _tag: "RoundTrip" }

/** A payload, progress or result: a string of `n` + 2 JSON bytes; 62 is at the 64-byte limit, 63 over it. */
const arbSize = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 20 }) },
  { weight: 1, arbitrary: fc.constant(62) },
  { weight: 1, arbitrary: fc.constant(63) }
)
const sized = (n: number) => "x".repeat(n)

const arbBackoff = fc.constantFrom<Backoff>(
  { _tag: "fixed", delayMs: 0 },
  { _tag: "fixed", delayMs: 300 },
  { _tag: "exponential", baseMs: 100, maxMs: 700, jitter: 0 },
  { _tag: "exponential", baseMs: 200, maxMs: 5_000, jitter: 0.5 }
)

const arbJob: fc.Arbitrary<GenJob> = fc.record({
  type: fc.constantFrom(...TYPES),
  payload: arbSize,
  priority: fc.constantFrom(-1, 0, 0, 1),
  delayMs: fc.constantFrom(0, 0, 100, 1_000),
  runAtOffset: fc.constantFrom(-50, 0, 0, 500),
  maxAttempts: fc.integer({ min: 1, max: 3 }),
  backoff: arbBackoff,
  idempotencyKey: fc.constantFrom("k1", "k2", "k3")
}, { requiredKeys: ["type"] })

/** A flow of up to three levels; keys now and then (held already, or named twice: refused). */
const arbFlowJob: fc.Arbitrary<GenFlowJob> = fc.letrec<{ node: GenFlowJob; level2: GenFlowJob }>((tie) => ({
  node: fc.record({ job: arbJob, children: fc.array(tie("level2"), { maxLength: 3 }) }).map(({ children, job }) =>
    children.length === 0 ? job : { ...job, children }
  ),
  level2: fc.record({ job: arbJob, children: fc.array(arbJob, { maxLength: 2 }) }).map(({ children, job }) =>
    children.length === 0 ? job : { ...job, children }
  )
})).node

const arbTok: fc.Arbitrary<TokRef> = fc.oneof(
  { weight: 12, arbitrary: fc.nat({ max: 8 }).map((back): TokRef => ({ kind: "handle", back })) },
  { weight: 1, arbitrary: fc.constant<TokRef>({ kind: "unknown" }) },
  { weight: 1, arbitrary: fc.constant<TokRef>({ kind: "garbage" }) }
)

const arbType = fc.constantFrom("a", "b")

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      _tag: fc.constant("Enqueue" as const),
      jobs: fc.array(arbJob, { minLength: 1, maxLength: 3 })
    })
  },
  {
    weight: 4,
    arbitrary: fc.record({
      _tag: fc.constant("EnqueueFlow" as const),
      job: arbFlowJob,
      onChildFailure: fc.constantFrom("fail" as const, "ignore" as const)
    }, {
      requiredKeys: ["_tag", "job"]
    })
  },
  {
    weight: 14,
    arbitrary: fc.record({
      _tag: fc.constant("Claim" as const),
      workerId: fc.constantFrom("w1", "w2"),
      types: fc.constantFrom<ReadonlyArray<string>>(["a"], ["a", "b"], ["b", "c"], ["c", "d"], ["a", "b", "c"], []),
      max: fc.constantFrom(0, 1, 1, 2, 2, 3),
      leaseMs: fc.constantFrom(200, 1_000, 3_000, 3_000, 3_000, 0)
    }, { requiredKeys: ["_tag", "workerId", "max"] })
  },
  {
    weight: 4,
    arbitrary: fc.record({
      _tag: fc.constant("Heartbeat" as const),
      tok: arbTok,
      progress: arbSize,
      leaseMs: fc.constantFrom(500, 3_000)
    }, { requiredKeys: ["_tag", "tok"] })
  },
  {
    weight: 6,
    arbitrary: fc.record({ _tag: fc.constant("Complete" as const), tok: arbTok, result: arbSize }, {
      requiredKeys: ["_tag", "tok"]
    })
  },
  {
    weight: 4,
    arbitrary: fc.record({
      _tag: fc.constant("CompleteAndClaim" as const),
      tok: arbTok,
      result: arbSize,
      workerId: fc.constantFrom("w1", "w2"),
      types: fc.constantFrom<ReadonlyArray<string>>(["a"], ["a", "b"], ["c", "d"], []),
      max: fc.constantFrom(0, 1, 1, 2),
      leaseMs: fc.constantFrom(1_000, 3_000, 3_000, 0)
    }, { requiredKeys: ["_tag", "tok", "workerId", "max"] })
  },
  {
    weight: 6,
    arbitrary: fc.record({
      _tag: fc.constant("Fail" as const),
      tok: arbTok,
      error: fc.constantFrom("e1", "e2", "e3"),
      retryable: fc.boolean(),
      retryDelayMs: fc.constantFrom(0, 150)
    }, { requiredKeys: ["_tag", "tok", "error"] })
  },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Release" as const), tok: arbTok }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Cancel" as const), ref: fc.nat({ max: 12 }) }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Retry" as const), ref: fc.nat({ max: 12 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({ _tag: fc.constant("RetryDead" as const), type: arbType }, { requiredKeys: ["_tag"] })
  },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Promote" as const), ref: fc.nat({ max: 12 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      _tag: fc.constant("SetPriority" as const),
      ref: fc.nat({ max: 12 }),
      priority: fc.constantFrom(-2, 0, 2)
    })
  },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Delete" as const), ref: fc.nat({ max: 12 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({ _tag: fc.constant("Purge" as const), state: fc.constantFrom(...jobStates), type: arbType }, {
      requiredKeys: ["_tag", "state"]
    })
  },
  {
    weight: 1,
    arbitrary: fc.record({ _tag: fc.constant("Pause" as const), type: arbType }, { requiredKeys: ["_tag"] })
  },
  {
    weight: 3,
    arbitrary: fc.record({ _tag: fc.constant("Resume" as const), type: arbType }, { requiredKeys: ["_tag"] })
  },
  {
    weight: 3,
    arbitrary: fc.record({
      _tag: fc.constant("SetLimit" as const),
      // Mostly valid; now and then without a limit, or out of bounds (refused).
      limit: fc.record({
        type: arbType,
        concurrency: fc.constantFrom(1, 1, 2, 3, 0),
        rate: fc.record({ max: fc.constantFrom(1, 2, 3), windowMs: fc.constantFrom(100, 500, 2_000, 30_000) })
      }, { requiredKeys: [] })
    })
  },
  {
    weight: 2,
    arbitrary: fc.record({ _tag: fc.constant("ClearLimit" as const), type: arbType }, { requiredKeys: ["_tag"] })
  }
)

const arbAdvance = fc.constantFrom(0, 0, 10, 100, 250, 600, 1_200, 3_000, 20_000)

const arbStep: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 16,
    arbitrary: fc.record({
      _tag: fc.constant("Batch" as const),
      advance: arbAdvance,
      ops: fc.array(arbOp, { minLength: 1, maxLength: 6 }),
      onError: fc.constantFrom("rollback" as const, "keep" as const),
      end: fc.oneof(
        { weight: 7, arbitrary: fc.constant("commit" as const) },
        { weight: 1, arbitrary: fc.constant("rollback" as const) }
      ),
      savepoint: fc.option(fc.record({ at: fc.nat({ max: 5 }), length: fc.nat({ max: 3 }) }), {
        nil: undefined,
        freq: 4
      })
    })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      _tag: fc.constant("Takeover" as const),
      advance: arbAdvance,
      end: fc.constantFrom("commit" as const, "rollback" as const)
    })
  },
  { weight: 2, arbitrary: fc.constant<Step>({ _tag: "RoundTrip" }) }
)

const arbSteps = fc.array(arbStep, { minLength: 1, maxLength: 40, size: "max" })

// ------------------------------------------------------------------------------- the world

interface World {
  state: QueueState
  model: Model
  /** Every lease token handed out by a claim that was not rolled back, oldest first. */
  handles: Array<Handle>
  /** Every job id an enqueue returned (not rolled back): each must be in the state or pruned. */
  known: Array<string>
  now: number
}

const toOptions = (job: GenJob, now: number): EnqueueOptions & ModelEnqueue => ({
  type: job.type,
  ...(job.payload === undefined ? {} : { payload: sized(job.payload) }),
  ...(job.priority === undefined ? {} : { priority: job.priority }),
  ...(job.delayMs === undefined ? {} : { delayMs: job.delayMs }),
  ...(job.runAtOffset === undefined ? {} : { runAt: now + job.runAtOffset }),
  ...(job.maxAttempts === undefined ? {} : { maxAttempts: job.maxAttempts }),
  ...(job.backoff === undefined ? {} : { backoff: job.backoff }),
  ...(job.idempotencyKey === undefined ? {} : { idempotencyKey: job.idempotencyKey })
})

const toFlowJob = (job: GenFlowJob, now: number): FlowJob & ModelFlowJob => ({
  ...toOptions(job, now),
  ...(job.children === undefined ? {} : { children: job.children.map((child) => toFlowJob(child, now)) })
})

/** Runs a command on the model and, when it succeeds, the flow rules after it (as `QueueState.apply` does). */
const onModel = <A>(w: World, run: () => Outcome<A>): Outcome<A> => {
  const before = w.model.snapshot()
  const outcome = run()
  if (outcome.ok) w.model.settleFlows(before, w.now)
  return outcome
}

const pickToken = (w: World, ref: TokRef): Handle | string => {
  if (ref.kind === "unknown") return "job-9999/1/0"
  if (ref.kind === "garbage") return "job-1/x/0"
  if (w.handles.length === 0) return "job-9999/1/0"
  return w.handles[w.handles.length - 1 - (ref.back % w.handles.length)]!
}

const tokenText = (token: Handle | string) => (typeof token === "string" ? token : token.token) as LeaseToken

const pickId = (w: World, ref: number) => (w.known[ref] ?? "job-9999") as Job["id"]

const jobView = (job: { readonly id: string; readonly state: string; readonly attempts: number }) => ({
  id: job.id,
  state: job.state,
  attempts: job.attempts
})

const outcomeOf = <A, B>(real: Either.Either<A, OsqueueError>, view: (a: A) => B): Outcome<B> =>
  Either.isLeft(real) ? { ok: false, tag: real.left._tag } : { ok: true, value: view(real.right) }

const mapOutcome = <A, B>(outcome: Outcome<A>, view: (a: A) => B): Outcome<B> =>
  outcome.ok ? { ok: true, value: view(outcome.value) } : outcome

/** Applies one command to both sides and compares what each answered. */
const runOp = (w: World, op: Op, label: string): Either.Either<unknown, OsqueueError> => {
  const { state, model, now } = w
  switch (op._tag) {
    case "Enqueue": {
      const options = op.jobs.map((job) => toOptions(job, now))
      const real = apply(state, { _tag: "Enqueue", jobs: options }, now)
      const want = onModel(w, () => model.enqueue(options, now))
      same(outcomeOf(real, (jobs) => jobs.map((job) => job.id)), want, label)
      if (Either.isRight(real)) w.known.push(...real.right.map((job) => job.id))
      return real
    }
    case "EnqueueFlow": {
      const job = toFlowJob(op.job, now)
      const real = apply(state, {
        _tag: "EnqueueFlow",
        job,
        ...(op.onChildFailure === undefined ? {} : { onChildFailure: op.onChildFailure })
      }, now)
      const want = onModel(w, () => model.enqueueFlow(job, op.onChildFailure, now))
      same(outcomeOf(real, (jobs) => jobs.map((job) => job.id)), want, label)
      if (Either.isRight(real)) w.known.push(...real.right.map((job) => job.id).filter((id) => !w.known.includes(id)))
      return real
    }
    case "Claim": {
      const real = apply(state, {
        _tag: "Claim",
        workerId: op.workerId,
        max: op.max,
        ...(op.types === undefined ? {} : { types: op.types }),
        ...(op.leaseMs === undefined ? {} : { leaseMs: op.leaseMs })
      }, now)
      const want = onModel(w, () => model.claim(op.workerId, op.types, op.max, op.leaseMs, now))
      const view = (claimed: ReadonlyArray<{ readonly jobId: string; readonly token: string }>) =>
        claimed.map(({ jobId, token }) => ({ jobId, token }))
      same(
        outcomeOf(real, (claimed) => view(claimed.map(({ job, token }) => ({ jobId: job.id, token })))),
        mapOutcome(want, view),
        label
      )
      if (Either.isRight(real)) {
        // FIFO within a priority, lower priority first, among the jobs of one claim
        const jobs = real.right.map((c) => c.job)
        for (let i = 1; i < jobs.length; i++) {
          const a = jobs[i - 1]!
          const b = jobs[i]!
          holds(a.priority < b.priority || (a.priority === b.priority && a.seq < b.seq), `${label}: claim order`)
        }
        // the token handed out is the one the job now carries
        for (const { job, token } of real.right) holds(token === tokenOf(job), `${label}: token of ${job.id}`)
        // a scope that got jobs is within its limits after the claim
        for (const limit of state.limitStatus(now)) {
          if (!jobs.some((job) => limit.type === undefined || job.type === limit.type)) continue
          holds(
            limit.concurrency === undefined || limit.running <= limit.concurrency,
            `${label}: concurrency of ${limit.type ?? "the queue"}`
          )
          holds(
            limit.rate === undefined || limit.startsInWindow! <= limit.rate.max,
            `${label}: rate of ${limit.type ?? "the queue"}`
          )
        }
      }
      if (want.ok) w.handles.push(...want.value)
      return real
    }
    case "Heartbeat": {
      const token = pickToken(w, op.tok)
      const progress = op.progress === undefined ? undefined : sized(op.progress)
      const real = apply(state, {
        _tag: "Heartbeat",
        token: tokenText(token),
        ...(progress === undefined ? {} : { progress }),
        ...(op.leaseMs === undefined ? {} : { leaseMs: op.leaseMs })
      }, now)
      same(
        outcomeOf(real, (r) => r.expiresAt),
        onModel(w, () => model.heartbeat(token, progress, op.leaseMs, now)),
        label
      )
      return real
    }
    case "Complete": {
      const token = pickToken(w, op.tok)
      const result = op.result === undefined ? undefined : sized(op.result)
      const real = apply(state, {
        _tag: "Complete",
        token: tokenText(token),
        ...(result === undefined ? {} : { result })
      }, now)
      same(outcomeOf(real, jobView), mapOutcome(onModel(w, () => model.complete(token, result, now)), jobView), label)
      return real
    }
    case "CompleteAndClaim": {
      const token = pickToken(w, op.tok)
      const result = op.result === undefined ? undefined : sized(op.result)
      const real = apply(state, {
        _tag: "CompleteAndClaim",
        token: tokenText(token),
        workerId: op.workerId,
        max: op.max,
        ...(result === undefined ? {} : { result }),
        ...(op.types === undefined ? {} : { types: op.types }),
        ...(op.leaseMs === undefined ? {} : { leaseMs: op.leaseMs })
      }, now)
      const want = onModel(
        w,
        () => model.completeAndClaim(token, result, op.workerId, op.types, op.max, op.leaseMs, now)
      )
      same(
        outcomeOf(real, (claimed) => claimed.map(({ job, token }) => ({ jobId: job.id, token }))),
        mapOutcome(want, (claimed) => claimed.map(({ jobId, token }) => ({ jobId, token }))),
        label
      )
      if (want.ok) w.handles.push(...want.value)
      return real
    }
    case "Fail": {
      const token = pickToken(w, op.tok)
      const real = apply(state, {
        _tag: "Fail",
        token: tokenText(token),
        error: op.error,
        ...(op.retryable === undefined ? {} : { retryable: op.retryable }),
        ...(op.retryDelayMs === undefined ? {} : { retryDelayMs: op.retryDelayMs })
      }, now)
      const want = onModel(w, () => model.fail(token, op.error, op.retryable, op.retryDelayMs, now))
      same(outcomeOf(real, jobView), mapOutcome(want, jobView), label)
      return real
    }
    case "Release": {
      const token = pickToken(w, op.tok)
      const real = apply(state, { _tag: "Release", token: tokenText(token) }, now)
      same(outcomeOf(real, jobView), mapOutcome(onModel(w, () => model.release(token, now)), jobView), label)
      return real
    }
    case "Cancel": {
      const id = pickId(w, op.ref)
      const real = apply(state, { _tag: "Cancel", id }, now)
      same(outcomeOf(real, jobView), mapOutcome(onModel(w, () => model.cancel(id, now)), jobView), label)
      return real
    }
    case "Retry": {
      const id = pickId(w, op.ref)
      const real = apply(state, { _tag: "Retry", id }, now)
      same(outcomeOf(real, jobView), mapOutcome(onModel(w, () => model.retry(id, now)), jobView), label)
      return real
    }
    case "RetryDead": {
      const real = apply(state, { _tag: "RetryDead", ...(op.type === undefined ? {} : { type: op.type }) }, now)
      same(outcomeOf(real, (n) => n), onModel(w, () => model.retryDead(op.type, now)), label)
      return real
    }
    case "Promote": {
      const id = pickId(w, op.ref)
      const real = apply(state, { _tag: "Promote", id }, now)
      same(outcomeOf(real, jobView), mapOutcome(onModel(w, () => model.promote(id, now)), jobView), label)
      return real
    }
    case "SetPriority": {
      const id = pickId(w, op.ref)
      const real = apply(state, { _tag: "SetPriority", id, priority: op.priority }, now)
      same(outcomeOf(real, jobView), mapOutcome(onModel(w, () => model.setPriority(id, op.priority)), jobView), label)
      return real
    }
    case "Delete": {
      const id = pickId(w, op.ref)
      const real = apply(state, { _tag: "Delete", id }, now)
      same(outcomeOf(real, jobView), mapOutcome(onModel(w, () => model.delete(id)), jobView), label)
      return real
    }
    case "Purge": {
      const real = apply(
        state,
        { _tag: "Purge", state: op.state, ...(op.type === undefined ? {} : { type: op.type }) },
        now
      )
      same(outcomeOf(real, (n) => n), onModel(w, () => model.purge(op.state, op.type)), label)
      return real
    }
    case "Pause":
    case "Resume": {
      const real = apply(state, { _tag: op._tag, ...(op.type === undefined ? {} : { type: op.type }) }, now)
      const want = onModel(w, () => (op._tag === "Pause" ? model.pause(op.type) : model.resume(op.type)))
      same(outcomeOf(real, (p) => ({ all: p.all, types: [...p.types] })), want, label)
      return real
    }
    case "SetLimit": {
      const real = apply(state, { _tag: "SetLimit", limit: op.limit }, now)
      same(outcomeOf(real, (limits) => [...limits]), onModel(w, () => w.model.setLimit(op.limit)), label)
      return real
    }
    case "ClearLimit": {
      const real = apply(state, { _tag: "ClearLimit", ...(op.type === undefined ? {} : { type: op.type }) }, now)
      same(outcomeOf(real, (limits) => [...limits]), onModel(w, () => w.model.clearLimit(op.type)), label)
      return real
    }
  }
}

// ------------------------------------------------------------------------------- checks

/** Every job, through `list` pages (a recount independent of the state's own indexes). */
const listAll = (state: QueueState): Array<Job> => {
  const jobs: Array<Job> = []
  let after: number | undefined
  for (;;) {
    const page = state.list({ limit: 7, ...(after === undefined ? {} : { after }) })
    jobs.push(...page.jobs)
    if (page.next === undefined) return jobs
    after = page.next
  }
}

const realView = (job: Job) =>
  clean({
    id: job.id,
    type: job.type,
    payload: job.payload,
    state: job.state,
    priority: job.priority,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    claims: job.claims,
    backoff: job.backoff,
    seq: job.seq,
    createdAt: job.createdAt,
    runAt: job.runAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    idempotencyKey: job.idempotencyKey,
    parentId: job.parentId,
    children: job.children,
    onChildFailure: job.onChildFailure,
    lease: job.lease === undefined
      ? undefined
      : {
        workerId: job.lease.workerId,
        epoch: job.lease.epoch,
        expiresAt: job.lease.expiresAt,
        ttlMs: job.lease.ttlMs
      },
    lastError: job.lastError,
    result: job.result,
    childResults: job.childResults,
    progress: job.progress
  })

const modelView = (job: ModelJob) =>
  clean({
    ...job,
    lease: job.lease === undefined
      ? undefined
      : { workerId: job.lease.workerId, epoch: job.lease.epoch, expiresAt: job.lease.expiresAt, ttlMs: job.lease.ttlMs }
  })

/**
 * queue.json with its jobs in seq order and the scopes' start times by type: equal states give
 * equal canonical forms (a rolled-back ClearLimit puts a scope's starts back last).
 */
const canonical = (text: string) => {
  const file = JSON.parse(text) as { jobs: Array<{ seq: number }>; starts?: Array<{ type?: string }> }
  file.jobs.sort((a, b) => a.seq - b.seq)
  file.starts?.sort((a, b) => (a.type ?? "").localeCompare(b.type ?? ""))
  return file
}

const check = (w: World, label: string) => {
  const { state, model } = w
  const all = listAll(state)
  const ids = all.map((job) => job.id)

  // no job duplicated, none lost (only retention may remove one)
  holds(new Set(ids).size === ids.length, `${label}: a job is listed twice`)
  holds(state.size === all.length, `${label}: size ${state.size} but ${all.length} listed`)
  const present = new Set<string>(ids)
  const pruned = new Set(model.pruned)
  for (const id of w.known) {
    if (!present.has(id)) holds(pruned.has(id), `${label}: ${id} lost`)
  }

  // the same jobs as the model, field by field
  same(all.map(realView), [...model.jobs].sort((a, b) => a.seq - b.seq).map(modelView), label)

  // stats equal a recount from `list`, and the model's totals
  const stats = state.stats()
  const counts = Object.fromEntries(jobStates.map((s) => [s, all.filter((j) => j.state === s).length]))
  same({ ...stats.counts }, counts, `${label}: counts`)
  const queuedByType: Record<string, number> = {}
  for (const job of all) if (job.state === "queued") queuedByType[job.type] = (queuedByType[job.type] ?? 0) + 1
  same({ ...stats.queuedByType }, queuedByType, `${label}: queuedByType`)
  const byType: Record<string, Record<string, number>> = {}
  for (const job of all) {
    byType[job.type] ??= Object.fromEntries(jobStates.map((s) => [s, 0]))
    byType[job.type]![job.state]!++
  }
  same(Object.fromEntries(state.countsByType()), byType, `${label}: countsByType`)
  same(
    { enqueued: stats.enqueuedTotal, completed: stats.completedTotal, dead: stats.deadTotal, epoch: stats.epoch },
    { ...model.totals, epoch: model.epoch },
    `${label}: totals`
  )
  same({ all: stats.paused.all, types: [...stats.paused.types] }, model.paused, `${label}: paused`)

  // each limit on claims, with what runs in its scope and the starts in its window
  same(
    state.limitStatus(w.now),
    model.claimLimits.map((limit) => ({
      ...limit,
      running: model.running(limit.type),
      ...(limit.rate === undefined ? {} : { startsInWindow: model.startsWithin(limit.type, w.now) })
    })),
    `${label}: limits`
  )

  // a long-poll may trust these: something is claimable iff the model can claim it, and the next
  // wake-up is never later than the next promotion, lease expiry or slot a rate limit frees
  const claimable = !model.paused.all && model.room(undefined, w.now) > 0 &&
    model.jobs.some((job) =>
      job.state === "queued" && !model.paused.types.includes(job.type) && model.room(job.type, w.now) > 0
    )
  holds(state.hasClaimable(undefined, w.now) === claimable, `${label}: hasClaimable`)
  const due = model.jobs.flatMap((job) =>
    job.state === "delayed" || job.state === "failed-waiting-retry"
      ? [job.runAt]
      : job.state === "running"
      ? [job.lease!.expiresAt]
      : []
  )
  due.push(...model.rateWakeups(w.now))
  if (due.length > 0) {
    const wakeup = state.nextWakeup(w.now)
    holds(
      wakeup !== undefined && wakeup <= Math.min(...due),
      `${label}: nextWakeup ${wakeup} after ${Math.min(...due)}`
    )
  }

  // the workers holding leases: how many jobs each, and the latest start of one of its leases
  const workers = new Map<string, { id: string; jobs: number; lastSeenAt: number }>()
  for (const job of model.jobs) {
    if (job.state !== "running") continue
    const lease = job.lease!
    const seen = workers.get(lease.workerId)
    workers.set(lease.workerId, {
      id: lease.workerId,
      jobs: (seen?.jobs ?? 0) + 1,
      lastSeenAt: Math.max(seen?.lastSeenAt ?? 0, lease.expiresAt - lease.ttlMs)
    })
  }
  const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id)
  same([...state.workers()].sort(byId), [...workers.values()].sort(byId), `${label}: workers`)

  for (const job of all) {
    holds(job.attempts >= 0 && job.attempts <= job.maxAttempts, `${label}: attempts of ${job.id}`)
    holds(job.history.length <= limits.maxHistory, `${label}: history of ${job.id}`)
    if (job.state === "dead") holds(job.lastError !== undefined, `${label}: dead ${job.id} keeps its error`)
    holds((job.lease !== undefined) === (job.state === "running"), `${label}: lease iff running (${job.id})`)
    if (job.state === "running") {
      const last = job.history[job.history.length - 1]
      holds(last?.attempt === job.attempts && last.outcome === "running", `${label}: history of running ${job.id}`)
    }
  }

  // at most one valid lease per job: of all the tokens handed out, only the latest works
  const byJob = new Map<string, Array<Handle>>()
  for (const handle of w.handles) {
    if (state.get(handle.jobId)?.state !== "running") continue
    const list = byJob.get(handle.jobId) ?? []
    list.push(handle)
    byJob.set(handle.jobId, list)
  }
  state.begin()
  for (const [jobId, handles] of byJob) {
    const job = state.get(jobId)!
    const valid = handles.filter((handle) => {
      const savepoint = state.savepoint()
      const result = apply(state, { _tag: "Heartbeat", token: handle.token as LeaseToken }, w.now)
      state.rollback(savepoint)
      return Either.isRight(result)
    })
    for (const handle of valid) holds(handle.token === tokenOf(job), `${label}: an old token of ${jobId} works`)
    if (model.strictTokens) {
      same(
        valid.map((h) => h.claimNo),
        valid.length === 0 ? [] : [model.find(jobId)!.lease!.claimNo],
        `${label}: valid leases of ${jobId}`
      )
    } else {
      holds(new Set(valid.map((h) => h.token)).size <= 1, `${label}: valid leases of ${jobId}`)
    }
  }
  state.rollback()
}

// ------------------------------------------------------------------------------- running

const runBatch = (w: World, step: Extract<Step, { _tag: "Batch" }>, label: string) => {
  const { state } = w
  const before = step.end === "rollback" ? state.toJson(state.seq, state.commitId) : undefined
  const beforeStats = step.end === "rollback" ? state.stats() : undefined
  const modelBefore = step.end === "rollback" ? w.model.clone() : undefined
  const handlesBefore = w.handles.length
  const knownBefore = w.known.length

  state.begin()
  state.tick(w.now)
  w.model.tick(w.now)

  const sp = step.savepoint
  let inner: { at: ReturnType<QueueState["savepoint"]>; model: Model; handles: number; known: number } | undefined
  step.ops.forEach((op, i) => {
    if (sp !== undefined && i === sp.at) {
      inner = { at: state.savepoint(), model: w.model.clone(), handles: w.handles.length, known: w.known.length }
    }
    const savepoint = state.savepoint()
    const result = runOp(w, op, `${label} op ${i} ${op._tag}`)
    if (Either.isLeft(result) && step.onError === "rollback") state.rollback(savepoint)
    if (inner !== undefined && sp !== undefined && i === Math.min(sp.at + sp.length, step.ops.length - 1)) {
      state.rollback(inner.at)
      w.model = inner.model
      w.handles.length = inner.handles
      w.known.length = inner.known
      inner = undefined
    }
  })

  if (step.end === "commit") commit(w, label)
  else {
    state.rollback()
    w.model = modelBefore!
    w.handles.length = handlesBefore
    w.known.length = knownBefore
    same(canonical(state.toJson(state.seq, state.commitId)), canonical(before!), `${label}: rollback restores`)
    same(state.stats(), beforeStats, `${label}: rollback restores stats`)
  }
}

const commit = (w: World, label: string) => {
  const { state } = w
  const seq = state.seq + 1
  const commitId = `leader:${seq}`
  const text = state.toJson(seq, commitId)
  state.committed(seq, commitId, Buffer.byteLength(text))
  // per-job JSON caching never serves a stale job
  same([...decodeFile(JSON.parse(text)).jobs].sort((a, b) => a.seq - b.seq), listAll(state), `${label}: encode`)
}

const runStep = (w: World, step: Step, label: string) => {
  switch (step._tag) {
    case "Batch":
      w.now += step.advance
      return runBatch(w, step, label)
    case "Takeover": {
      w.now += step.advance
      const modelBefore = w.model.clone()
      w.state.begin()
      w.state.takeover({ id: `leader-${w.now}`, url: "http://b:1", since: w.now }, w.now)
      w.model.takeover(w.now)
      if (step.end === "commit") return commit(w, label)
      w.state.rollback()
      w.model = modelBefore
      return
    }
    case "RoundTrip": {
      const text = w.state.toJson(w.state.seq, w.state.commitId)
      const next = QueueState.fromFile(decodeFile(JSON.parse(text)), Buffer.byteLength(text), limits)
      const again = next.toJson(next.seq, next.commitId)
      same(canonical(again), canonical(text), `${label}: round trip`)
      // after one decode the encoding is a fixed point, byte for byte
      const third = QueueState.fromFile(decodeFile(JSON.parse(again)), Buffer.byteLength(again), limits)
      holds(third.toJson(next.seq, next.commitId) === again, `${label}: encoding is a fixed point after one decode`)
      w.state = next
      return
    }
  }
}

const run = (steps: ReadonlyArray<Step>, strictTokens: boolean) => {
  secrets = testSecrets()
  const w: World = {
    state: QueueState.empty(limits),
    model: new Model(limits, strictTokens, testSecrets()),
    handles: [],
    known: [],
    now: T0
  }
  steps.forEach((step, i) => {
    const label = `step ${i} ${step._tag}`
    runStep(w, step, label)
    check(w, label)
  })
}

describe("BinaryHeap", () => {
  it("pops in order under any mix of pushes and pops", () => {
    type Item = { readonly key: number; readonly seq: number }
    const less = (a: Item, b: Item) => a.key < b.key || (a.key === b.key && a.seq < b.seq)
    const arbOps = fc.array(fc.option(fc.integer({ min: -5, max: 5 }), { nil: undefined, freq: 3 }), { maxLength: 200 })
    fc.assert(
      fc.property(arbOps, (ops) => {
        const heap = new BinaryHeap<Item>(less)
        const model: Array<Item> = []
        ops.forEach((key, seq) => {
          if (key === undefined) {
            model.sort((a, b) => (less(a, b) ? -1 : less(b, a) ? 1 : 0))
            same(heap.pop(), model.shift(), `pop ${seq}`)
          } else {
            heap.push({ key, seq })
            model.push({ key, seq })
          }
          holds(heap.size === model.length, "size")
        })
      }),
      { seed, numRuns }
    )
  })
})

describe("QueueState against the reference model", () => {
  console.log(`QueueState properties: seed ${seed}, ${numRuns} runs (OSQ_FC_SEED / OSQ_FC_RUNS to change)`)

  it("answers every command as the model does and keeps its invariants", () => {
    fc.assert(fc.property(arbSteps, (steps) => run(steps, false)), { seed, numRuns })
  }, 120_000)

  // The strict model: only the token of the latest claim works, across releases and redrives.
  it("only the latest claim's token is valid (strict tokens)", () => {
    fc.assert(fc.property(arbSteps, (steps) => run(steps, true)), { seed, numRuns, endOnFailure: true })
  }, 120_000)
})
