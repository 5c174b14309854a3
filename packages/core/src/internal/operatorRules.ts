/**
 * The rules of the commands that act on jobs from outside their run (docs/architecture.md, "The
 * state machine"): cancel, retry, promote, a new priority, delete, purge, pause and resume. Each
 * refuses a job in a state it does not apply to with `InvalidTransition`, saying what would.
 */
import {
  InvalidRequest,
  InvalidTransition,
  type Job,
  type JobId,
  JobNotFound,
  type JobState,
  maxPausedTypes,
  type OsqueueError,
  type Paused
} from "@osqueue/types"
import * as Either from "effect/Either"
import { endAttempt, finalStates, jobWith, redrive } from "./rules.js"
import type { StateCore } from "./stateCore.js"

export const cancel = (core: StateCore, id: JobId, now: number): Either.Either<Job, OsqueueError> => {
  const job = core.jobs.entries.get(id)?.job
  if (job === undefined) return Either.left(new JobNotFound({ id }))
  if (finalStates.has(job.state)) {
    return Either.left(new InvalidTransition({ jobId: id, state: job.state, action: "cancel" }))
  }
  const cancelled = core.put(jobWith(job, {
    state: "cancelled",
    finishedAt: now,
    lease: undefined,
    history: job.state === "running" ? endAttempt(core, job, "cancelled", now) : job.history
  }))
  core.emit("cancelled", cancelled, now)
  return Either.right(cancelled)
}

export const retry = (core: StateCore, id: JobId, now: number): Either.Either<Job, OsqueueError> => {
  const job = core.jobs.entries.get(id)?.job
  if (job === undefined) return Either.left(new JobNotFound({ id }))
  if (job.state !== "dead" && job.state !== "cancelled" && job.state !== "failed-waiting-retry") {
    return Either.left(new InvalidTransition({ jobId: id, state: job.state, action: "retry" }))
  }
  return Either.right(redrive(core, job, now))
}

export const promote = (core: StateCore, id: JobId, now: number): Either.Either<Job, OsqueueError> => {
  const job = core.jobs.entries.get(id)?.job
  if (job === undefined) return Either.left(new JobNotFound({ id }))
  if (job.state !== "delayed" && job.state !== "failed-waiting-retry") {
    return Either.left(
      new InvalidTransition({
        jobId: id,
        state: job.state,
        action: "promote",
        hint: job.state === "queued" ? "it is claimable already" : "only delayed and retry-waiting jobs can be promoted"
      })
    )
  }
  const queued = core.put({ ...job, state: "queued", runAt: now })
  core.emit("promoted", queued, now)
  return Either.right(queued)
}

export const setPriority = (core: StateCore, id: JobId, priority: number): Either.Either<Job, OsqueueError> => {
  const job = core.jobs.entries.get(id)?.job
  if (job === undefined) return Either.left(new JobNotFound({ id }))
  if (
    job.state !== "queued" && job.state !== "delayed" && job.state !== "failed-waiting-retry" &&
    job.state !== "waiting-children"
  ) {
    return Either.left(
      new InvalidTransition({
        jobId: id,
        state: job.state,
        action: "change the priority of",
        hint:
          "only a job that has not started (queued, delayed, waiting to retry or for its children) has a priority to change"
      })
    )
  }
  return Either.right(job.priority === priority ? job : core.put({ ...job, priority }))
}

/** A running job is refused: its worker holds a lease, which a cancel revokes first. */
export const deleteJob = (core: StateCore, id: JobId, now: number): Either.Either<Job, OsqueueError> => {
  const job = core.jobs.entries.get(id)?.job
  if (job === undefined) return Either.left(new JobNotFound({ id }))
  if (job.state === "running") {
    return Either.left(
      new InvalidTransition({
        jobId: id,
        state: job.state,
        action: "delete",
        hint: "cancel it first (that revokes its worker's lease), then delete it"
      })
    )
  }
  core.remove(id)
  core.emit("deleted", job, now)
  return Either.right(job)
}

export const purge = (
  core: StateCore,
  state: JobState,
  type: string | undefined
): Either.Either<number, OsqueueError> => {
  if (state === "running") {
    return Either.left(
      new InvalidRequest({ message: "running jobs cannot be purged: cancel them first (that revokes their leases)" })
    )
  }
  let count = 0
  for (const id of [...core.jobs.byState[state]]) {
    if (type !== undefined && core.jobs.entries.get(id)!.type !== type) continue
    core.remove(id)
    count++
  }
  return Either.right(count)
}

export const setPaused = (
  core: StateCore,
  pause: boolean,
  type: string | undefined
): Either.Either<Paused, OsqueueError> => {
  const { all, types } = core.meta.paused
  if (pause && type !== undefined && !types.includes(type) && types.length >= maxPausedTypes) {
    return Either.left(
      new InvalidRequest({
        message: `at most ${maxPausedTypes} types may be paused one by one; resume some, or pause every type`
      })
    )
  }
  const paused: Paused = type === undefined
    ? pause
      ? { all: true, types }
      : { all: false, types: [] }
    : { all, types: pause ? (types.includes(type) ? types : [...types, type]) : types.filter((t) => t !== type) }
  core.setMeta({ ...core.meta, paused })
  return Either.right(paused)
}
