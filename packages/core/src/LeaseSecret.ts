/**
 * The random part of a lease token (docs/architecture.md, "Lease tokens"): the leader draws one
 * per claim and the state machine keeps it with the lease, so a token cannot be made from what
 * a job's answers show.
 */
import { leaseSecretBytes as secretBytes } from "@osqueue/types"
import { randomFillSync } from "node:crypto"

/**
 * Random bytes drawn 256 secrets at a time: one `randomBytes` call per claimed job cost about
 * 5 µs, a tenth of the claim.
 */
const pool = Buffer.alloc(secretBytes * 256)
let used = pool.length

/** A fresh secret from the system's cryptographic random source. */
export const random = (): string => {
  if (used === pool.length) {
    randomFillSync(pool)
    used = 0
  }
  const secret = pool.toString("base64url", used, used + secretBytes)
  used += secretBytes
  return secret
}
