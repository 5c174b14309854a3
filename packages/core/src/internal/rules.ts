/**
 * The rules of a job's lifecycle (docs/architecture.md, "The state machine"): how it is
 * enqueued, claimed, kept alive, completed, failed into a retry or the dead-letter list, and put
 * back in the queue; and a takeover's and a release's change to the header. Every change goes
 * through `StateCore`'s journaled changes, so that a refused command is undone alone. The
 * commands from outside a job's run are in `operatorRules.ts`, the size caps in `sizeCaps.ts`.
 */
import {
  type Backoff,
  defaultBackoff,
  type EnqueueOptions,
  type HeldLease,
  InvalidRequest,
  type Job,
  type JobId,
  type JobState,
  type Leader,
  type LeaseToken,
  maxInstant,
  optionalJobFields,
  type OsqueueError,
  PayloadTooLarge,
  QueueFull
} from "@osqueue/types"
import * as Either from "effect/Either"
import type { ClaimResult, HeartbeatResult } from "../Command.js"
import type { Heap } from "../Heap.js"
import { recordStarts, room } from "./claimLimits.js"
import type { FlowFields } from "./flows.js"
import { type Item, itemLess } from "./jobIndex.js"
import { leased, type SecretSource, tokenOf } from "./leases.js"
import { checkSize, fullFor, jobOverheadBytes, shed } from "./sizeCaps.js"
import type { Scope, StateCore } from "./stateCore.js"

/**
 * `now + ms`, never past `maxInstant`: every time the state computes stays a safe integer that
 * queue.json holds and reads back, whatever a job stored before requests were bounded says.
 */
/** The states a job ends in: only a retry runs it again. */
export const finalStates: ReadonlySet<JobState> = new Set(["completed", "dead", "cancelled"])

export const later = (now: number, ms: number): number => Math.min(now + ms, maxInstant)

/** A number in [0, 1) fixed by the job and attempt, so jitter keeps the state machine deterministic. */
const unitHash = (text: string): number => {
  let h = 2166136261
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 16777619)
  }
  return (h >>> 0) / 4294967296
}

/** Doublings past which any exponential backoff is at its cap: keeps the power finite. */
const maxDoublings = 64

export const backoffDelay = (backoff: Backoff, failures: number, salt: string): number => {
  if (backoff._tag === "fixed") return backoff.delayMs
  const raw = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(maxDoublings, Math.max(0, failures - 1)))
  return Math.round(raw * (1 - backoff.jitter * unitHash(salt)))
}

/** A new leader takes the queue: a new epoch, and every running lease gets a full TTL of grace. */
export const takeover = (core: StateCore, leader: Leader, now: number): void => {
  core.setMeta({ ...core.meta, epoch: core.meta.epoch + 1, leader })
  for (const id of [...core.jobs.byState.running]) {
    const job = core.jobs.entries.get(id)!.job
    const lease = job.lease!
    const expiresAt = Math.max(lease.expiresAt, later(now, lease.ttlMs))
    if (expiresAt !== lease.expiresAt) core.put({ ...job, lease: { ...lease, expiresAt } })
  }
}

/** The leader steps down cleanly: followers may take over without waiting for the TTL. */
export const releaseLeadership = (core: StateCore): void => {
  if (core.meta.leader !== null) core.setMeta({ ...core.meta, leader: { ...core.meta.leader, released: true } })
}

/** `flow`: the fields of a flow's job (internal/flows.ts), by its index in `options`. */
export const enqueue = (
  core: StateCore,
  options: ReadonlyArray<EnqueueOptions>,
  now: number,
  flow?: (index: number) => FlowFields | undefined
): Either.Either<ReadonlyArray<Job>, OsqueueError> => {
  const { maxPayloadBytes, maxStateBytes, defaultMaxAttempts } = core.limits
  let added = 0
  // Each payload's JSON by its option's index: the job's encode writes it in (`Entry.of`).
  const payloads: Array<string | undefined> = new Array(options.length)
  for (let index = 0; index < options.length; index++) {
    const option = options[index]!
    if (option.idempotencyKey !== undefined && core.jobs.byKey.has(option.idempotencyKey)) continue
    const json = JSON.stringify(option.payload ?? null)
    if (json === undefined) return Either.left(new InvalidRequest({ message: "the payload is not JSON" }))
    const bytes = Buffer.byteLength(json)
    if (bytes > maxPayloadBytes) {
      return Either.left(
        new PayloadTooLarge({ what: `the payload of a ${option.type} job`, bytes, limit: maxPayloadBytes })
      )
    }
    added += bytes + jobOverheadBytes
    payloads[index] = json
  }
  // Finished jobs are shed first (oldest first; `shed` takes what they took off `pendingBytes`).
  // If that is not enough, the refusal's rollback puts them back.
  const over = core.bytes + core.pendingBytes + added - maxStateBytes
  if (over > 0) shed(core, over)
  const projected = core.bytes + core.pendingBytes + added
  if (projected > maxStateBytes) {
    return Either.left(new QueueFull({ bytes: projected, limit: maxStateBytes, retryAfterMs: fullFor(core, now) }))
  }
  core.pendingBytes += added

  let seq = core.meta.nextJobSeq
  const jobs = options.map((option, index) => {
    const existing = option.idempotencyKey === undefined ? undefined : core.jobs.byKey.get(option.idempotencyKey)
    if (existing !== undefined) return core.jobs.entries.get(existing)!.job
    const runAt = option.runAt ?? later(now, option.delayMs ?? 0)
    const fields = flow?.(index)
    // The optional fields are assigned after the literal rather than spread into it (each spread
    // is a call into V8's runtime, several times the literal's cost): the same fields in the same
    // order, `history` last.
    const job = {
      id: `job-${seq}` as JobId,
      type: option.type,
      payload: option.payload ?? null,
      state: fields?.children !== undefined ? "waiting-children" : runAt > now ? "delayed" : "queued",
      priority: option.priority ?? 0,
      attempts: 0,
      maxAttempts: option.maxAttempts ?? defaultMaxAttempts,
      claims: 0,
      backoff: option.backoff ?? defaultBackoff,
      seq,
      createdAt: now,
      runAt
    } as { -readonly [K in keyof Job]: Job[K] }
    if (option.idempotencyKey !== undefined) job.idempotencyKey = option.idempotencyKey
    if (option.traceparent !== undefined) job.traceparent = option.traceparent
    if (option.timeoutMs !== undefined) job.timeoutMs = option.timeoutMs
    if (fields !== undefined) Object.assign(job, fields)
    job.history = []
    seq++
    core.emit("enqueued", core.put(job, payloads[index]), now)
    return job
  })
  const enqueued = seq - core.meta.nextJobSeq
  if (enqueued > 0) {
    const totals = { ...core.meta.totals, enqueued: core.meta.totals.enqueued + enqueued }
    core.setMeta({ ...core.meta, nextJobSeq: seq, totals })
  }
  return Either.right(jobs)
}

export const claim = (
  core: StateCore,
  workerId: string,
  types: ReadonlyArray<string> | undefined,
  max: number,
  leaseMs: number | undefined,
  now: number,
  secrets: SecretSource
): Either.Either<ReadonlyArray<ClaimResult>, OsqueueError> => {
  const ttlMs = leaseMs ?? core.limits.defaultLeaseMs
  if (ttlMs <= 0 || ttlMs > core.limits.maxLeaseMs) {
    return Either.left(new InvalidRequest({ message: `leaseMs must be between 1 and ${core.limits.maxLeaseMs}` }))
  }
  const { all, types: pausedTypes } = core.meta.paused
  if (all) return Either.right([])
  // How many more each limited scope may start now (docs/architecture.md, "Limits on claims").
  let queueRoom = room(core, undefined, now)
  const heaps: Array<{ readonly heap: Heap<Item>; readonly type: string; room: number }> = []
  // Each type once: a type named twice must not get its limit's room twice.
  for (const type of types === undefined ? core.jobs.ready.keys() : new Set(types)) {
    const heap = core.jobs.ready.get(type)
    if (heap !== undefined && !pausedTypes.includes(type)) heaps.push({ heap, type, room: room(core, type, now) })
  }
  const claimed: Array<ClaimResult> = []
  // The starts each scope records: none without limits (`recordStarts` keeps them for rates only).
  const started = core.meta.limits.length > 0 ? new Map<Scope, number>() : undefined
  while (claimed.length < max && queueRoom > 0) {
    let best: (typeof heaps)[number] | undefined
    for (const candidate of heaps) {
      if (candidate.room <= 0) continue
      const top = core.jobs.validTop(candidate.heap)
      if (top !== undefined && (best === undefined || itemLess(top, best.heap.peek()!))) best = candidate
    }
    if (best === undefined) break
    best.room--
    queueRoom--
    started?.set(best.type, (started.get(best.type) ?? 0) + 1)
    const queued = core.jobs.entries.get(best.heap.pop()!.id)!
    // Read from its bytes now (not an object a command of this batch put, which may hold a
    // caller's values): the running job's bytes can wait until something needs them.
    const fromBytes = queued.decodedIfAny === undefined
    const job = queued.job
    const attempt = job.attempts + 1
    const lease: HeldLease = {
      workerId,
      epoch: core.meta.epoch,
      expiresAt: later(now, ttlMs),
      ttlMs,
      secret: secrets()
    }
    const next = jobWith(job, {
      state: "running",
      attempts: attempt,
      claims: job.claims + 1,
      startedAt: now,
      lease,
      history: appendHistory(core, job.history, { attempt, workerId, startedAt: now, outcome: "running" })
    })
    const running = fromBytes ? core.putClaimed(next) : core.put(next)
    core.emit("claimed", running, now)
    claimed.push({ job: running, token: tokenOf(running) })
  }
  if (started !== undefined) {
    if (claimed.length > 0) started.set(undefined, claimed.length)
    for (const [scope, count] of started) recordStarts(core, scope, count, now)
  }
  return Either.right(claimed)
}

export const heartbeat = (
  core: StateCore,
  token: LeaseToken,
  progress: unknown,
  leaseMs: number | undefined,
  now: number
): Either.Either<HeartbeatResult, OsqueueError> => {
  return Either.flatMap(leased(core, token), (job) => {
    const lease = job.lease!
    const ttlMs = leaseMs ?? lease.ttlMs
    if (ttlMs <= 0 || ttlMs > core.limits.maxLeaseMs) {
      return Either.left(new InvalidRequest({ message: `leaseMs must be between 1 and ${core.limits.maxLeaseMs}` }))
    }
    const tooLarge = progress === undefined ? undefined : checkSize(core, "the progress", progress)
    if (tooLarge !== undefined) return Either.left(tooLarge)
    const expiresAt = later(now, ttlMs)
    core.put(jobWith(job, { lease: { ...lease, expiresAt, ttlMs }, ...(progress === undefined ? {} : { progress }) }))
    return Either.right({ jobId: job.id, expiresAt })
  })
}

export const complete = (core: StateCore, job: Job, result: unknown, now: number): Either.Either<Job, OsqueueError> => {
  const tooLarge = result === undefined ? undefined : checkSize(core, "the result", result)
  if (tooLarge !== undefined) return Either.left(tooLarge)
  const totals = { ...core.meta.totals, completed: core.meta.totals.completed + 1 }
  core.setMeta({ ...core.meta, totals })
  const done = core.put(jobWith(job, {
    state: "completed",
    finishedAt: now,
    lease: undefined,
    ...(result === undefined ? {} : { result }),
    history: endAttempt(core, job, "completed", now)
  }))
  core.emit("completed", done, now)
  return Either.right(done)
}

/** Back to the queue now. A finished job gets a fresh set of attempts; its place (seq) is kept. */
export const redrive = (core: StateCore, job: Job, now: number): Job => {
  const queued = core.put(jobWith(job, {
    finishedAt: undefined,
    // A parent some of whose children have not ended waits for them again (docs/flows.md).
    state: job.children?.some((id) => job.childResults?.[id] === undefined) ? "waiting-children" : "queued",
    runAt: now,
    attempts: job.state === "failed-waiting-retry" ? job.attempts : 0
  }))
  core.emit("redriven", queued, now)
  return queued
}

/** A failed or expired attempt: retry after the backoff, or dead-letter when none are left. */
export const failAttempt = (
  core: StateCore,
  job: Job,
  error: string,
  outcome: "failed" | "expired",
  retryable: boolean,
  retryDelayMs: number | undefined,
  now: number
): Job => {
  const history = endAttempt(core, job, outcome, now, error)
  if (!retryable || job.attempts >= job.maxAttempts) {
    const totals = { ...core.meta.totals, dead: core.meta.totals.dead + 1 }
    core.setMeta({ ...core.meta, totals })
    const dead = core.put(jobWith(job, { state: "dead", finishedAt: now, lease: undefined, lastError: error, history }))
    core.emit("dead", dead, now, error)
    return dead
  }
  const delay = retryDelayMs ?? backoffDelay(job.backoff, job.attempts, `${job.id}/${job.attempts}`)
  const waiting = core.put(
    jobWith(job, {
      state: delay > 0 ? "failed-waiting-retry" : "queued",
      runAt: later(now, delay),
      lease: undefined,
      lastError: error,
      history
    })
  )
  core.emit("retrying", waiting, now, error)
  return waiting
}

const appendHistory = (core: StateCore, history: Job["history"], attempt: Job["history"][number]): Job["history"] => {
  const next = [...history, attempt]
  return next.length > core.limits.maxHistory ? next.slice(next.length - core.limits.maxHistory) : next
}

export const endAttempt = (
  core: StateCore,
  job: Job,
  outcome: Job["history"][number]["outcome"],
  now: number,
  error?: string
): Job["history"] => {
  const last = job.history[job.history.length - 1]
  if (last === undefined || last.attempt !== job.attempts || last.outcome !== "running") return job.history
  // A literal, in the order a spread of `last` gave (a spread adding `endedAt` was slow: `jobWith`).
  const ended: Job["history"][number] = error === undefined
    ? { attempt: last.attempt, workerId: last.workerId, startedAt: last.startedAt, outcome, endedAt: now }
    : { attempt: last.attempt, workerId: last.workerId, startedAt: last.startedAt, outcome, endedAt: now, error }
  return [...job.history.slice(0, -1), ended]
}

/** What a rule changes in a job: a field given a value is set, a field given `undefined` removed. */
export type JobChanges = { readonly [K in keyof Job]?: Job[K] | undefined }

/**
 * `job` with `changes`, built as one literal in `Job`'s field order, as `fromStoredJob` builds a
 * stored one. A spread that adds a field the job lacked (`{ ...job, startedAt }`) cost V8 3–4 µs
 * per added field, as the copy's hidden class keeps no transitions (docs/performance.md, "The
 * state machine's work per command"); a spread that only replaces fields is cheap, and stays.
 */
export const jobWith = (job: Job, changes: JobChanges): Job => {
  const next: Record<string, unknown> = {
    id: job.id,
    type: job.type,
    payload: "payload" in changes ? changes.payload : job.payload,
    state: changes.state ?? job.state,
    priority: changes.priority ?? job.priority,
    attempts: changes.attempts ?? job.attempts,
    maxAttempts: changes.maxAttempts ?? job.maxAttempts,
    claims: changes.claims ?? job.claims,
    backoff: changes.backoff ?? job.backoff,
    seq: job.seq,
    createdAt: job.createdAt,
    runAt: changes.runAt ?? job.runAt
  }
  for (const key of optionalJobFields) {
    const value = key in changes ? changes[key] : job[key]
    if (value !== undefined) next[key] = value
  }
  next.history = changes.history ?? job.history
  return next as unknown as Job
}
