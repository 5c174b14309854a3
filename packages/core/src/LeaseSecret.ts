/**
 * The random part of a lease token (docs/architecture.md, "Lease tokens"): the leader draws one
 * per claim and the state machine keeps it with the lease, so a token cannot be made from what
 * a job's answers show.
 */
import { randomBytes } from "node:crypto"

/** Bytes of randomness per secret: 128 bits, 22 characters of base64url. */
const secretBytes = 16

/** A fresh secret from the system's cryptographic random source. */
export const random = (): string => randomBytes(secretBytes).toString("base64url")
