/**
 * Lease tokens (docs/architecture.md, "Lease tokens"): the token a claim hands out, and the job
 * a presented token still holds, compared in time that leaks nothing of the secret.
 */
import {
  InvalidRequest,
  type Job,
  JobNotFound,
  LeaseLost,
  leaseSecretOf,
  type LeaseToken,
  makeLeaseToken,
  type OsqueueError,
  parseLeaseToken
} from "@osqueue/types"
import * as Either from "effect/Either"
import type { StateCore } from "./stateCore.js"

/** The token of the job's lease (docs/architecture.md, "Lease tokens"). */
export const tokenOf = (job: Job): LeaseToken =>
  makeLeaseToken({ jobId: job.id, claims: job.claims, epoch: job.lease?.epoch ?? 0, secret: leaseSecretOf(job) })

/**
 * Where a claim's lease secrets come from: the leader's crypto-random source in a broker
 * (`LeaseSecret.random`), anything repeatable in a test. An input like `now`, so the state
 * machine stays deterministic given its inputs.
 */
export type SecretSource = () => string

/** Compares two secrets in time that depends on their length only. */
const sameSecret = (a: string, b: string): boolean => {
  if (a.length !== b.length) return false
  let difference = 0
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return difference === 0
}

/** The job holding this lease token, or why it does not. */
export const leased = (core: StateCore, token: LeaseToken): Either.Either<Job, OsqueueError> => {
  const parsed = parseLeaseToken(token)
  if (parsed === undefined) {
    return Either.left(
      new InvalidRequest({ message: "the lease token is not one a claim returned (jobId/claims/epoch/secret)" })
    )
  }
  const job = core.jobs.entries.get(parsed.jobId)?.job
  if (job === undefined) return Either.left(new JobNotFound({ id: parsed.jobId }))
  if (job.state !== "running") {
    return Either.left(new LeaseLost({ jobId: job.id, reason: `the job is ${job.state}` }))
  }
  if (job.claims !== parsed.claims || job.lease?.epoch !== parsed.epoch) {
    return Either.left(
      new LeaseLost({ jobId: job.id, reason: `the job was claimed again since (attempt ${job.attempts} holds it)` })
    )
  }
  // A lease granted before leases had secrets has none: its three-part token still holds it.
  const held = leaseSecretOf(job)
  const presented = parsed.secret
  if (held === undefined ? presented !== undefined : presented === undefined || !sameSecret(held, presented)) {
    return Either.left(new LeaseLost({ jobId: job.id, reason: "the token's secret is not the lease's" }))
  }
  return Either.right(job)
}
