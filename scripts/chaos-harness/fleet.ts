/**
 * The producer and worker fleets of a chaos run, and what they record. Producers enqueue with
 * idempotency keys and record every acknowledged id; workers are real `Worker` pools, and one
 * chain worker that runs a job at a time and completes each with `completeAndClaim`, whose
 * clients are wrapped to record every lease operation (claim, heartbeat, complete, fail,
 * release) with its token, when it was sent and when (and how) it was answered. Times are this
 * process's `Date.now()`, the only clock the checks compare.
 */
import { Cause, Context, Duration, Effect, Exit, Layer, Option, Random, Schedule, Scope } from "effect"
import type { ClientError } from "../../packages/client/src/index.js"
import { OsqueueClient } from "../../packages/client/src/index.js"
import { type ClaimedJob, parseLeaseToken } from "../../packages/types/src/index.js"
import type { JobContext } from "../../packages/worker/src/Handler.js"
import { leaseGone } from "../../packages/worker/src/internal/settlement.js"
import * as Worker from "../../packages/worker/src/Worker.js"

export interface EnqueueRecord {
  readonly key: string
  readonly id: string
  readonly sentAt: number
  readonly ackAt: number
}

export type LeaseOp = "claim" | "heartbeat" | "complete" | "fail" | "release"

export interface LeaseRecord {
  readonly op: LeaseOp
  readonly token: string
  readonly jobId: string
  readonly claim: number
  readonly epoch: number
  readonly workerId: string
  readonly sentAt: number
  readonly ackAt: number
  /** "ok" or the error's tag. */
  readonly outcome: string
}

/** The job type the run limits (`limitedConcurrency` running at once, set before the fleets start). */
export const limitedType = "chaos-limited"
export const limitedConcurrency = 2

/** The job types of the run's flows: a parent over `flowChildren` children (docs/flows.md). */
export const flowParentType = "chaos-flow"
export const flowChildType = "chaos-flow-part"
export const flowChildren = 2

/** One run of a flow's parent's handler: the children's ends it was claimed with (`ctx.childResults`). */
export interface ParentRun {
  readonly token: string
  readonly jobId: string
  readonly children: ReadonlyArray<string>
  /** The state of each child's end the parent held when claimed, by id (absent: none). */
  readonly ends: Readonly<Record<string, string>>
  readonly startAt: number
}

/** One run of a flow's child's handler, with its parent. */
export interface ChildRun extends HandlerRun {
  readonly parentId: string
}

/** One run of a limited job's handler, on this process's clock. */
export interface HandlerRun {
  readonly token: string
  readonly startAt: number
  readonly endAt: number
}

export class Journal {
  readonly enqueued: Array<EnqueueRecord> = []
  /** Keys a producer sent at least once (acknowledged or not). */
  readonly keysSent = new Set<string>()
  /** Jobs whose completion a worker sent (whether or not an answer came). */
  readonly completeSent = new Set<string>()
  /** Lease calls sent and not answered yet: at the end, calls that never returned. */
  readonly inFlight = new Map<number, { readonly op: LeaseOp; readonly token: string; readonly sentAt: number }>()
  /** Calls that died with a defect (a bug: the client must fail with a typed error): what and why. */
  readonly defects: Array<string> = []
  /** Calls that failed after the client's own retries, by operation and error tag. */
  readonly gaveUp = new Map<string, number>()
  readonly leases: Array<LeaseRecord> = []
  /** Every run of a limited job's handler that ended (or was interrupted) in this process. */
  readonly limitedRuns: Array<HandlerRun> = []
  /** Every run of a flow's parent's handler that started in this process. */
  readonly parentRuns: Array<ParentRun> = []
  /** Every run of a flow's child's handler that ended (or was interrupted) in this process. */
  readonly childRuns: Array<ChildRun> = []
  /** Jobs the chain worker got from its completions (`completeAndClaim`), not from a claim. */
  chainNext = 0

  count(map: Map<string, number>, key: string): void {
    map.set(key, (map.get(key) ?? 0) + 1)
  }
}

/** A token's job, claim and epoch (`NaN` for a malformed one, which the checks then report). */
export const parseToken = (token: string) => {
  const parts = parseLeaseToken(token)
  return { jobId: parts?.jobId ?? token, claim: parts?.claims ?? Number.NaN, epoch: parts?.epoch ?? Number.NaN }
}

const tagOf = (error: ClientError): string => error._tag
let nextCall = 0

/** The real client, with every lease operation recorded in `journal`. */
const recording = (client: OsqueueClient["Type"], journal: Journal, workerId: () => string): OsqueueClient["Type"] => {
  /** Each job of a claim's answer, recorded as a lease granted. */
  const granted = (claimed: ReadonlyArray<ClaimedJob>, workerId: string, sentAt: number) => {
    const ackAt = Date.now()
    for (const { token } of claimed) {
      journal.leases.push({ op: "claim", token, ...parseToken(token), workerId, sentAt, ackAt, outcome: "ok" })
    }
  }
  const record = <A>(op: LeaseOp, token: string, call: Effect.Effect<A, ClientError>) =>
    Effect.suspend(() => {
      const sentAt = Date.now()
      const id = nextCall++
      journal.inFlight.set(id, { op, token, sentAt })
      if (op === "complete") journal.completeSent.add(parseToken(token).jobId)
      return Effect.onExit(call, (exit) =>
        Effect.sync(() => {
          journal.inFlight.delete(id)
          const outcome = Exit.isSuccess(exit)
            ? "ok"
            : Option.match(Cause.failureOption(exit.cause), {
              onNone: () => (Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "defect"),
              onSome: tagOf
            })
          if (outcome === "interrupted") return
          if (outcome === "defect" && Exit.isFailure(exit)) {
            journal.defects.push(`${op} ${token}: ${Cause.pretty(exit.cause)}`)
          }
          if (outcome !== "ok") journal.count(journal.gaveUp, `${op}:${outcome}`)
          journal.leases.push({
            op,
            token,
            ...parseToken(token),
            workerId: workerId(),
            sentAt,
            ackAt: Date.now(),
            outcome
          })
        }))
    })
  return {
    ...client,
    claim: (request) =>
      Effect.suspend(() => {
        const sentAt = Date.now()
        return client.claim(request).pipe(
          Effect.tap((claimed) => Effect.sync(() => granted(claimed, request.workerId, sentAt))),
          Effect.tapError((error) => Effect.sync(() => journal.count(journal.gaveUp, `claim:${error._tag}`)))
        )
      }),
    // The completion is recorded as one, and the jobs it claimed as claims sent with it.
    completeAndClaim: (token, result, next) =>
      Effect.suspend(() => {
        const sentAt = Date.now()
        return record(
          "complete",
          token,
          Effect.tap(client.completeAndClaim(token, result, next), (claimed) =>
            Effect.sync(() => granted(claimed, next.workerId, sentAt)))
        )
      }),
    heartbeat: (token, options) => record("heartbeat", token, client.heartbeat(token, options)),
    complete: (token, result) => record("complete", token, client.complete(token, result)),
    // The worker pool completes through this one (answered with the job's id).
    completeId: (token, result) => record("complete", token, client.completeId(token, result)),
    fail: (token, error, options) => record("fail", token, client.fail(token, error, options)),
    release: (token) => record("release", token, client.release(token))
  }
}

export interface FleetOptions {
  readonly urls: ReadonlyArray<string>
  /** Finds the leader from the store's metadata; given to every other client. */
  readonly discover: Effect.Effect<string | null, unknown>
  readonly producers: number
  /** Enqueues per second, all producers together. */
  readonly rate: number
  readonly workers: number
  readonly concurrency: number
  readonly leaseMs: number
  readonly requestTimeoutMs: number
  readonly random: Random.Random
}

/** Client i: the URLs in a rotated order, and every other one also finds the leader in the store. */
const layerClient = (options: FleetOptions, i: number) => {
  const urls = options.urls.map((_, k) => options.urls[(k + i) % options.urls.length]!)
  return OsqueueClient.layerHttp({
    urls,
    requestTimeout: Duration.millis(options.requestTimeoutMs),
    ...(i % 2 === 1 ? { discover: options.discover } : {})
  })
}

/**
 * Starts the producers; each enqueues `chaos` jobs with keys `p<i>-<lane>-<n>` until the returned
 * fiber is interrupted. A key whose call gave up (after the client's own retries) is sent
 * again, so every key a producer moved past was acknowledged.
 */
export const startProducers = (options: FleetOptions, journal: Journal) =>
  Effect.gen(function*() {
    // Each producer sends on a few lanes at once, so that a slow call (a failover) does not stall it.
    const lanes = 4
    const gapMs = (1000 * options.producers * lanes) / options.rate
    const lane = (i: number, l: number) =>
      Effect.gen(function*() {
        const client = yield* OsqueueClient
        const started = Date.now() + (l * gapMs) / lanes
        for (let n = 0;; n++) {
          // Paced on the clock, not after each answer: a slow stretch (a failover) is caught up.
          const due = started + n * gapMs - Date.now()
          if (due > 0) yield* Effect.sleep(Duration.millis(due))
          const key = `p${i}-${l}-${n}`
          // Some jobs run long, past their lease TTL: only heartbeats keep them.
          const long = (yield* options.random.next) < 0.05
          const share = yield* options.random.next
          const workMs = long ? Math.round(options.leaseMs * (1 + share)) : Math.round(50 + share * 600)
          // One job in five is of the limited type; one in ten is a flow, its root under the key.
          const type = n % 5 === 4 ? limitedType : "chaos"
          const flow = n % 10 === 2
          const childKeys = Array.from({ length: flowChildren }, (_, c) => `${key}/${c}`)
          for (;;) {
            journal.keysSent.add(key)
            if (flow) { for (const childKey of childKeys) journal.keysSent.add(childKey) }
            const sentAt = Date.now()
            const exit = yield* Effect.exit(
              flow
                ? Effect.map(
                  client.enqueueFlow({
                    type: flowParentType,
                    payload: { workMs: 50 },
                    idempotencyKey: key,
                    maxAttempts: 100,
                    children: childKeys.map((childKey) => ({
                      type: flowChildType,
                      payload: { workMs },
                      idempotencyKey: childKey,
                      maxAttempts: 100
                    }))
                  }),
                  (jobs) => jobs[0]!
                )
                : client.enqueue(type, { workMs }, { idempotencyKey: key, maxAttempts: 100 })
            )
            if (Exit.isSuccess(exit)) {
              journal.enqueued.push({ key, id: exit.value.id, sentAt, ackAt: Date.now() })
              break
            }
            const failure = Cause.failureOption(exit.cause)
            if (Option.isSome(failure)) journal.count(journal.gaveUp, `enqueue:${failure.value._tag}`)
            else {
              // A defect, or an interruption this lane did not ask for (its own stop never gets
              // here): recorded, and the lane goes on, since one bad call must not silence it.
              journal.defects.push(`enqueue ${key}: ${Cause.pretty(exit.cause)}`)
              yield* Effect.sleep("100 millis")
            }
          }
        }
      })
    const producer = (i: number) =>
      Effect.all(Array.from({ length: lanes }, (_, l) => lane(i, l)), { concurrency: "unbounded", discard: true }).pipe(
        Effect.provide(layerClient(options, i))
      )
    return yield* Effect.forkDaemon(
      Effect.all(Array.from({ length: options.producers }, (_, i) => producer(i)), {
        concurrency: "unbounded",
        discard: true
      })
    )
  })

/** The schedule a chaos run sets: a `chaos` job every second, whose slots the checks follow. */
export const chaosSchedule = {
  id: "chaos-tick",
  everyMs: 1_000,
  job: { type: "chaos", payload: { workMs: 50 }, maxAttempts: 100 }
} as const

/**
 * Sets `chaosSchedule` (an upsert: sending it again after a lost answer is harmless), retrying
 * until a broker acknowledges it; answers when it was first sent (every slot it runs is later).
 */
export const setSchedule = (options: FleetOptions, journal: Journal) =>
  Effect.gen(function*() {
    const client = yield* OsqueueClient
    const sentAt = Date.now()
    for (;;) {
      const exit = yield* Effect.exit(client.upsertSchedule(chaosSchedule))
      if (Exit.isSuccess(exit)) return sentAt
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure)) journal.count(journal.gaveUp, `upsertSchedule:${failure.value._tag}`)
      else journal.defects.push(`upsertSchedule: ${Cause.pretty(exit.cause)}`)
      yield* Effect.sleep("200 millis")
    }
  }).pipe(Effect.provide(layerClient(options, 0)))

/** Sets the limit on claims of the limited type, before the fleets start. */
export const setLimit = (options: FleetOptions) =>
  Effect.flatMap(OsqueueClient, (client) => client.setLimit({ type: limitedType, concurrency: limitedConcurrency }))
    .pipe(
      Effect.provide(layerClient(options, 0)),
      Effect.retry({ schedule: Schedule.spaced("500 millis"), times: 20 })
    )

/** Starts the worker pools in `scope`; closing it shuts them down (drain, then release). */
export const startWorkers = (options: FleetOptions, journal: Journal, scope: Scope.Scope) =>
  Effect.forEach(Array.from({ length: options.workers }, (_, i) => i), (i) =>
    Effect.gen(function*() {
      const workerId = `chaos-worker-${i + 1}`
      // Built into the run's scope before the worker, so it closes after the worker has drained.
      const context = yield* Layer.buildWithScope(layerClient(options, i + options.producers), scope)
      const client = recording(Context.get(context, OsqueueClient), journal, () => workerId)
      return yield* Worker.make({
        handlers: {
          chaos: (payload: unknown) => Effect.sleep(Duration.millis(workMsOf(payload))),
          // A flow's parent records the children's ends it was claimed with; a child, its run.
          [flowParentType]: (payload: unknown, ctx: JobContext) =>
            Effect.suspend(() => {
              const ends = Object.fromEntries(Object.entries(ctx.childResults).map(([id, end]) => [id, end.state]))
              journal.parentRuns.push({
                token: ctx.token,
                jobId: ctx.job.id,
                children: ctx.job.children ?? [],
                ends,
                startAt: Date.now()
              })
              return Effect.sleep(Duration.millis(workMsOf(payload)))
            }),
          [flowChildType]: (payload: unknown, ctx: JobContext) =>
            Effect.suspend(() => {
              const startAt = Date.now()
              return Effect.sleep(Duration.millis(workMsOf(payload))).pipe(
                Effect.ensuring(Effect.sync(() =>
                  void journal.childRuns.push({
                    token: ctx.token,
                    parentId: ctx.job.parentId ?? "",
                    startAt,
                    endAt: Date.now()
                  })
                ))
              )
            }),
          // Each run recorded with its lease, for the check that the limit was never exceeded.
          [limitedType]: (payload: unknown, ctx: JobContext) =>
            Effect.suspend(() => {
              const startAt = Date.now()
              return Effect.sleep(Duration.millis(workMsOf(payload))).pipe(
                Effect.ensuring(
                  Effect.sync(() => void journal.limitedRuns.push({ token: ctx.token, startAt, endAt: Date.now() }))
                )
              )
            })
        },
        concurrency: options.concurrency,
        workerId,
        leaseMs: options.leaseMs,
        pollWaitMs: 1_000,
        shutdownTimeout: "10 seconds"
      }).pipe(Effect.provideService(OsqueueClient, client), Scope.extend(scope))
    }), { discard: true })

const workMsOf = (payload: unknown): number =>
  typeof payload === "object" && payload !== null && "workMs" in payload && typeof payload.workMs === "number"
    ? payload.workMs
    : 100

export const chainWorkerId = "chaos-chain-worker"

/**
 * Starts the chain worker in `scope`: a job at a time, as a plain client runs one. It long-polls
 * a `chaos` job, runs it (heartbeats every third of its lease keep a long one), and completes it
 * with `completeAndClaim`, which claims its next job in the same commit; it long-polls again only
 * when a completion brought none or failed. Closing the scope gives back the job it holds.
 */
export const startChainWorker = (options: FleetOptions, journal: Journal, scope: Scope.Scope) =>
  Effect.gen(function*() {
    const workerId = chainWorkerId
    const context = yield* Layer.buildWithScope(
      layerClient(options, options.producers + options.workers),
      scope
    )
    const client = recording(Context.get(context, OsqueueClient), journal, () => workerId)
    const next = { workerId, types: ["chaos"], leaseMs: options.leaseMs }
    let held: ClaimedJob | undefined
    // Ends (fails) only when the lease is gone: a heartbeat that got no answer is tried again.
    const heartbeats = (token: string) =>
      Effect.sleep(Duration.millis(options.leaseMs / 3)).pipe(
        Effect.zipRight(client.heartbeat(token).pipe(Effect.catchIf((error) => !leaseGone(error), () => Effect.void))),
        Effect.forever
      )
    const step = Effect.gen(function*() {
      if (held === undefined) {
        // A claim that failed (after the client's own retries) is followed by a pause, as the pool's is.
        held = (yield* client.claim({ ...next, waitMs: 1_000 }).pipe(
          Effect.orElse(() => Effect.as(Effect.sleep("200 millis"), []))
        ))[0]
        return
      }
      const { job, token } = held
      // A heartbeat refused (the lease is gone) ends the run: the job is no longer this worker's.
      const ran = yield* Effect.either(
        Effect.raceFirst(Effect.sleep(Duration.millis(workMsOf(job.payload))), heartbeats(token))
      )
      if (ran._tag === "Left") {
        held = undefined
        return
      }
      held = yield* client.completeAndClaim(token, undefined, next).pipe(
        Effect.map((claimed) => claimed[0]),
        Effect.orElseSucceed(() => undefined)
      )
      if (held !== undefined) journal.chainNext++
    })
    const giveBack = Effect.suspend(
      () => (held === undefined ? Effect.void : Effect.ignore(client.release(held.token)))
    )
    yield* Effect.forever(step).pipe(
      Effect.onInterrupt(() => giveBack),
      Effect.forkIn(scope)
    )
  })
