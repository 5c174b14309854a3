/**
 * The size caps (docs/architecture.md, "Limits"): a payload's, result's or progress's
 * (`checkSize`), and the whole state's — what an enqueue is taken to add before it is encoded,
 * the finished jobs shed to make room, and how long a client refused with `QueueFull` waits.
 */
import { InvalidRequest, PayloadTooLarge } from "@osqueue/types"
import type { StateCore } from "./stateCore.js"

/** A rough size of a job's JSON beyond its payload, to check the state cap before encoding. */
export const jobOverheadBytes = 400

/**
 * Removes the oldest finished (completed, cancelled) jobs until `bytes` are freed or none is
 * left. What they took counts as freed at once (off `pendingBytes`), as an enqueue's jobs count
 * as added.
 */
export const shed = (core: StateCore, bytes: number): void => {
  let freed = 0
  while (freed < bytes) {
    const item = core.jobs.oldest(core.jobs.finished)
    if (item === undefined) break
    core.jobs.finished.pop()
    freed += core.jobs.entries.get(item.id)!.size
    core.remove(item.id)
  }
  core.pendingBytes -= freed
}

/**
 * How long a client refused with `QueueFull` should wait: until the next lease ends (its job
 * finishes, and can be shed, or expires), at least a second and at most a minute; a minute when
 * no job runs, since then nothing frees space but workers claiming or an operator.
 */
export const fullFor = (core: StateCore, now: number): number => {
  for (let item = core.jobs.leases.peek(); item !== undefined; item = core.jobs.leases.peek()) {
    if (core.jobs.isLive(item, "running")) return Math.min(Math.max(item.key - now, 1_000), 60_000)
    core.jobs.leases.pop()
  }
  return 60_000
}

export const checkSize = (
  core: StateCore,
  what: string,
  value: unknown
): PayloadTooLarge | InvalidRequest | undefined => {
  const json = JSON.stringify(value)
  if (json === undefined) return new InvalidRequest({ message: `${what} is not JSON` })
  const bytes = Buffer.byteLength(json)
  const limit = core.limits.maxPayloadBytes
  return bytes > limit ? new PayloadTooLarge({ what, bytes, limit }) : undefined
}
