/**
 * One command applied under its own savepoint: dispatched to its rule, and the jobs it put
 * checked and encoded, so that nothing one command carries can fail the commit of the others
 * (docs/architecture.md, "Hostile input").
 */
import { InvalidRequest, isJob, Job, type OsqueueError, ScheduleNotFound } from "@osqueue/types"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { Command, ResultOf } from "../Command.js"
import { clearLimit, setLimit } from "./claimLimits.js"
import { enqueueFlow, settle } from "./flows.js"
import * as Journal from "./journal.js"
import { leased, type SecretSource } from "./leases.js"
import { cancel, deleteJob, promote, purge, retry, setPaused, setPriority } from "./operatorRules.js"
import { claim, complete, endAttempt, enqueue, failAttempt, heartbeat, jobWith, redrive } from "./rules.js"
import { upsertSchedule } from "./schedules.js"
import type { StateCore } from "./stateCore.js"

/** Why a command that threw was refused, without walking what it carried. */
const reasonOf = (defect: unknown): string =>
  defect instanceof Error ? `${defect.name}: ${defect.message}` : "it could not be applied"

const decodeJob = Schema.decodeUnknownEither(Job)

/**
 * Applies one command under its own savepoint, and encodes every job it put. A command that is
 * refused, throws (a value `JSON.stringify` cannot write, nested too deep for the stack) or
 * would store a job that `Job` refuses is undone alone and answered with its error: nothing
 * one command carries can fail the commit of the others (docs/architecture.md, "Hostile
 * input"). `secrets` gives each lease a claim grants its secret.
 */
export const apply = <C extends Command>(
  core: StateCore,
  command: C,
  now: number,
  secrets: SecretSource
): Either.Either<ResultOf<C>, OsqueueError> => {
  const alone = core.journal === undefined
  if (alone) core.journal = []
  const savepoint = Journal.savepoint(core)
  try {
    const result = dispatch(core, command, now, secrets)
    if (Either.isRight(result)) settle(core, savepoint.journal, now)
    const refused = Either.isLeft(result) ? result.left : checkJobsSince(core, savepoint)
    if (refused === undefined) return result as Either.Either<ResultOf<C>, OsqueueError>
    Journal.rollback(core, savepoint)
    return Either.left(refused)
  } catch (defect) {
    Journal.rollback(core, savepoint)
    return Either.left(new InvalidRequest({ message: `the ${command._tag} request was refused: ${reasonOf(defect)}` }))
  } finally {
    if (alone) core.journal = undefined
  }
}

/**
 * Checks and encodes the jobs put since `savepoint`: each must be a `Job` (so that every answer
 * carrying it encodes, and queue.json reads back) and its JSON must be writable. Throws what
 * the encode throws. A claimed job whose bytes wait until needed (`Entry.claimed`) is only
 * checked: its values are JSON just read, and the guard checks what the claim added.
 */
const checkJobsSince = (core: StateCore, savepoint: Journal.Savepoint): InvalidRequest | undefined => {
  const journal = core.journal!
  for (let i = savepoint.journal; i < journal.length; i++) {
    const undo = journal[i]!
    if (!Journal.isJobUndo(undo)) continue
    const entry = core.jobs.entries.get(undo.id)
    if (entry === undefined || entry.prepared) continue
    const job: unknown = entry.job
    // The guard first (a fraction of a microsecond); the schema only for a job it refuses.
    if (!isJob(job)) {
      const decoded = decodeJob(job)
      if (Either.isLeft(decoded)) {
        const problem = ParseResult.TreeFormatter.formatErrorSync(decoded.left)
        return new InvalidRequest({ message: `the request would leave job ${undo.id} unreadable: ${problem}` })
      }
    }
    if (!entry.bytesWhenNeeded) entry.prepare()
  }
  return undefined
}

const dispatch = (
  core: StateCore,
  command: Command,
  now: number,
  secrets: SecretSource
): Either.Either<unknown, OsqueueError> => {
  switch (command._tag) {
    case "Enqueue":
      return enqueue(core, command.jobs, now)
    case "EnqueueFlow":
      return enqueueFlow(core, command, now)
    case "Claim":
      return claim(core, command.workerId, command.types, command.max, command.leaseMs, now, secrets)
    case "Heartbeat":
      return heartbeat(core, command.token, command.progress, command.leaseMs, now)
    case "Complete":
      return Either.flatMap(leased(core, command.token), (job) => complete(core, job, command.result, now))
    case "CompleteAndClaim":
      // Under the command's one savepoint: a claim that fails undoes the completion too.
      return Either.flatMap(
        Either.flatMap(leased(core, command.token), (job) => complete(core, job, command.result, now)),
        () => claim(core, command.workerId, command.types, command.max, command.leaseMs, now, secrets)
      )
    case "Fail":
      return Either.map(leased(core, command.token), (job) => {
        core.emit("failed", job, now, command.error)
        return failAttempt(core, job, command.error, "failed", command.retryable ?? true, command.retryDelayMs, now)
      })
    case "Release":
      return Either.map(leased(core, command.token), (job) => {
        core.emit("released", job, now)
        return core.put(jobWith(job, {
          state: "queued",
          attempts: job.attempts - 1,
          runAt: now,
          lease: undefined,
          history: endAttempt(core, job, "released", now)
        }))
      })
    case "Cancel":
      return cancel(core, command.id, now)
    case "Retry":
      return retry(core, command.id, now)
    case "RetryDead": {
      let count = 0
      for (const id of [...core.jobs.byState.dead]) {
        const job = core.jobs.entries.get(id)!.job
        if (command.type !== undefined && job.type !== command.type) continue
        redrive(core, job, now)
        count++
      }
      return Either.right(count)
    }
    case "Promote":
      return promote(core, command.id, now)
    case "SetPriority":
      return setPriority(core, command.id, command.priority)
    case "Delete":
      return deleteJob(core, command.id, now)
    case "Purge":
      return purge(core, command.state, command.type)
    case "Pause":
    case "Resume":
      return setPaused(core, command._tag === "Pause", command.type)
    case "UpsertSchedule":
      return upsertSchedule(core, command.schedule, Math.floor(now))
    case "RemoveSchedule": {
      const held = core.schedules.get(command.id)
      if (held === undefined) return Either.left(new ScheduleNotFound({ id: command.id }))
      core.removeSchedule(command.id)
      return Either.right(held.schedule)
    }
    case "SetLimit":
      return setLimit(core, command.limit)
    case "ClearLimit":
      return clearLimit(core, command.type)
  }
}
