/**
 * Example-based tests of the queue's rules (docs/architecture.md, "The state machine") on the pure state machine, with
 * explicit `now` values. Round trips and rollbacks are compared as JSON values: the order of
 * keys and jobs in queue.json's text carries no meaning, and is not kept byte for byte.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  type ClaimLimit,
  defaultBackoff,
  type EnqueueOptions,
  type Job,
  type JobId,
  type JobState,
  type LeaseToken,
  maxLimitedTypes,
  type OsqueueError,
  parseLeaseToken,
  QueueFile,
  storedJob
} from "@osqueue/types"
import { Either, FastCheck, ParseResult, Schema } from "effect"
import type { ClaimResult, Command } from "../src/Command.js"
import { keyHash } from "../src/internal/jobIndex.js"
import { backoffDelay, defaultLimits, type Limits, maxPageBytes, QueueState, tokenOf } from "../src/QueueState.js"
import { testSecrets } from "./fixtures/model.js"
import { left, right } from "./fixtures/outcomes.js"

/** Lease secrets of the state under test (a test that compares two states gives each the same). */
let secrets = testSecrets()

const T0 = 1_700_000_000_000

const limitsWith = (overrides: Partial<Limits> = {}): Limits => ({ ...defaultLimits, ...overrides })
const fresh = (overrides: Partial<Limits> = {}) => QueueState.empty(limitsWith(overrides))

const tagOf = <A>(result: Either.Either<A, OsqueueError>) => left(result)._tag

const enqueue = (s: QueueState, now: number, ...jobs: Array<EnqueueOptions>) =>
  right(s.apply({ _tag: "Enqueue", jobs }, now, secrets))

const enqueueIds = (s: QueueState, now: number, ...jobs: Array<EnqueueOptions>) =>
  enqueue(s, now, ...jobs).map((j) => j.id)

interface ClaimOptions {
  readonly max?: number
  readonly types?: ReadonlyArray<string>
  readonly leaseMs?: number
  readonly workerId?: string
}

const claim = (s: QueueState, now: number, options: ClaimOptions = {}): ReadonlyArray<ClaimResult> =>
  right(s.apply(
    {
      _tag: "Claim",
      workerId: options.workerId ?? "w1",
      max: options.max ?? 1,
      ...(options.types === undefined ? {} : { types: options.types }),
      ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs })
    },
    now,
    secrets
  ))

const claimIds = (s: QueueState, now: number, options: ClaimOptions = {}) => claim(s, now, options).map((c) => c.job.id)

const claimOne = (s: QueueState, now: number, options: ClaimOptions = {}): ClaimResult => {
  const claimed = claim(s, now, { ...options, max: 1 })
  expect(claimed).toHaveLength(1)
  return claimed[0]!
}

const fail = (
  s: QueueState,
  now: number,
  token: LeaseToken,
  error: string,
  more: Partial<Command & { _tag: "Fail" }> = {}
) => s.apply({ _tag: "Fail", token, error, ...more }, now, secrets)

const complete = (s: QueueState, now: number, token: LeaseToken, result?: unknown) =>
  s.apply({ _tag: "Complete", token, ...(result === undefined ? {} : { result }) }, now, secrets)

const heartbeat = (
  s: QueueState,
  now: number,
  token: LeaseToken,
  more: { progress?: unknown; leaseMs?: number } = {}
) => s.apply({ _tag: "Heartbeat", token, ...more }, now, secrets)

const release = (s: QueueState, now: number, token: LeaseToken) => s.apply({ _tag: "Release", token }, now, secrets)
const cancel = (s: QueueState, now: number, id: string) => s.apply({ _tag: "Cancel", id: id as JobId }, now, secrets)
const retry = (s: QueueState, now: number, id: string) => s.apply({ _tag: "Retry", id: id as JobId }, now, secrets)

const job = (s: QueueState, id: string): Job => {
  const found = s.get(id)
  if (found === undefined) throw new Error(`${id} is not in the state`)
  return found
}

const snapshot = (s: QueueState) => ({ text: s.toJson(s.seq, s.commitId), stats: s.stats() })

/** queue.json with its jobs in seq order: equal states give equal canonical forms. */
const canonical = (text: string) => {
  const file = JSON.parse(text) as { jobs: Array<{ seq: number }> }
  file.jobs.sort((a, b) => a.seq - b.seq)
  return file
}

/** Ends a batch as a durable commit would. */
const commit = (s: QueueState) => {
  const seq = s.seq + 1
  const commitId = `leader-1:${seq}`
  const text = s.toJson(seq, commitId)
  s.committed(seq, commitId, Buffer.byteLength(text))
  return text
}

const decodeFile = Schema.decodeUnknownSync(QueueFile)

const reload = (s: QueueState, limits: Limits = s.limits) => {
  const text = s.toJson(s.seq, s.commitId)
  return QueueState.fromFile(decodeFile(JSON.parse(text)), Buffer.byteLength(text), limits)
}

const fixed = (delayMs: number) => ({ _tag: "fixed" as const, delayMs })

// ------------------------------------------------------------------------------------------

describe("claim order", () => {
  it("is FIFO within a priority, across batches", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "a" })
    enqueue(s, T0 + 1, { type: "a" })
    expect(claimIds(s, T0 + 2, { max: 10 })).toEqual(["job-1", "job-2", "job-3"])
  })

  it("runs a lower priority number first, FIFO within each priority", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", priority: 5 }, { type: "a" }, { type: "a", priority: -1 }, { type: "a", priority: 0 })
    enqueue(s, T0, { type: "a", priority: 5 })
    expect(claimIds(s, T0, { max: 2 })).toEqual(["job-3", "job-2"])
    expect(claimIds(s, T0, { max: 10 })).toEqual(["job-4", "job-1", "job-5"])
  })

  it("orders across types, and a type filter claims only those types", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "b" }, { type: "a", priority: -1 }, { type: "c" })
    expect(claimIds(s, T0, { types: ["a", "b"], max: 10 })).toEqual(["job-3", "job-1", "job-2"])
    expect(claimIds(s, T0, { types: ["a", "b"], max: 10 })).toEqual([])
    expect(claimIds(s, T0, { max: 10 })).toEqual(["job-4"])
  })

  it("claims at most `max` and nothing from an empty queue", () => {
    const s = fresh()
    expect(claimIds(s, T0, { max: 5 })).toEqual([])
    enqueue(s, T0, { type: "a" }, { type: "a" }, { type: "a" })
    expect(claimIds(s, T0, { max: 2 })).toHaveLength(2)
    expect(claimIds(s, T0, { max: 0 })).toEqual([])
  })

  it("refuses a lease length outside 1..maxLeaseMs", () => {
    const s = fresh({ maxLeaseMs: 10_000 })
    enqueue(s, T0, { type: "a" })
    expect(tagOf(s.apply({ _tag: "Claim", workerId: "w", max: 1, leaseMs: 0 }, T0, secrets))).toBe("InvalidRequest")
    expect(tagOf(s.apply({ _tag: "Claim", workerId: "w", max: 1, leaseMs: 10_001 }, T0, secrets))).toBe(
      "InvalidRequest"
    )
    expect(job(s, "job-1").state).toBe("queued")
  })
})

describe("delayed jobs", () => {
  it("a delayMs job is claimable only from its runAt, after a tick", () => {
    const s = fresh()
    const [delayed] = enqueue(s, T0, { type: "a", delayMs: 1_000 })
    expect(delayed).toMatchObject({ state: "delayed", runAt: T0 + 1_000 })
    expect(claimIds(s, T0)).toEqual([])
    s.tick(T0 + 999)
    expect(claimIds(s, T0 + 999)).toEqual([])
    expect(s.nextWakeup(T0 + 999)).toBe(T0 + 1_000)
    // runAt has come, but only a tick promotes the job (every batch starts with one)
    expect(claimIds(s, T0 + 1_000)).toEqual([])
    expect(s.hasClaimable(undefined, T0 + 1_000)).toBe(false)
    s.tick(T0 + 1_000)
    expect(job(s, "job-1").state).toBe("queued")
    expect(s.hasClaimable(undefined, T0 + 1_000)).toBe(true)
    expect(claimIds(s, T0 + 1_000)).toEqual(["job-1"])
  })

  it("runAt wins over delayMs; a runAt in the past is queued at once", () => {
    const s = fresh()
    const [later, past, now] = enqueue(
      s,
      T0,
      { type: "a", runAt: T0 + 5_000, delayMs: 10 },
      { type: "a", runAt: T0 - 5_000, delayMs: 10_000 },
      { type: "a", delayMs: 0 }
    )
    expect(later).toMatchObject({ state: "delayed", runAt: T0 + 5_000 })
    expect(past).toMatchObject({ state: "queued", runAt: T0 - 5_000 })
    expect(now).toMatchObject({ state: "queued", runAt: T0 })
    s.tick(T0 + 4_999)
    expect(claimIds(s, T0 + 4_999, { max: 10 })).toEqual(["job-2", "job-3"])
    s.tick(T0 + 5_000)
    expect(claimIds(s, T0 + 5_000, { max: 10 })).toEqual(["job-1"])
  })

  it("a promoted delayed job takes its place by seq, ahead of later jobs", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", delayMs: 100 })
    enqueue(s, T0 + 50, { type: "a" })
    s.tick(T0 + 100)
    expect(claimIds(s, T0 + 100, { max: 10 })).toEqual(["job-1", "job-2"])
  })
})

describe("failures, backoff and the dead-letter list", () => {
  it("a retryable failure waits a fixed backoff, then is claimable again", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", maxAttempts: 3, backoff: fixed(500) })
    const { token } = claimOne(s, T0)
    const failed = right(fail(s, T0 + 10, token, "boom"))
    expect(failed).toMatchObject({ state: "failed-waiting-retry", attempts: 1, runAt: T0 + 510, lastError: "boom" })
    expect(failed.lease).toBeUndefined()
    s.tick(T0 + 509)
    expect(claimIds(s, T0 + 509)).toEqual([])
    s.tick(T0 + 510)
    const again = claimOne(s, T0 + 510)
    expect(again.job).toMatchObject({ id: "job-1", attempts: 2 })
    expect(again.job.history.map((h) => h.outcome)).toEqual(["failed", "running"])
    expect(again.job.history[0]).toMatchObject({ attempt: 1, error: "boom", endedAt: T0 + 10 })
  })

  it("exponential backoff doubles per failure and is capped (no jitter)", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", maxAttempts: 5, backoff: { _tag: "exponential", baseMs: 100, maxMs: 350, jitter: 0 } })
    const delays: Array<number> = []
    let now = T0
    for (let i = 0; i < 4; i++) {
      const { token } = claimOne(s, now)
      const failed = right(fail(s, now, token, `e${i}`))
      delays.push(failed.runAt - now)
      now = failed.runAt
      s.tick(now)
    }
    expect(delays).toEqual([100, 200, 350, 350])
  })

  it("exponential backoff with jitter stays in [wait * (1 - jitter), wait] and is deterministic", () => {
    const backoff = { _tag: "exponential" as const, baseMs: 1_000, maxMs: 1_000_000, jitter: 0.5 }
    const firstDelays = (s: QueueState) => {
      enqueue(s, T0, ...Array.from({ length: 40 }, () => ({ type: "a", backoff })))
      return claim(s, T0, { max: 40 }).map(({ token }) => right(fail(s, T0, token, "x")).runAt - T0)
    }
    const delays = firstDelays(fresh())
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(500)
      expect(d).toBeLessThanOrEqual(1_000)
    }
    expect(new Set(delays).size).toBeGreaterThan(10)
    // the same jobs failing the same way wait the same: the state machine stays deterministic
    expect(firstDelays(fresh())).toEqual(delays)
    // after the third failure the wait is 4 s, jittered into [2 s, 4 s]
    for (let i = 0; i < 20; i++) {
      const d = backoffDelay(backoff, 3, `job-${i}/3`)
      expect(d).toBeGreaterThanOrEqual(2_000)
      expect(d).toBeLessThanOrEqual(4_000)
    }
    expect(backoffDelay({ ...backoff, jitter: 1 }, 1, "s")).toBeGreaterThanOrEqual(0)
  })

  it("the default backoff applies when none is given", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" })
    const failed = right(fail(s, T0, claimOne(s, T0).token, "x"))
    // defaultBackoff: 1 s base, jitter 0.5
    expect(failed.runAt - T0).toBeGreaterThanOrEqual(500)
    expect(failed.runAt - T0).toBeLessThanOrEqual(1_000)
  })

  it("a retried job keeps its place (seq) ahead of jobs enqueued later", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", backoff: fixed(100) }, { type: "a" })
    const { token } = claimOne(s, T0)
    right(fail(s, T0, token, "x"))
    enqueue(s, T0 + 1, { type: "a" })
    s.tick(T0 + 100)
    expect(claimIds(s, T0 + 100, { max: 10 })).toEqual(["job-1", "job-2", "job-3"])
  })

  it("retryDelayMs overrides the backoff; 0 requeues at once", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", backoff: fixed(10_000), maxAttempts: 5 })
    const waited = right(fail(s, T0, claimOne(s, T0).token, "x", { retryDelayMs: 42 }))
    expect(waited).toMatchObject({ state: "failed-waiting-retry", runAt: T0 + 42 })
    s.tick(T0 + 42)
    const now = right(fail(s, T0 + 42, claimOne(s, T0 + 42).token, "y", { retryDelayMs: 0 }))
    expect(now).toMatchObject({ state: "queued", runAt: T0 + 42, attempts: 2 })
    expect(claimIds(s, T0 + 42)).toEqual(["job-1"])
  })

  it("exhausted attempts go to the dead-letter list with the last error, and stay there", () => {
    const s = fresh({ keepFinished: 0, keepFinishedMs: 0 })
    enqueue(s, T0, { type: "a", maxAttempts: 2, backoff: fixed(0) })
    right(fail(s, T0, claimOne(s, T0).token, "first"))
    const dead = right(fail(s, T0 + 1, claimOne(s, T0 + 1).token, "second"))
    expect(dead).toMatchObject({ state: "dead", attempts: 2, lastError: "second", finishedAt: T0 + 1 })
    expect(dead.history.map((h) => [h.outcome, h.error])).toEqual([["failed", "first"], ["failed", "second"]])
    expect(s.stats()).toMatchObject({ deadTotal: 1, counts: { dead: 1 } })
    // finished-job retention does not touch dead jobs: they have their own (keepDead, keepDeadMs)
    const later = T0 + s.limits.keepDeadMs
    s.tick(later)
    expect(s.list({ state: "dead" }).jobs.map((j) => j.id)).toEqual(["job-1"])
    expect(job(s, "job-1").lastError).toBe("second")
    expect(claimIds(s, later)).toEqual([])
  })

  it("a non-retryable failure is dead at once, whatever attempts are left", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", maxAttempts: 5 })
    const dead = right(fail(s, T0, claimOne(s, T0).token, "bad input", { retryable: false }))
    expect(dead).toMatchObject({ state: "dead", attempts: 1, lastError: "bad input" })
  })

  it("lease expiry counts as a failed attempt", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", maxAttempts: 2, backoff: fixed(0) })
    claimOne(s, T0, { leaseMs: 1_000, workerId: "slow" })
    s.tick(T0 + 999)
    expect(job(s, "job-1").state).toBe("running")
    s.tick(T0 + 1_000)
    expect(job(s, "job-1")).toMatchObject({ state: "queued", attempts: 1 })
    expect(job(s, "job-1").lastError).toMatch(/lease expired.*slow/)
    expect(job(s, "job-1").history.at(-1)).toMatchObject({ outcome: "expired", endedAt: T0 + 1_000 })
    expect(claimOne(s, T0 + 1_000, { leaseMs: 1_000 }).job.attempts).toBe(2)
    s.tick(T0 + 2_000)
    expect(job(s, "job-1")).toMatchObject({ state: "dead", attempts: 2 })
    expect(job(s, "job-1").lastError).toMatch(/lease expired/)
  })
})

describe("leases", () => {
  it("a token from an older attempt gets LeaseLost; the current one works", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", backoff: fixed(0) })
    const first = claimOne(s, T0, { leaseMs: 100 })
    s.tick(T0 + 100)
    const second = claimOne(s, T0 + 100)
    expect(second.token).not.toBe(first.token)
    expect(tagOf(heartbeat(s, T0 + 101, first.token))).toBe("LeaseLost")
    expect(tagOf(complete(s, T0 + 101, first.token))).toBe("LeaseLost")
    expect(tagOf(fail(s, T0 + 101, first.token, "x"))).toBe("LeaseLost")
    expect(tagOf(release(s, T0 + 101, first.token))).toBe("LeaseLost")
    expect(job(s, "job-1")).toMatchObject({ state: "running", attempts: 2 })
    expect(right(complete(s, T0 + 102, second.token)).state).toBe("completed")
  })

  it("a token after complete gets LeaseLost, never a second success", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" })
    const { token } = claimOne(s, T0)
    expect(right(complete(s, T0 + 1, token, { ok: 1 }))).toMatchObject({ state: "completed", result: { ok: 1 } })
    expect(tagOf(complete(s, T0 + 2, token))).toBe("LeaseLost")
    expect(tagOf(heartbeat(s, T0 + 2, token))).toBe("LeaseLost")
    expect(tagOf(fail(s, T0 + 2, token, "x"))).toBe("LeaseLost")
    expect(s.stats().completedTotal).toBe(1)
  })

  it("unknown jobs are JobNotFound; a malformed token is InvalidRequest", () => {
    const s = fresh()
    const token = "job-404/1/0" as LeaseToken
    expect(tagOf(heartbeat(s, T0, token))).toBe("JobNotFound")
    expect(tagOf(complete(s, T0, token))).toBe("JobNotFound")
    expect(tagOf(fail(s, T0, token, "x"))).toBe("JobNotFound")
    expect(tagOf(release(s, T0, token))).toBe("JobNotFound")
    expect(tagOf(cancel(s, T0, "job-404"))).toBe("JobNotFound")
    expect(tagOf(retry(s, T0, "job-404"))).toBe("JobNotFound")
    expect(tagOf(heartbeat(s, T0, "nonsense" as LeaseToken))).toBe("InvalidRequest")
  })

  it("a heartbeat extends the lease, may change its length, and stores progress", () => {
    const s = fresh({ maxLeaseMs: 60_000 })
    enqueue(s, T0, { type: "a" })
    const { token } = claimOne(s, T0, { leaseMs: 1_000 })
    expect(right(heartbeat(s, T0 + 800, token, { progress: { pct: 50 } }))).toEqual({
      jobId: "job-1",
      expiresAt: T0 + 1_800
    })
    expect(job(s, "job-1").progress).toEqual({ pct: 50 })
    s.tick(T0 + 1_500)
    expect(job(s, "job-1").state).toBe("running")
    expect(right(heartbeat(s, T0 + 1_700, token, { leaseMs: 5_000 })).expiresAt).toBe(T0 + 6_700)
    expect(job(s, "job-1").lease).toMatchObject({ expiresAt: T0 + 6_700, ttlMs: 5_000 })
    expect(job(s, "job-1").progress).toEqual({ pct: 50 })
    s.tick(T0 + 6_699)
    expect(job(s, "job-1").state).toBe("running")
    expect(tagOf(heartbeat(s, T0 + 6_699, token, { leaseMs: 60_001 }))).toBe("InvalidRequest")
    s.tick(T0 + 6_700)
    expect(job(s, "job-1").state).not.toBe("running")
  })

  it("release gives the attempt back and keeps the job's place", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", maxAttempts: 1 }, { type: "a" })
    const { token } = claimOne(s, T0)
    const released = right(release(s, T0 + 5, token))
    expect(released).toMatchObject({ state: "queued", attempts: 0, runAt: T0 + 5 })
    expect(released.lease).toBeUndefined()
    expect(released.history.at(-1)).toMatchObject({ outcome: "released", endedAt: T0 + 5 })
    expect(tagOf(heartbeat(s, T0 + 6, token))).toBe("LeaseLost")
    const again = claimOne(s, T0 + 6)
    expect(again.job).toMatchObject({ id: "job-1", attempts: 1 })
    // a release is not a failure: with maxAttempts 1, a failure now is the first and last
    expect(right(fail(s, T0 + 7, again.token, "x")).state).toBe("dead")
  })

  // Tokens carry the job's claim count, not its attempt: a release gives the attempt back, yet the
  // releasing worker's token must not work on the next claim.
  it("a released token does not work on the job's next claim", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" })
    const a = claimOne(s, T0, { workerId: "A" })
    right(release(s, T0 + 1, a.token))
    const b = claimOne(s, T0 + 2, { workerId: "B" })
    expect(tagOf(complete(s, T0 + 3, a.token))).toBe("LeaseLost")
    expect(right(complete(s, T0 + 4, b.token)).state).toBe("completed")
  })

  // A redrive resets attempts to 0; the claim count goes on, so old tokens stay dead.
  it("a cancelled job's old token stays invalid after retry and a new claim", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" })
    const a = claimOne(s, T0, { workerId: "A" })
    right(cancel(s, T0 + 1, "job-1"))
    expect(tagOf(heartbeat(s, T0 + 2, a.token))).toBe("LeaseLost")
    right(retry(s, T0 + 3, "job-1"))
    const b = claimOne(s, T0 + 4, { workerId: "B" })
    expect(tagOf(complete(s, T0 + 5, a.token))).toBe("LeaseLost")
    expect(right(complete(s, T0 + 6, b.token)).state).toBe("completed")
  })

  it("a token whose lease expired into the dead-letter list stays invalid after a redrive", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", maxAttempts: 1 })
    const a = claimOne(s, T0, { workerId: "A", leaseMs: 1_000 })
    s.tick(T0 + 1_000)
    expect(job(s, "job-1").state).toBe("dead")
    expect(right(s.apply({ _tag: "RetryDead" }, T0 + 2_000, secrets))).toBe(1)
    const b = claimOne(s, T0 + 2_001, { workerId: "B" })
    expect(tagOf(heartbeat(s, T0 + 2_002, a.token))).toBe("LeaseLost")
    expect(right(complete(s, T0 + 2_003, b.token)).state).toBe("completed")
  })
})

describe("cancel and retry", () => {
  it("cancels a queued, delayed or waiting job: it is never claimed", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "a", delayMs: 100 }, { type: "a", backoff: fixed(100) })
    right(fail(s, T0, claim(s, T0, { max: 2 })[1]!.token, "x"))
    expect(job(s, "job-3").state).toBe("failed-waiting-retry")
    for (const id of ["job-1", "job-2", "job-3"]) {
      expect(right(cancel(s, T0 + 1, id))).toMatchObject({ state: "cancelled", finishedAt: T0 + 1 })
    }
    s.tick(T0 + 1_000)
    expect(claimIds(s, T0 + 1_000, { max: 10 })).toEqual([])
    expect(s.stats().counts.cancelled).toBe(3)
  })

  it("cancels a running job: its token then gets LeaseLost", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" })
    const { token } = claimOne(s, T0)
    const cancelled = right(cancel(s, T0 + 1, "job-1"))
    expect(cancelled.lease).toBeUndefined()
    expect(cancelled.history.at(-1)).toMatchObject({ outcome: "cancelled", endedAt: T0 + 1 })
    expect(tagOf(heartbeat(s, T0 + 2, token))).toBe("LeaseLost")
    expect(tagOf(complete(s, T0 + 2, token))).toBe("LeaseLost")
    s.tick(T0 + 10_000_000)
    expect(s.stats().counts.running).toBe(0)
  })

  it("cancel of a completed, dead or cancelled job is InvalidTransition", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "a" }, { type: "a" })
    const [c1, c2] = claim(s, T0, { max: 2 })
    right(complete(s, T0, c1!.token))
    right(fail(s, T0, c2!.token, "x", { retryable: false }))
    right(cancel(s, T0, "job-3"))
    for (const [id, state] of [["job-1", "completed"], ["job-2", "dead"], ["job-3", "cancelled"]] as const) {
      const error = left(cancel(s, T0 + 1, id))
      expect(error).toMatchObject({ _tag: "InvalidTransition", jobId: id, state, action: "cancel" })
      expect(job(s, id).state).toBe(state)
    }
  })

  it("retry of a dead job: fresh attempts, back in its place, last error kept", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", maxAttempts: 2 })
    right(fail(s, T0, claimOne(s, T0).token, "fatal", { retryable: false }))
    enqueue(s, T0 + 1, { type: "a" })
    const redriven = right(retry(s, T0 + 2, "job-1"))
    expect(redriven).toMatchObject({ state: "queued", attempts: 0, runAt: T0 + 2, lastError: "fatal" })
    expect(redriven.finishedAt).toBeUndefined()
    expect(claimIds(s, T0 + 2, { max: 10 })).toEqual(["job-1", "job-2"])
    expect(job(s, "job-1").attempts).toBe(1)
  })

  it("retry of a waiting job requeues it now and keeps its attempts; of a cancelled job too", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", backoff: fixed(60_000) }, { type: "a" })
    right(fail(s, T0, claimOne(s, T0).token, "x"))
    expect(right(retry(s, T0 + 1, "job-1"))).toMatchObject({ state: "queued", attempts: 1, runAt: T0 + 1 })
    right(cancel(s, T0 + 1, "job-2"))
    expect(right(retry(s, T0 + 2, "job-2"))).toMatchObject({ state: "queued", attempts: 0 })
    expect(claimIds(s, T0 + 2, { max: 10 })).toEqual(["job-1", "job-2"])
  })

  it("retry of a queued, running or completed job is InvalidTransition", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "a" }, { type: "a" })
    const [c1] = claim(s, T0, { max: 2 })
    right(complete(s, T0, c1!.token))
    expect(left(retry(s, T0, "job-1"))).toMatchObject({ _tag: "InvalidTransition", state: "completed" })
    expect(left(retry(s, T0, "job-2"))).toMatchObject({ _tag: "InvalidTransition", state: "running" })
    expect(left(retry(s, T0, "job-3"))).toMatchObject({ _tag: "InvalidTransition", state: "queued" })
  })

  it("RetryDead redrives every dead job, or those of one type", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "b" }, { type: "a" })
    for (const { token } of claim(s, T0, { max: 3 })) right(fail(s, T0, token, "x", { retryable: false }))
    expect(right(s.apply({ _tag: "RetryDead", type: "b" }, T0 + 1, secrets))).toBe(1)
    expect(job(s, "job-2").state).toBe("queued")
    expect(right(s.apply({ _tag: "RetryDead" }, T0 + 2, secrets))).toBe(2)
    expect(right(s.apply({ _tag: "RetryDead" }, T0 + 3, secrets))).toBe(0)
    expect(claimIds(s, T0 + 3, { max: 10 })).toEqual(["job-1", "job-2", "job-3"])
  })
})

describe("pause and resume", () => {
  it("pausing everything stops claims until resumed", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "b" })
    expect(right(s.apply({ _tag: "Pause" }, T0, secrets))).toEqual({ all: true, types: [] })
    expect(claimIds(s, T0, { max: 10 })).toEqual([])
    expect(claimIds(s, T0, { max: 10, types: ["a"] })).toEqual([])
    expect(s.hasClaimable(undefined, T0)).toBe(false)
    expect(job(s, "job-1").state).toBe("queued")
    expect(right(s.apply({ _tag: "Resume" }, T0, secrets))).toEqual({ all: false, types: [] })
    expect(claimIds(s, T0, { max: 10 })).toEqual(["job-1", "job-2"])
  })

  it("pausing a type hides only that type", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "b" }, { type: "a" }, { type: "b" })
    expect(right(s.apply({ _tag: "Pause", type: "a" }, T0, secrets))).toEqual({ all: false, types: ["a"] })
    expect(s.stats().paused).toEqual({ all: false, types: ["a"] })
    expect(claimIds(s, T0, { types: ["a"], max: 10 })).toEqual([])
    expect(s.hasClaimable(["a"], T0)).toBe(false)
    expect(claimIds(s, T0)).toEqual(["job-2"])
    expect(right(s.apply({ _tag: "Resume", type: "a" }, T0, secrets))).toEqual({ all: false, types: [] })
    expect(claimIds(s, T0, { max: 10 })).toEqual(["job-1", "job-3", "job-4"])
  })

  it("a paused type's running jobs still expire and their tokens still work", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "a" })
    const [c1, c2] = claim(s, T0, { max: 2, leaseMs: 100 })
    right(s.apply({ _tag: "Pause", type: "a" }, T0, secrets))
    right(complete(s, T0 + 1, c1!.token))
    s.tick(T0 + 100)
    expect(job(s, "job-2").state).not.toBe("running")
    expect(tagOf(complete(s, T0 + 101, c2!.token))).toBe("LeaseLost")
  })
})

describe("complete and claim", () => {
  const completeAndClaim = (
    s: QueueState,
    now: number,
    token: LeaseToken,
    options: ClaimOptions & { readonly result?: unknown } = {}
  ) =>
    s.apply(
      {
        _tag: "CompleteAndClaim",
        token,
        workerId: options.workerId ?? "w1",
        max: options.max ?? 1,
        ...(options.result === undefined ? {} : { result: options.result }),
        ...(options.types === undefined ? {} : { types: options.types }),
        ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs })
      },
      now,
      secrets
    )

  it("completes the job and claims the next ones in one command", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "a" }, { type: "b" }, { type: "a" })
    const { token } = claimOne(s, T0)
    const next = right(completeAndClaim(s, T0 + 1, token, { result: { ok: 1 }, types: ["a"], max: 2, workerId: "w2" }))
    expect(next.map((c) => c.job.id)).toEqual(["job-2", "job-4"])
    expect(job(s, "job-1")).toMatchObject({ state: "completed", result: { ok: 1 } })
    for (const claimed of next) {
      expect(job(s, claimed.job.id)).toMatchObject({ state: "running", lease: { workerId: "w2" } })
      expect(claimed.token).toBe(tokenOf(job(s, claimed.job.id)))
    }
    expect(s.stats().completedTotal).toBe(1)
  })

  it("answers no job when none is claimable, and the completion stands", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "b" })
    const { token } = claimOne(s, T0, { types: ["a"] })
    expect(right(completeAndClaim(s, T0 + 1, token, { types: ["a"] }))).toEqual([])
    expect(job(s, "job-1").state).toBe("completed")
    expect(job(s, "job-2").state).toBe("queued")
  })

  it("a refused completion claims nothing and changes nothing", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "a" })
    const { token } = claimOne(s, T0)
    right(complete(s, T0 + 1, token))
    const before = snapshot(s)
    expect(tagOf(completeAndClaim(s, T0 + 2, token))).toBe("LeaseLost")
    expect(snapshot(s)).toEqual(before)
    expect(job(s, "job-2").state).toBe("queued")
  })

  it("a refused claim undoes the completion", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "a" })
    const { token } = claimOne(s, T0)
    const before = snapshot(s)
    expect(tagOf(completeAndClaim(s, T0 + 1, token, { leaseMs: defaultLimits.maxLeaseMs + 1 }))).toBe(
      "InvalidRequest"
    )
    expect(snapshot(s)).toEqual(before)
    expect(right(complete(s, T0 + 2, token)).state).toBe("completed")
  })

  it("the completed job's slot under a concurrency limit is the next job's", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "a" })
    right(s.apply({ _tag: "SetLimit", limit: { type: "a", concurrency: 1 } }, T0, secrets))
    const { token } = claimOne(s, T0)
    expect(claimIds(s, T0, { max: 10 })).toEqual([])
    expect(right(completeAndClaim(s, T0 + 1, token)).map((c) => c.job.id)).toEqual(["job-2"])
    expect(s.limitStatus(T0 + 1)).toEqual([{ type: "a", concurrency: 1, running: 1 }])
  })
})

describe("limits on claims", () => {
  const setLimit = (s: QueueState, now: number, limit: ClaimLimit) => s.apply({ _tag: "SetLimit", limit }, now, secrets)

  it("a concurrency limit holds across workers; a job that ends frees its slot", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "a" }, { type: "a" }, { type: "b" })
    expect(right(setLimit(s, T0, { type: "a", concurrency: 2 }))).toEqual([{ type: "a", concurrency: 2 }])
    expect(claimIds(s, T0, { types: ["a"], max: 10, workerId: "w1" })).toEqual(["job-1", "job-2"])
    expect(claimIds(s, T0, { types: ["a"], max: 10, workerId: "w2" })).toEqual([])
    expect(s.hasClaimable(["a"], T0)).toBe(false)
    // Another type is not held back; a type named twice gets its room once.
    expect(claimIds(s, T0, { types: ["a", "a", "b"], max: 10, workerId: "w2" })).toEqual(["job-4"])
    expect(s.limitStatus(T0)).toEqual([{ type: "a", concurrency: 2, running: 2 }])
    const first = s.get("job-1")!
    right(complete(s, T0, tokenOf(first)))
    expect(s.hasClaimable(["a"], T0)).toBe(true)
    expect(claimIds(s, T0, { types: ["a"], max: 10, workerId: "w2" })).toEqual(["job-3"])
  })

  it("the whole queue's limit counts every type", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "b" }, { type: "c" })
    right(setLimit(s, T0, { concurrency: 2 }))
    expect(claimIds(s, T0, { max: 10 })).toEqual(["job-1", "job-2"])
    expect(s.hasClaimable(undefined, T0)).toBe(false)
    right(s.apply({ _tag: "ClearLimit" }, T0, secrets))
    expect(claimIds(s, T0, { max: 10 })).toEqual(["job-3"])
  })

  it("a rate limit allows max starts in any window; a long poll learns when the window frees one", () => {
    const s = fresh()
    enqueue(s, T0, ...Array.from({ length: 5 }, () => ({ type: "a" })))
    right(setLimit(s, T0, { type: "a", rate: { max: 2, windowMs: 1_000 } }))
    expect(claimIds(s, T0, { max: 1 })).toEqual(["job-1"])
    expect(claimIds(s, T0 + 400, { max: 10 })).toEqual(["job-2"])
    expect(claimIds(s, T0 + 999, { max: 10 })).toEqual([])
    expect(s.hasClaimable(undefined, T0 + 999)).toBe(false)
    // The first start leaves the window at T0 + 1000: one more may start then, not before.
    expect(s.nextWakeup(T0 + 999)).toBe(T0 + 1_000)
    expect(s.limitStatus(T0 + 999)).toEqual([{
      type: "a",
      rate: { max: 2, windowMs: 1_000 },
      running: 2,
      startsInWindow: 2
    }])
    expect(claimIds(s, T0 + 1_000, { max: 10 })).toEqual(["job-3"])
    expect(s.nextWakeup(T0 + 1_000)).toBe(T0 + 1_400)
    expect(claimIds(s, T0 + 2_400, { max: 10 })).toEqual(["job-4", "job-5"])
  })

  it("a rate's starts survive a checkpoint; clearing the rate forgets them; a clock behind keeps them in order", () => {
    const s = fresh()
    enqueue(s, T0, ...Array.from({ length: 4 }, () => ({ type: "a" })))
    right(setLimit(s, T0, { rate: { max: 2, windowMs: 60_000 } }))
    claim(s, T0, { max: 2 })
    commit(s)
    const back = reload(s)
    expect(back.claimLimits).toEqual([{ rate: { max: 2, windowMs: 60_000 } }])
    expect(claimIds(back, T0 + 1_000, { max: 2 })).toEqual([])
    // A new leader whose clock is behind: the window still counts the starts it remembers.
    expect(claimIds(back, T0 - 5_000, { max: 2 })).toEqual([])
    right(back.apply({ _tag: "ClearLimit" }, T0 + 1_000, secrets))
    right(setLimit(back, T0 + 1_000, { rate: { max: 2, windowMs: 60_000 } }))
    expect(claimIds(back, T0 + 1_000, { max: 2 })).toEqual(["job-3", "job-4"])
  })

  it("bad limits are refused with what was wrong and change nothing", () => {
    const s = fresh()
    const before = snapshot(s)
    expect(left(setLimit(s, T0, { type: "a" })).message).toMatch(/concurrency, a rate or both/)
    expect(left(setLimit(s, T0, { type: "a", concurrency: 0 })).message).toMatch(
      /concurrency must be a whole number from 1/
    )
    expect(left(setLimit(s, T0, { rate: { max: 1.5, windowMs: 10 } })).message).toMatch(/rate's max/)
    expect(left(setLimit(s, T0, { rate: { max: 1, windowMs: 0 } })).message).toMatch(/windowMs/)
    for (let i = 0; i < maxLimitedTypes; i++) right(setLimit(s, T0, { type: `t${i}`, concurrency: 1 }))
    const full = snapshot(s)
    expect(tagOf(setLimit(s, T0, { type: "one-more", concurrency: 1 }))).toBe("InvalidRequest")
    // The whole queue's limit, and changing a type's own, are still allowed.
    right(setLimit(s, T0, { concurrency: 5 }))
    right(setLimit(s, T0, { type: "t0", concurrency: 2 }))
    expect(snapshot(s)).not.toEqual(full)
    expect(before.stats.limits).toEqual([])
  })

  it("a checkpoint written before limits (format 3) loads with none", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" })
    const text = s.toJson(s.seq, s.commitId).replace("\"format\":5", "\"format\":3")
    const old = QueueState.fromFile(decodeFile(JSON.parse(text)), Buffer.byteLength(text), s.limits)
    expect(old.claimLimits).toEqual([])
    expect(old.stats().limits).toEqual([])
    expect(claimIds(old, T0)).toEqual(["job-1"])
  })
})

describe("idempotent enqueue", () => {
  it("a key that exists returns the existing job and adds nothing", () => {
    const s = fresh()
    const [first] = enqueue(s, T0, { type: "a", payload: { v: 1 }, idempotencyKey: "k" })
    const [second] = enqueue(s, T0 + 1, { type: "b", payload: { v: 2 }, idempotencyKey: "k", priority: 9 })
    expect(second).toEqual(first)
    expect(s.size).toBe(1)
    expect(s.stats().enqueuedTotal).toBe(1)
    expect(job(s, "job-1")).toMatchObject({ type: "a", payload: { v: 1 }, priority: 0 })
  })

  it("also within one enqueue batch", () => {
    const s = fresh()
    const jobs = enqueue(s, T0, { type: "a", idempotencyKey: "k" }, { type: "a" }, { type: "a", idempotencyKey: "k" })
    expect(jobs.map((j) => j.id)).toEqual(["job-1", "job-2", "job-1"])
    expect(s.size).toBe(2)
    expect(s.stats().enqueuedTotal).toBe(2)
  })

  it("returns the job in whatever state it is, until retention removes it", () => {
    const s = fresh({ keepFinished: 10, keepFinishedMs: 1_000 })
    enqueue(s, T0, { type: "a", idempotencyKey: "k" })
    right(complete(s, T0, claimOne(s, T0).token))
    expect(enqueue(s, T0 + 1, { type: "a", idempotencyKey: "k" })[0]).toMatchObject({ id: "job-1", state: "completed" })
    s.tick(T0 + 1_000)
    expect(s.get("job-1")).toBeUndefined()
    expect(enqueueIds(s, T0 + 1_000, { type: "a", idempotencyKey: "k" })).toEqual(["job-2"])
  })

  // The index holds a hash of each key, not the key (docs/performance.md, target 3).
  it("keys that share a hash are told apart, before and after a reload", () => {
    const seen = new Map<number, string>()
    let pair: [string, string] | undefined
    for (let i = 0; pair === undefined; i++) {
      const key = `key-${i}`
      const other = seen.get(keyHash(key))
      if (other !== undefined) pair = [other, key]
      seen.set(keyHash(key), key)
    }
    const [k1, k2] = pair
    const s = fresh()
    expect(enqueueIds(s, T0, { type: "a", idempotencyKey: k1 }, { type: "a", idempotencyKey: k2 })).toEqual([
      "job-1",
      "job-2"
    ])
    expect(enqueueIds(s, T0, { type: "a", idempotencyKey: k2 }, { type: "a", idempotencyKey: k1 })).toEqual([
      "job-2",
      "job-1"
    ])
    right(s.apply({ _tag: "Delete", id: "job-1" as JobId }, T0, secrets))
    expect(enqueueIds(s, T0, { type: "a", idempotencyKey: k2 }, { type: "a", idempotencyKey: k1 })).toEqual([
      "job-2",
      "job-3"
    ])
    commit(s)
    const loaded = reload(s)
    loaded.begin()
    expect(enqueueIds(loaded, T0, { type: "a", idempotencyKey: k1 }, { type: "a", idempotencyKey: k2 })).toEqual([
      "job-3",
      "job-2"
    ])
    expect(loaded.size).toBe(2)
  })

  // Near the state cap, a producer's retry of an enqueue that already landed still gets its job.
  it("a key that exists returns its job even when the state is full", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", payload: "x".repeat(500), idempotencyKey: "k" })
    commit(s)
    // the same state under a cap that leaves room for 100 more bytes
    const full = reload(s, limitsWith({ maxStateBytes: s.bytes + 100 }))
    full.begin()
    expect(enqueueIds(full, T0 + 1, { type: "a", payload: "x".repeat(500), idempotencyKey: "k" })).toEqual(["job-1"])
  })
})

describe("retention", () => {
  it("keeps at most keepFinished completed/cancelled jobs, newest; dead jobs do not count and stay", () => {
    const s = fresh({ keepFinished: 2, keepFinishedMs: 3_600_000 })
    enqueue(s, T0, { type: "a" }, { type: "a" }, { type: "a" }, { type: "a" }, { type: "a" })
    const claimed = claim(s, T0, { max: 4 })
    right(complete(s, T0 + 1, claimed[0]!.token))
    right(complete(s, T0 + 2, claimed[1]!.token))
    right(fail(s, T0 + 3, claimed[2]!.token, "x", { retryable: false }))
    right(complete(s, T0 + 4, claimed[3]!.token))
    right(cancel(s, T0 + 5, "job-5"))
    s.tick(T0 + 6)
    expect(s.list({}).jobs.map((j) => [j.id, j.state])).toEqual([
      ["job-3", "dead"],
      ["job-4", "completed"],
      ["job-5", "cancelled"]
    ])
    expect(tagOf(cancel(s, T0 + 7, "job-1"))).toBe("JobNotFound")
    expect(s.stats()).toMatchObject({
      completedTotal: 3,
      enqueuedTotal: 5,
      counts: { completed: 1, cancelled: 1, dead: 1 }
    })
  })

  it("removes completed/cancelled jobs keepFinishedMs after they finished; dead jobs stay for keepDeadMs", () => {
    const s = fresh({ keepFinished: 100, keepFinishedMs: 1_000 })
    enqueue(s, T0, { type: "a" }, { type: "a" }, { type: "a" })
    const [c1, c2] = claim(s, T0, { max: 2 })
    right(complete(s, T0 + 10, c1!.token))
    right(fail(s, T0 + 10, c2!.token, "x", { retryable: false }))
    right(cancel(s, T0 + 500, "job-3"))
    s.tick(T0 + 1_009)
    expect(s.size).toBe(3)
    s.tick(T0 + 1_010)
    expect(s.get("job-1")).toBeUndefined()
    expect(s.size).toBe(2)
    s.tick(T0 + 1_500)
    expect(s.get("job-3")).toBeUndefined()
    s.tick(T0 + 9 + s.limits.keepDeadMs)
    expect(s.list({}).jobs.map((j) => j.id)).toEqual(["job-2"])
    s.tick(T0 + 10 + s.limits.keepDeadMs)
    expect(s.size).toBe(0)
  })
})

describe("limits", () => {
  it("a payload over maxPayloadBytes is PayloadTooLarge and the batch changes nothing", () => {
    const s = fresh({ maxPayloadBytes: 100 })
    // "x" * 98 is 100 bytes of JSON: at the limit, accepted
    enqueue(s, T0, { type: "a", payload: "x".repeat(98) })
    const before = snapshot(s)
    const error = left(
      s.apply({ _tag: "Enqueue", jobs: [{ type: "a" }, { type: "a", payload: "x".repeat(99) }] }, T0, secrets)
    )
    expect(error).toMatchObject({ _tag: "PayloadTooLarge", bytes: 101, limit: 100 })
    expect(snapshot(s)).toEqual(before)
    expect(enqueueIds(s, T0, { type: "a" })).toEqual(["job-2"])
  })

  it("a result or progress over the limit is PayloadTooLarge and the job keeps running", () => {
    const s = fresh({ maxPayloadBytes: 100 })
    enqueue(s, T0, { type: "a" })
    const { token } = claimOne(s, T0)
    const before = snapshot(s)
    expect(tagOf(complete(s, T0 + 1, token, "x".repeat(200)))).toBe("PayloadTooLarge")
    expect(tagOf(heartbeat(s, T0 + 1, token, { progress: "x".repeat(200) }))).toBe("PayloadTooLarge")
    expect(snapshot(s)).toEqual(before)
    expect(right(complete(s, T0 + 2, token, "ok")).state).toBe("completed")
  })

  it("an enqueue that would take the state over maxStateBytes is QueueFull and changes nothing", () => {
    const s = fresh({ maxStateBytes: 20_000 })
    commit(s)
    s.begin()
    let full: OsqueueError | undefined
    for (let i = 0; i < 100 && full === undefined; i++) {
      const before = snapshot(s)
      const result = s.apply({ _tag: "Enqueue", jobs: [{ type: "a", payload: "x".repeat(1_000) }] }, T0, secrets)
      if (Either.isLeft(result)) {
        full = result.left
        expect(snapshot(s)).toEqual(before)
      }
    }
    expect(full).toMatchObject({ _tag: "QueueFull", limit: 20_000 })
    // what was accepted really fits
    const text = commit(s)
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(20_000)
    expect(s.size).toBeGreaterThan(5)
    // a batch that does not fit as a whole is refused as a whole
    s.begin()
    const size = s.size
    expect(
      tagOf(
        s.apply({ _tag: "Enqueue", jobs: [{ type: "a" }, { type: "a", payload: "x".repeat(20_000) }] }, T0, secrets)
      )
    )
      .toBe("QueueFull")
    expect(s.size).toBe(size)
  })
})

describe("shedding at the state cap", () => {
  const payload = "x".repeat(1_000)

  /** A state whose cap fits about `jobs` jobs of 1 KB, filled with completed ones, committed. */
  const fullOfCompleted = (jobs: number) => {
    const s = fresh({ maxStateBytes: jobs * 1_300, keepFinished: 1_000_000, keepFinishedMs: 1e12 })
    s.begin()
    let done = 0
    for (let i = 0; i < 1_000; i++) {
      if (Either.isLeft(s.apply({ _tag: "Enqueue", jobs: [{ type: "a", payload }] }, T0 + i, secrets))) break
      const { token } = claimOne(s, T0 + i)
      right(complete(s, T0 + i, token))
      done++
    }
    commit(s)
    return { s, done }
  }

  it("an enqueue at the cap removes the oldest completed jobs it needs, and is accepted", () => {
    const { s, done } = fullOfCompleted(10)
    expect(done).toBeGreaterThan(3)
    s.begin()
    const [added] = enqueue(s, T0 + 5_000, { type: "a", payload })
    expect(s.get("job-1")).toBeUndefined()
    expect(s.get(`job-${done}`)?.state).toBe("completed")
    expect(added!.state).toBe("queued")
    expect(Buffer.byteLength(commit(s))).toBeLessThanOrEqual(s.limits.maxStateBytes)
  })

  it("with nothing finished left to shed, QueueFull changes nothing and says to come back when the next lease ends", () => {
    const s = fresh({ maxStateBytes: 8_000 })
    s.begin()
    enqueue(s, T0, { type: "a", payload: "x".repeat(900) })
    const { job: running } = claimOne(s, T0, { leaseMs: 20_000 })
    right(cancel(s, T0, enqueue(s, T0, { type: "a", payload: "x".repeat(900) })[0]!.id))
    commit(s)
    s.begin()
    let full: OsqueueError | undefined
    for (let i = 0; i < 20 && full === undefined; i++) {
      const before = snapshot(s)
      const result = s.apply({ _tag: "Enqueue", jobs: [{ type: "b", payload: "x".repeat(900) }] }, T0 + 2_000, secrets)
      if (Either.isLeft(result)) {
        full = result.left
        expect(snapshot(s)).toEqual(before)
      }
    }
    // the cancelled job went first, then live jobs alone filled the state
    expect(s.get("job-2")).toBeUndefined()
    expect(full).toMatchObject({ _tag: "QueueFull", limit: 8_000, retryAfterMs: 18_000 })
    expect(s.get(running.id)?.state).toBe("running")
    // no job running: a minute
    right(cancel(s, T0 + 2_000, running.id))
    right(s.apply({ _tag: "Delete", id: running.id }, T0 + 2_000, secrets))
    right(s.apply({ _tag: "Purge", state: "cancelled" }, T0 + 2_000, secrets))
    const jobs = Array.from({ length: 20 }, () => ({ type: "b", payload: "x".repeat(900) }))
    expect(left(s.apply({ _tag: "Enqueue", jobs }, T0 + 2_000, secrets))).toMatchObject({
      _tag: "QueueFull",
      retryAfterMs: 60_000
    })
  })

  it("results that take the state past the cap are shed by the next batch, completed jobs first", () => {
    const s = fresh({ maxStateBytes: 12_000, maxPayloadBytes: 4_000, keepFinished: 1_000, keepFinishedMs: 1e12 })
    s.begin()
    enqueue(s, T0, ...Array.from({ length: 6 }, () => ({ type: "a" })))
    const claimed = claim(s, T0, { max: 6 })
    commit(s)
    s.begin()
    for (const { token } of claimed) right(complete(s, T0 + 1, token, "r".repeat(3_000)))
    const over = Buffer.byteLength(commit(s))
    expect(over).toBeGreaterThan(12_000)
    s.begin()
    s.tick(T0 + 2)
    const under = Buffer.byteLength(commit(s))
    expect(under).toBeLessThanOrEqual(12_000)
    expect(s.get("job-1")).toBeUndefined()
    expect(s.get("job-6")?.state).toBe("completed")
  })
})

describe("dead-letter retention", () => {
  const kill = (s: QueueState, now: number, count: number) => {
    const ids = enqueueIds(s, now, ...Array.from({ length: count }, () => ({ type: "a", maxAttempts: 1 })))
    for (const { token } of claim(s, now, { max: count })) right(fail(s, now, token, "poison"))
    return ids
  }

  it("keeps at most keepDead dead jobs, the newest", () => {
    const s = fresh({ keepDead: 3 })
    s.begin()
    const ids = kill(s, T0, 5)
    s.tick(T0 + 1)
    expect(ids.map((id) => s.get(id)?.state)).toEqual([undefined, undefined, "dead", "dead", "dead"])
  })

  it("drops dead jobs older than keepDeadMs, and no younger one", () => {
    const s = fresh({ keepDeadMs: 10_000 })
    s.begin()
    const [old] = kill(s, T0, 1)
    const [young] = kill(s, T0 + 5_000, 1)
    s.tick(T0 + 9_999)
    expect(s.get(old!)?.state).toBe("dead")
    s.tick(T0 + 10_000)
    expect(s.get(old!)).toBeUndefined()
    expect(s.get(young!)?.state).toBe("dead")
  })
})

describe("delete and purge", () => {
  it("delete removes a job in any state but running, frees its idempotency key, and answers the job as it was", () => {
    const s = fresh()
    s.begin()
    const [queued] = enqueue(s, T0, { type: "a", idempotencyKey: "k" })
    const gone = right(s.apply({ _tag: "Delete", id: queued!.id }, T0, secrets))
    expect(gone).toMatchObject({ id: queued!.id, state: "queued" })
    expect(s.get(queued!.id)).toBeUndefined()
    expect(enqueue(s, T0, { type: "a", idempotencyKey: "k" })[0]!.id).not.toBe(queued!.id)
    expect(tagOf(s.apply({ _tag: "Delete", id: "job-404" as JobId }, T0, secrets))).toBe("JobNotFound")
  })

  it("delete refuses a running job, saying to cancel it first; after the cancel it goes", () => {
    const s = fresh()
    s.begin()
    enqueue(s, T0, { type: "a" })
    const { job: running } = claimOne(s, T0)
    const before = snapshot(s)
    const refused = left(s.apply({ _tag: "Delete", id: running.id }, T0, secrets))
    expect(refused._tag).toBe("InvalidTransition")
    expect(refused.message).toBe(
      `cannot delete job ${running.id}: it is running; cancel it first (that revokes its worker's lease), then delete it`
    )
    expect(snapshot(s)).toEqual(before)
    right(cancel(s, T0, running.id))
    expect(right(s.apply({ _tag: "Delete", id: running.id }, T0, secrets)).state).toBe("cancelled")
  })

  it("purge removes every job of a state, of one type when given, answers how many, and refuses running", () => {
    const s = fresh()
    s.begin()
    enqueue(s, T0, { type: "a" }, { type: "b" }, { type: "a" }, { type: "a", delayMs: 1_000 })
    expect(right(s.apply({ _tag: "Purge", state: "queued", type: "a" }, T0, secrets))).toBe(2)
    expect(s.stats().counts).toMatchObject({ queued: 1, delayed: 1 })
    expect(right(s.apply({ _tag: "Purge", state: "queued" }, T0, secrets))).toBe(1)
    expect(right(s.apply({ _tag: "Purge", state: "dead" }, T0, secrets))).toBe(0)
    expect(tagOf(s.apply({ _tag: "Purge", state: "running" }, T0, secrets))).toBe("InvalidRequest")
    expect(s.stats().counts).toMatchObject({ queued: 0, delayed: 1 })
  })
})

describe("promote and priority", () => {
  it("promote makes a delayed or retry-waiting job claimable now; a queued one is claimable already", () => {
    const s = fresh()
    s.begin()
    const [delayed] = enqueue(s, T0, { type: "a", delayMs: 60_000 })
    const promoted = right(s.apply({ _tag: "Promote", id: delayed!.id }, T0 + 1, secrets))
    expect(promoted).toMatchObject({ state: "queued", runAt: T0 + 1 })
    expect(claimOne(s, T0 + 1).job.id).toBe(delayed!.id)
    const [waiting] = enqueue(s, T0, { type: "b", backoff: fixed(60_000) })
    right(fail(s, T0 + 2, claimOne(s, T0 + 2, { types: ["b"] }).token, "oops"))
    expect(job(s, waiting!.id).state).toBe("failed-waiting-retry")
    expect(right(s.apply({ _tag: "Promote", id: waiting!.id }, T0 + 3, secrets))).toMatchObject({
      state: "queued",
      attempts: 1
    })
    const refused = left(s.apply({ _tag: "Promote", id: waiting!.id }, T0 + 3, secrets))
    expect(refused.message).toBe(`cannot promote job ${waiting!.id}: it is queued; it is claimable already`)
  })

  it("a new priority reorders the queue; a running job has none to change", () => {
    const s = fresh()
    s.begin()
    const [first, second] = enqueue(s, T0, { type: "a" }, { type: "a" })
    right(s.apply({ _tag: "SetPriority", id: second!.id, priority: -5 }, T0, secrets))
    expect(claimOne(s, T0).job.id).toBe(second!.id)
    expect(tagOf(s.apply({ _tag: "SetPriority", id: second!.id, priority: 1 }, T0, secrets))).toBe("InvalidTransition")
    expect(right(s.apply({ _tag: "SetPriority", id: first!.id, priority: 3 }, T0, secrets)).priority).toBe(3)
  })

  it("workers: the jobs each holds and its latest claim or heartbeat", () => {
    const s = fresh()
    s.begin()
    enqueue(s, T0, { type: "a" }, { type: "a" }, { type: "a" })
    const first = claimOne(s, T0, { workerId: "w1", leaseMs: 5_000 })
    claimOne(s, T0 + 100, { workerId: "w1" })
    claimOne(s, T0 + 200, { workerId: "w2" })
    right(heartbeat(s, T0 + 300, first.token))
    expect([...s.workers()].sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: "w1", jobs: 2, lastSeenAt: T0 + 300 },
      { id: "w2", jobs: 1, lastSeenAt: T0 + 200 }
    ])
  })
})

describe("takeover", () => {
  it("bumps the epoch, keeps running leases valid, and grants each at least its TTL from now", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "a" }, { type: "a" })
    const short = claimOne(s, T0, { leaseMs: 1_000 })
    const long = claimOne(s, T0, { leaseMs: 60_000 })
    commit(s)
    s.begin()
    s.takeover({ id: "leader-2", url: "http://b:2", since: T0 + 900 }, T0 + 900)
    commit(s)
    expect(s.epoch).toBe(1)
    expect(s.leader).toEqual({ id: "leader-2", url: "http://b:2", since: T0 + 900 })
    expect(job(s, "job-1").lease).toMatchObject({ expiresAt: T0 + 1_900, epoch: 0 })
    expect(job(s, "job-2").lease).toMatchObject({ expiresAt: T0 + 60_900, epoch: 0 })
    // old tokens still work
    expect(right(heartbeat(s, T0 + 1_000, long.token)).expiresAt).toBe(T0 + 61_000)
    s.tick(T0 + 1_899)
    expect(job(s, "job-1").state).toBe("running")
    s.tick(T0 + 1_900)
    expect(job(s, "job-1").state).not.toBe("running")
    expect(tagOf(complete(s, T0 + 1_900, short.token))).toBe("LeaseLost")
    // new claims carry the new epoch
    const fresh3 = claimOne(s, T0 + 2_000)
    expect(parseLeaseToken(fresh3.token)?.epoch).toBe(1)
    expect(right(complete(s, T0 + 2_001, fresh3.token)).state).toBe("completed")
  })

  it("a lease that expired before the takeover (not yet ticked) gets the grace too", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" })
    const { token } = claimOne(s, T0, { leaseMs: 1_000 })
    s.takeover({ id: "leader-2", url: "http://b:2", since: T0 + 5_000 }, T0 + 5_000)
    s.tick(T0 + 5_999)
    expect(right(heartbeat(s, T0 + 5_999, token)).expiresAt).toBe(T0 + 6_999)
  })
})

describe("rollback", () => {
  /** A state with a job in every state, committed. */
  const busy = () => {
    const s = fresh({ keepFinished: 100 })
    enqueue(s, T0, ...Array.from({ length: 8 }, (_, i) => ({ type: i % 2 ? "a" : "b", backoff: fixed(1_000) })))
    enqueue(s, T0, { type: "a", delayMs: 5_000 })
    const claimed = claim(s, T0, { max: 5, leaseMs: 2_000 })
    right(complete(s, T0 + 1, claimed[0]!.token, { r: 1 }))
    right(fail(s, T0 + 1, claimed[1]!.token, "x"))
    right(fail(s, T0 + 1, claimed[2]!.token, "y", { retryable: false }))
    right(cancel(s, T0 + 1, "job-6"))
    commit(s)
    return { s, running: claimed.slice(3) }
  }

  it("a whole-batch rollback restores exactly the previous state", () => {
    const { s, running } = busy()
    const before = snapshot(s)
    s.begin()
    s.tick(T0 + 1_500)
    enqueue(s, T0 + 1_500, { type: "a", idempotencyKey: "new" })
    claim(s, T0 + 1_500, { max: 2 })
    right(heartbeat(s, T0 + 1_500, running[0]!.token, { progress: 1 }))
    right(complete(s, T0 + 1_500, running[1]!.token))
    right(retry(s, T0 + 1_500, "job-3"))
    right(cancel(s, T0 + 1_500, "job-2"))
    right(s.apply({ _tag: "Pause", type: "a" }, T0 + 1_500, secrets))
    right(s.apply({ _tag: "RetryDead" }, T0 + 1_500, secrets))
    s.takeover({ id: "other", url: "http://o", since: T0 + 1_500 }, T0 + 1_500)
    s.tick(T0 + 10_000)
    expect(snapshot(s).text).not.toBe(before.text)
    s.rollback()
    expect(snapshot(s)).toEqual(before)
    expect(s.committed(s.seq + 1, "x", 1)).toEqual([])
  })

  it("a rolled-back claim's job is claimable again, exactly once", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "a" })
    commit(s)
    s.begin()
    expect(claimIds(s, T0, { max: 1 })).toEqual(["job-1"])
    s.rollback()
    s.begin()
    expect(claimIds(s, T0, { max: 10 })).toEqual(["job-1", "job-2"])
    expect(claimIds(s, T0, { max: 10 })).toEqual([])
    commit(s)
    expect(s.stats().counts.running).toBe(2)
  })

  it("a rolled-back claim, cancel or requeue never duplicates a job in the claim order", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "a" })
    commit(s)
    for (let i = 0; i < 3; i++) {
      s.begin()
      const { token } = claimOne(s, T0)
      right(release(s, T0, token))
      right(cancel(s, T0, "job-2"))
      right(retry(s, T0, "job-2"))
      s.rollback()
    }
    s.begin()
    expect(claimIds(s, T0, { max: 10 })).toEqual(["job-1", "job-2"])
    expect(claimIds(s, T0, { max: 10 })).toEqual([])
  })

  it("rolling back to a savepoint keeps what came before it", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" })
    commit(s)
    s.begin()
    enqueue(s, T0 + 1, { type: "b" })
    const afterEnqueue = snapshot(s)
    const savepoint = s.savepoint()
    const { token } = claimOne(s, T0 + 2)
    right(complete(s, T0 + 2, token))
    enqueue(s, T0 + 2, { type: "c" })
    s.rollback(savepoint)
    expect(snapshot(s)).toEqual(afterEnqueue)
    // only the events of what was kept are reported
    const events = s.committed(s.seq + 1, "leader-1:2", 1)
    expect(events.map((e) => [e.kind, e.jobId])).toEqual([["enqueued", "job-2"]])
    expect(claimIds(s, T0 + 3, { max: 10 })).toEqual(["job-1", "job-2"])
  })

  it("a rollback after retention removed jobs restores them (same content)", () => {
    const s = fresh({ keepFinished: 0 })
    enqueue(s, T0, { type: "a" }, { type: "a" })
    right(complete(s, T0, claimOne(s, T0).token))
    commit(s)
    const before = snapshot(s)
    s.begin()
    s.tick(T0 + 1)
    expect(s.get("job-1")).toBeUndefined()
    s.rollback()
    expect(job(s, "job-1").state).toBe("completed")
    expect(canonical(snapshot(s).text)).toEqual(canonical(before.text))
    expect(s.stats()).toEqual(before.stats)
  })

  it("a failed command rolled back to its savepoint leaves no trace (as GroupCommit does)", () => {
    const s = fresh({ maxPayloadBytes: 10 })
    enqueue(s, T0, { type: "a" })
    commit(s)
    const before = snapshot(s)
    s.begin()
    s.tick(T0)
    const savepoint = s.savepoint()
    expect(tagOf(s.apply({ _tag: "Enqueue", jobs: [{ type: "a", payload: "x".repeat(50) }] }, T0, secrets))).toBe(
      "PayloadTooLarge"
    )
    s.rollback(savepoint)
    expect(s.committed(s.seq, s.commitId, s.bytes)).toEqual([])
    expect(snapshot(s)).toEqual(before)
  })
})

describe("encoding", () => {
  /** A state with a job in every state, a leader, pauses and a heartbeat with progress. */
  const everything = () => {
    const s = fresh()
    s.takeover({ id: "leader-1", url: "http://a:1", since: T0 }, T0)
    enqueue(
      s,
      T0,
      ...Array.from({ length: 7 }, (_, i) => ({ type: i % 2 ? "a" : "b", payload: { i }, backoff: fixed(1_000) }))
    )
    enqueue(s, T0, { type: "a", delayMs: 5_000, idempotencyKey: "k", priority: -3 })
    const claimed = claim(s, T0, { max: 5 })
    right(complete(s, T0 + 1, claimed[0]!.token, { r: [1, 2] }))
    right(fail(s, T0 + 1, claimed[1]!.token, "x"))
    right(fail(s, T0 + 1, claimed[2]!.token, "y", { retryable: false }))
    right(heartbeat(s, T0 + 1, claimed[3]!.token, { progress: { pct: 10 } }))
    right(cancel(s, T0 + 1, "job-6"))
    right(s.apply({ _tag: "Pause", type: "b" }, T0 + 1, secrets))
    commit(s)
    return s
  }

  it("encode → JSON.parse → Schema decode → fromFile → encode keeps every field", () => {
    const s = everything()
    const text = s.toJson(s.seq, s.commitId)
    const back = reload(s)
    expect(canonical(back.toJson(back.seq, back.commitId))).toEqual(canonical(text))
    expect(back.stats()).toEqual({ ...s.stats(), stateBytes: Buffer.byteLength(text) })
    expect(back.epoch).toBe(1)
    expect(back.leader).toEqual(s.leader)
    // and it behaves the same: claim order, tokens, idempotency keys, timers
    for (const state of [s, back]) {
      secrets = testSecrets()
      state.begin()
      state.tick(T0 + 5_000)
      // job-8 (priority -3, delayed until now), job-2 (its retry wait is over); job-7 is of paused type b
      expect(claimIds(state, T0 + 5_000, { max: 10 })).toEqual(["job-8", "job-2"])
      expect(enqueueIds(state, T0 + 5_000, { type: "a", idempotencyKey: "k" })).toEqual(["job-8"])
      expect(enqueueIds(state, T0 + 5_000, { type: "a" })).toEqual(["job-9"])
    }
    expect(canonical(back.toJson(9, "z"))).toEqual(canonical(s.toJson(9, "z")))
  })

  it("a state of queued jobs survives the round trip byte for byte", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a", payload: { z: 1, a: [1, "two"] } }, { type: "b", delayMs: 10, idempotencyKey: "k" })
    commit(s)
    const text = s.toJson(s.seq, s.commitId)
    expect(reload(s).toJson(s.seq, s.commitId)).toBe(text)
  })

  it("after one decode, the encoding is a fixed point", () => {
    const once = reload(everything())
    const text = once.toJson(once.seq, once.commitId)
    expect(reload(once).toJson(once.seq, once.commitId)).toBe(text)
  })

  it("format 2 leaves out the fields at their usual value; a format 1 file (every field) reads the same", () => {
    const plain = fresh()
    enqueue(plain, T0, { type: "a" })
    commit(plain)
    expect((JSON.parse(plain.toJson(plain.seq, plain.commitId)) as { jobs: Array<unknown> }).jobs).toEqual([
      { id: "job-1", type: "a", payload: null, state: "queued", maxAttempts: 3, seq: 1, createdAt: T0 }
    ])
    const s = everything()
    const text = s.toJson(s.seq, s.commitId)
    // what a format 1 broker wrote: every job in full
    const formatOne = { ...(JSON.parse(text) as object), format: 1, jobs: s.list({ limit: 1_000 }).jobs }
    const fromOne = QueueState.fromFile(decodeFile(formatOne), Buffer.byteLength(text), s.limits)
    expect(canonical(fromOne.toJson(s.seq, s.commitId))).toEqual(canonical(text))
    expect(Buffer.byteLength(JSON.stringify(formatOne))).toBeGreaterThan(Buffer.byteLength(text))
  })

  it("a malformed job is refused with the field that is wrong", () => {
    const file = JSON.parse(everything().toJson(1, "c")) as { jobs: Array<Record<string, unknown>> }
    file.jobs[2] = { ...file.jobs[2], priority: "high" }
    const result = Schema.decodeUnknownEither(QueueFile)(file)
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      const message = ParseResult.TreeFormatter.formatErrorSync(result.left)
      expect(message).toContain(`["jobs"]`)
      expect(message).toContain(`[2]`)
      expect(message).toContain(`["priority"]`)
      expect(message).toContain(`actual "high"`)
    }
  })

  it("the header carries format, epoch, seq and commitId; an unknown format is refused", () => {
    const s = everything()
    const file = JSON.parse(s.toJson(7, "leader-1:7")) as Record<string, unknown>
    expect(file).toMatchObject({ format: 5, epoch: 1, seq: 7, commitId: "leader-1:7", nextJobSeq: 9 })
    expect(Either.isLeft(Schema.decodeUnknownEither(QueueFile)({ ...file, format: 6 }))).toBe(true)
  })

  /**
   * Payloads whose JSON is easy to get wrong when it is written into a job's text rather than
   * with it: escapes, unicode (a lone surrogate too), numbers JSON writes its own way, keys
   * named as the job's, fields whose `undefined` JSON drops.
   */
  const awkwardPayloads: ReadonlyArray<unknown> = [
    undefined,
    null,
    "",
    "plain",
    "quote \" and backslash \\ and \"payload\":null",
    "\n\t\r\b\f \u0000 \u001f \u007f \u2028 \u2029",
    "é 日本語 😀 \ud800 lone \udfff",
    0,
    -0,
    1e21,
    1e-7,
    -1.5e300,
    Number.MAX_SAFE_INTEGER,
    true,
    [],
    {},
    [1, "two", null, [3, [4]], { five: 5 }, undefined],
    { payload: null, id: "job-9", "\"payload\":null": "\"payload\":null", nested: { payload: { payload: null } } },
    { kept: 1, dropped: undefined, deep: { dropped: undefined, kept: [undefined] } },
    { "é": "😀", "": "", "a\"b": "c\\d", "0": 0, "-0": -0 },
    new Date(T0),
    Array.from({ length: 40 }, (_, i) => ({ i, text: "x".repeat(i), n: i / 3 }))
  ]

  /** What a job's stored bytes must be: as the state wrote every job before payloads were written in. */
  const storedText = (jobs: ReadonlyArray<Job>) => jobs.map((j) => JSON.stringify(storedJob(j))).join(",")

  it("an enqueued job's stored bytes are its JSON whatever its payload, in the checkpoint and in the log entry", () => {
    const s = fresh()
    s.begin()
    const options: Array<EnqueueOptions> = awkwardPayloads.map((payload, i) => ({
      type: i % 3 === 0 ? "a" : i % 3 === 1 ? "t\"y\\pé \"payload\":null" : "😀",
      payload,
      ...(i % 2 === 0 ? { idempotencyKey: `k"${i}"\\` } : {}),
      ...(i % 4 === 1 ? { delayMs: 10, priority: -2, maxAttempts: 7, backoff: fixed(5) } : {}),
      ...(i % 5 === 2 ? { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", timeoutMs: 9 } : {}),
      // The default backoff with the fields written only when not their defaults.
      ...(i % 4 === 3 ? { priority: i % 8 === 3 ? 4 : -0, runAt: i % 8 === 3 ? T0 + 5 : T0, maxAttempts: 2 } : {})
    }))
    // A key twice in one batch: the second option's payload is measured and never stored.
    options.push({ type: "a", payload: "not stored", idempotencyKey: options[0]!.idempotencyKey! })
    const jobs = enqueue(s, T0, ...options).slice(0, -1)
    jobs.push(...enqueue(s, T0 + 1, ...awkwardPayloads.map((payload) => ({ type: "one", payload }))))
    const flow = { type: "p", payload: awkwardPayloads[6], children: [{ type: "c", payload: awkwardPayloads[17] }] }
    jobs.push(...right(s.apply({ _tag: "EnqueueFlow", job: flow }, T0, secrets)))
    const expected = storedText(jobs)
    const { parts, length } = s.entryParts("batch", 1, "leader-1:1")
    expect(Buffer.concat(parts, length).toString("utf8")).toContain(`"put":[${expected}]`)
    expect(commit(s)).toContain(`"jobs":[${expected}]}`)
  })

  it("any JSON payload is stored as its JSON", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.array(
          FastCheck.record({ type: FastCheck.string({ minLength: 1 }), payload: FastCheck.jsonValue() }),
          { minLength: 1, maxLength: 5 }
        ),
        (options) => {
          const s = fresh({ maxPayloadBytes: 1_000_000 })
          const jobs = enqueue(s, T0, ...options)
          expect(s.toJson(1, "c")).toContain(`"jobs":[${storedText(jobs)}]}`)
        }
      ),
      { seed: 20_261_206, numRuns: 300 }
    )
  })

  it("any enqueued job's stored bytes are its JSON, whichever of its options it was given", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.array(
          FastCheck.record({
            type: FastCheck.string({ minLength: 1, maxLength: 20, unit: "binary" }),
            payload: FastCheck.jsonValue(),
            priority: FastCheck.integer({ min: -1000, max: 1000 }),
            delayMs: FastCheck.integer({ min: 0, max: 100_000 }),
            runAt: FastCheck.integer({ min: 0, max: T0 + 100_000 }),
            maxAttempts: FastCheck.integer({ min: 1, max: 100 }),
            backoff: FastCheck.constantFrom(defaultBackoff, { ...defaultBackoff }, fixed(7)),
            idempotencyKey: FastCheck.string({ minLength: 1, maxLength: 20, unit: "binary" }),
            traceparent: FastCheck.constant("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            timeoutMs: FastCheck.integer({ min: 1, max: 100_000 })
          }, { requiredKeys: ["type"] }),
          { minLength: 1, maxLength: 5 }
        ),
        (options) => {
          const s = fresh({ maxPayloadBytes: 1_000_000 })
          const jobs = enqueue(s, T0, ...options)
          expect(s.toJson(1, "c")).toContain(`"jobs":[${storedText(jobs)}]}`)
        }
      ),
      { seed: 20_261_206, numRuns: 300 }
    )
  })

  it("an enqueue turns each payload to JSON once: its encode writes in the text the size check made", () => {
    let calls = 0
    const payload = { toJSON: () => ({ call: ++calls }) }
    const s = fresh()
    const [added] = enqueue(s, T0, { type: "a", payload })
    commit(s)
    expect(calls).toBe(1)
    expect(JSON.parse(s.toJson(1, "c")).jobs[0].payload).toEqual({ call: 1 })
    expect(added!.payload).toBe(payload)
  })

  it("cached job JSON is refreshed when a job changes", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" }, { type: "a" })
    const first = s.toJson(1, "c")
    expect(s.toJson(1, "c")).toBe(first)
    const { token } = claimOne(s, T0)
    const second = decodeFile(JSON.parse(s.toJson(1, "c")))
    expect(second.jobs.map((j) => j.state)).toEqual(["running", "queued"])
    expect(second.jobs).toEqual(s.list({}).jobs)
    right(complete(s, T0 + 1, token))
    expect(decodeFile(JSON.parse(s.toJson(1, "c"))).jobs[0]!.state).toBe("completed")
  })
})

describe("stats and list", () => {
  it("stats counts equal a recount from list; list pages by seq and filters", () => {
    const s = fresh()
    enqueue(
      s,
      T0,
      ...Array.from(
        { length: 25 },
        (_, i) => ({ type: ["a", "b", "c"][i % 3]!, ...(i % 5 === 0 ? { delayMs: 1 } : {}) })
      )
    )
    const claimed = claim(s, T0, { max: 6 })
    right(complete(s, T0, claimed[0]!.token))
    right(fail(s, T0, claimed[1]!.token, "x", { retryable: false }))
    right(cancel(s, T0, "job-25"))
    const all: Array<Job> = []
    let after: number | undefined
    for (;;) {
      const page = s.list({ limit: 4, ...(after === undefined ? {} : { after }) })
      expect(page.jobs.length).toBeLessThanOrEqual(4)
      all.push(...page.jobs)
      if (page.next === undefined) break
      after = page.next
    }
    expect(all.map((j) => j.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1))
    const stats = s.stats()
    for (const state of Object.keys(stats.counts) as Array<keyof typeof stats.counts>) {
      expect(stats.counts[state]).toBe(all.filter((j) => j.state === state).length)
      expect(s.list({ state, limit: 1_000 }).jobs.length).toBe(stats.counts[state])
    }
    const queued = all.filter((j) => j.state === "queued")
    expect(stats.queuedByType).toEqual({
      a: queued.filter((j) => j.type === "a").length,
      b: queued.filter((j) => j.type === "b").length,
      c: queued.filter((j) => j.type === "c").length
    })
    expect(
      s.list({ type: "b", state: "queued", limit: 1_000 }).jobs.every((j) => j.type === "b" && j.state === "queued")
    )
      .toBe(true)
  })

  it("a page of big jobs ends before maxPageBytes (with one job at least) and says where the next begins", () => {
    const s = fresh({ maxPayloadBytes: 2 * 1024 * 1024 })
    const payload = "x".repeat(1024 * 1024)
    enqueue(s, T0, ...Array.from({ length: 20 }, () => ({ type: "big", payload })))
    const first = s.list({ limit: 1_000 })
    expect(first.jobs.length).toBeGreaterThan(1)
    expect(first.jobs.length).toBeLessThan(maxPageBytes / (1024 * 1024))
    expect(first.next).toBe(first.jobs[first.jobs.length - 1]!.seq)
    const seen = [...first.jobs]
    for (let after = first.next; after !== undefined;) {
      const page = s.list({ limit: 1_000, after })
      seen.push(...page.jobs)
      after = page.next
    }
    expect(seen.map((j) => j.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
  })

  it.prop(
    "every order, filter, search and page size pages through exactly the matching jobs, in order",
    [
      FastCheck.record({
        order: FastCheck.constantFrom<"asc" | "desc" | undefined>("asc", "desc", undefined),
        state: FastCheck.constantFrom<JobState | undefined>(undefined, "queued", "running", "completed", "dead"),
        type: FastCheck.constantFrom<string | undefined>(undefined, "a", "b"),
        search: FastCheck.constantFrom<string | undefined>(undefined, "apple", "pear", "job-1", "boom", "\"n\":3"),
        limit: FastCheck.integer({ min: 1, max: 7 }),
        committed: FastCheck.boolean()
      })
    ],
    ([query]) => {
      const s = fresh()
      enqueue(
        s,
        T0,
        ...Array.from(
          { length: 30 },
          (_, i) => ({ type: i % 3 === 0 ? "a" : "b", payload: { fruit: i % 2 === 0 ? "apple" : "pear", n: i % 5 } })
        )
      )
      const claimed = claim(s, T0, { max: 8 })
      right(complete(s, T0, claimed[0]!.token))
      right(fail(s, T0, claimed[1]!.token, "boom", { retryable: false }))
      // A committed job is searched in its stored bytes first; one not yet encoded, as an object.
      if (query.committed) commit(s)
      const { committed: _, limit, ...filters } = query
      const defined = Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== undefined))
      const expected = s.list({ limit: 1_000 }).jobs
        .filter((j) =>
          (query.state === undefined || j.state === query.state) && (query.type === undefined || j.type === query.type)
        )
        .filter((j) =>
          query.search === undefined || j.id.includes(query.search) || (j.lastError ?? "").includes(query.search) ||
          JSON.stringify(j.payload).includes(query.search)
        )
        .map((j) => j.seq)
      if (query.order === "desc") expected.reverse()
      const seen: Array<number> = []
      let after: number | undefined
      for (let pages = 0; pages < 100; pages++) {
        const page = s.list({ ...defined, limit, ...(after === undefined ? {} : { after }) })
        expect(page.jobs.length).toBeLessThanOrEqual(limit)
        seen.push(...page.jobs.map((j) => j.seq))
        if (page.next === undefined) break
        after = page.next
      }
      expect(seen).toEqual(expected)
    },
    { fastCheck: { numRuns: 200 } }
  )

  it("a search never finds a running job by its lease's secret", () => {
    const s = fresh()
    enqueue(s, T0, { type: "a" })
    const { token } = claimOne(s, T0)
    commit(s)
    const secret = token.split("/")[3]!
    expect(s.list({ search: secret }).jobs).toEqual([])
    expect(s.list({ search: secret.slice(0, 4) }).jobs).toEqual([])
    expect(s.list({ search: "job-1" }).jobs.map((j) => j.id)).toEqual(["job-1"])
  })
})
