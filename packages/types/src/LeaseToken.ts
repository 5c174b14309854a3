/**
 * Lease tokens: what a claim answers and every call on a running job must bring back
 * (`jobId/claims/epoch/secret`), how one is made and read, and the secret a job's answers leave out.
 */
import * as Schema from "effect/Schema"
import { type Job, JobId, type Lease } from "./Job.js"

/** Random bytes in a lease token's secret: 128 bits. */
export const leaseSecretBytes = 16

/** Characters of a lease token's secret: its bytes in base64url, unpadded (22). */
export const leaseSecretLength = Math.ceil((leaseSecretBytes * 8) / 6)

const secretChars = `[A-Za-z0-9_-]{${leaseSecretLength}}`
const leaseSecretPattern = new RegExp(`^${secretChars}$`)

const leaseTokenPattern = new RegExp(`^[^/]+/\\d+/\\d+(/${secretChars})?$`)

/** Longest lease token. */
const maxLeaseTokenLength = 200

/** `LeaseToken`'s verdict, by hand (`guarded` request schemas). */
export const isLeaseToken = (u: unknown): u is LeaseToken =>
  typeof u === "string" && u.length <= maxLeaseTokenLength && leaseTokenPattern.test(u)

/**
 * What a claim returns to present with the lease: `jobId/claims/epoch/secret`. `claims` counts
 * every claim of the job (no token is issued twice), `epoch` is the leader's that granted it, and
 * `secret` is random, kept by the broker with the lease and shown in no answer but the claim's:
 * the other parts are public (`GET /v1/jobs/:id`), so without it a token could be forged. A lease
 * granted by a broker that predates the secret has none, and its token is the first three parts
 * (docs/architecture.md, "Lease tokens").
 */
export const LeaseToken = Schema.String.pipe(
  Schema.maxLength(maxLeaseTokenLength, { message: () => "a lease token has at most 200 characters" }),
  Schema.pattern(leaseTokenPattern, {
    message: () => "a lease token looks like `jobId/claims/epoch/secret`, as returned by claim"
  }),
  Schema.brand("LeaseToken")
)
export type LeaseToken = typeof LeaseToken.Type

export interface LeaseTokenParts {
  readonly jobId: JobId
  readonly claims: number
  readonly epoch: number
  /** Absent in the token of a lease that has none (granted before leases had secrets). */
  readonly secret: string | undefined
}

// Branded values built with casts: the format is ours, and these run on every lease operation.
export const makeLeaseToken = ({ claims, epoch, jobId, secret }: LeaseTokenParts): LeaseToken =>
  (secret === undefined ? `${jobId}/${claims}/${epoch}` : `${jobId}/${claims}/${epoch}/${secret}`) as LeaseToken

/** The parts of a lease token, or `undefined` when it is not one. */
export const parseLeaseToken = (token: string): LeaseTokenParts | undefined => {
  let end = token.length
  let secret: string | undefined
  const last = token.lastIndexOf("/")
  if (last >= 0 && leaseSecretPattern.test(token.slice(last + 1))) {
    secret = token.slice(last + 1)
    end = last
  }
  const second = token.lastIndexOf("/", end - 1)
  const first = second <= 0 ? -1 : token.lastIndexOf("/", second - 1)
  if (first <= 0) return undefined
  const claims = token.slice(first + 1, second)
  const epoch = token.slice(second + 1, end)
  if (!/^\d{1,15}$/.test(claims) || !/^\d{1,15}$/.test(epoch)) return undefined
  return { jobId: token.slice(0, first) as JobId, claims: Number(claims), epoch: Number(epoch), secret }
}

/** A lease as the broker holds it: with its token's secret, which queue.json keeps and answers leave out. */
export type HeldLease = Lease & { readonly secret?: string }

/** The secret of the job's lease, if it is leased and the lease has one. */
export const leaseSecretOf = (job: Job): string | undefined => (job.lease as HeldLease | undefined)?.secret

/** `job` as an answer carries it: its lease without the secret (the same object when there is none). */
export const publicJob = (job: Job): Job => {
  const lease = job.lease as HeldLease | undefined
  if (lease?.secret === undefined) return job
  const { secret: _, ...rest } = lease
  return { ...job, lease: rest }
}
