/**
 * Limits on claims (docs/architecture.md, "Limits on claims"): how many more claims a scope (a
 * job type, or the whole queue) may start now, the start times a rate limit remembers, and the
 * commands that set and clear limits.
 */
import {
  type ClaimLimit,
  InvalidRequest,
  type LimitStatus,
  maxConcurrency,
  maxLimitedTypes,
  maxRateStarts,
  maxRateWindowMs,
  type OsqueueError
} from "@osqueue/types"
import * as Either from "effect/Either"
import type { Scope, StateCore } from "./stateCore.js"

const limitOf = (core: StateCore, scope: Scope): ClaimLimit | undefined => {
  const limits = core.meta.limits
  if (limits.length === 0) return undefined
  if (core.limitsByScope?.of !== limits) {
    core.limitsByScope = { of: limits, byScope: new Map(limits.map((limit) => [limit.type, limit])) }
  }
  return core.limitsByScope.byScope.get(scope)
}

export const running = (core: StateCore, scope: Scope): number => {
  return scope === undefined ? core.jobs.byState.running.size : core.jobs.countOf(scope, "running")
}

/** Starts of the scope within the window of `windowMs` ending at `now` (a start counts until `start + windowMs`). */
export const startsWithin = (core: StateCore, scope: Scope, windowMs: number, now: number): number => {
  const held = core.starts.get(scope) ?? []
  return held.length - firstAfter(held, now - windowMs)
}

/** How many more claims the scope's limit lets start now: `Infinity` without one. */
export const room = (core: StateCore, scope: Scope, now: number): number => {
  const limit = limitOf(core, scope)
  if (limit === undefined) return Infinity
  let room = Infinity
  if (limit.concurrency !== undefined) room = limit.concurrency - running(core, scope)
  if (limit.rate !== undefined) {
    room = Math.min(room, limit.rate.max - startsWithin(core, scope, limit.rate.windowMs, now))
  }
  return room
}

/**
 * Remembers `count` claims started at `now` in a rate-limited scope: the starts that left the
 * window are forgotten, and at most the limit's `max` newest kept (no more can count). A start
 * is never remembered before the scope's newest one: under a new leader whose clock is behind,
 * the times stay in order and the window only lasts longer.
 */
export const recordStarts = (core: StateCore, scope: Scope, count: number, now: number): void => {
  const rate = limitOf(core, scope)?.rate
  if (rate === undefined) return
  const held = core.starts.get(scope) ?? []
  const at = Math.max(now, held[held.length - 1] ?? now)
  const kept = held.slice(firstAfter(held, now - rate.windowMs))
  for (let i = 0; i < count; i++) kept.push(at)
  core.setStarts(scope, kept.length > rate.max ? kept.slice(kept.length - rate.max) : kept)
  core.startsSteps.push({ scope, added: count })
}

/** The scope forgets its starts (its rate limit was cleared). */
const dropStarts = (core: StateCore, scope: Scope): void => {
  if (!core.starts.has(scope)) return
  core.setStarts(scope, [])
  core.startsSteps.push({ scope, dropped: true })
}

/** A limit's fields that are out of bounds, named; undefined when it is a limit to keep. */
const limitProblem = (core: StateCore, limit: ClaimLimit): string | undefined => {
  const { concurrency, rate } = limit
  if (concurrency === undefined && rate === undefined) {
    return "a limit needs a concurrency, a rate or both: to remove one, clear it"
  }
  if (
    concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= maxConcurrency)
  ) {
    return `concurrency must be a whole number from 1 to ${maxConcurrency}`
  }
  if (rate !== undefined && !(Number.isInteger(rate.max) && rate.max >= 1 && rate.max <= maxRateStarts)) {
    return `a rate's max must be a whole number from 1 to ${maxRateStarts}`
  }
  if (
    rate !== undefined && !(Number.isInteger(rate.windowMs) && rate.windowMs >= 1 && rate.windowMs <= maxRateWindowMs)
  ) {
    return `a rate's windowMs must be whole milliseconds from 1 to ${maxRateWindowMs}`
  }
  return undefined
}

/** The scope's limit becomes exactly `limit`; a scope whose rate goes forgets its starts. */
export const setLimit = (
  core: StateCore,
  limit: ClaimLimit
): Either.Either<ReadonlyArray<ClaimLimit>, OsqueueError> => {
  const problem = limitProblem(core, limit)
  if (problem !== undefined) return Either.left(new InvalidRequest({ message: problem }))
  const { limits } = core.meta
  const at = limits.findIndex((other) => other.type === limit.type)
  if (
    at < 0 && limit.type !== undefined && limits.filter((other) => other.type !== undefined).length >= maxLimitedTypes
  ) {
    return Either.left(
      new InvalidRequest({
        message:
          `at most ${maxLimitedTypes} job types may have limits of their own; clear some, or limit the whole queue`
      })
    )
  }
  // Only the fields a limit has, in one order: the state, the log and answers hold the same object.
  const stored: ClaimLimit = {
    ...(limit.type === undefined ? {} : { type: limit.type }),
    ...(limit.concurrency === undefined ? {} : { concurrency: limit.concurrency }),
    ...(limit.rate === undefined ? {} : { rate: { max: limit.rate.max, windowMs: limit.rate.windowMs } })
  }
  const next = at < 0 ? [...limits, stored] : limits.map((other, i) => (i === at ? stored : other))
  core.setMeta({ ...core.meta, limits: next })
  if (stored.rate === undefined) dropStarts(core, stored.type)
  return Either.right(next)
}

export const clearLimit = (
  core: StateCore,
  type: string | undefined
): Either.Either<ReadonlyArray<ClaimLimit>, OsqueueError> => {
  const { limits } = core.meta
  if (!limits.some((limit) => limit.type === type)) return Either.right(limits)
  const next = limits.filter((limit) => limit.type !== type)
  core.setMeta({ ...core.meta, limits: next })
  dropStarts(core, type)
  return Either.right(next)
}

/**
 * Each limit, with its scope's running jobs and (with a rate) its starts in the window ending
 * at `now`; without `now`, the starts remembered (those in the window as of the scope's latest
 * claim), so that stats stay a function of the state alone.
 */
export const limitStatus = (core: StateCore, now?: number): ReadonlyArray<LimitStatus> => {
  return core.meta.limits.map((limit) => ({
    ...limit,
    running: running(core, limit.type),
    ...(limit.rate === undefined ? {} : {
      startsInWindow: now === undefined
        ? core.starts.get(limit.type)?.length ?? 0
        : startsWithin(core, limit.type, limit.rate.windowMs, now)
    })
  }))
}

/** The index of the first time in `times` (ascending) that is after `instant`. */
const firstAfter = (times: ReadonlyArray<number>, instant: number): number => {
  let low = 0
  let high = times.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (times[mid]! > instant) high = mid
    else low = mid + 1
  }
  return low
}
