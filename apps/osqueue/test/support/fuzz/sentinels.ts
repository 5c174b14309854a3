/**
 * 200 jobs put in place before the fuzz, in every state a probe cannot reach by the rules (no
 * probe names their ids, none is claimable): delayed ten years, running under an hour's lease
 * whose secret only the setup knows, waiting ten years for a retry, completed, cancelled. After
 * the fuzz each must be exactly as it was, on the broker that took the fuzz and on a fresh one
 * started on the same directory (so queue.json still reads back). Also the jobs the fuzz may act
 * on, and leases of some of them for its probes.
 */
import { maxDelayMs } from "@osqueue/types"
import { FastCheck as fc } from "effect"
import { isDeepStrictEqual } from "node:util"
import { type Broker, must } from "./harness.js"
import type { Lease } from "./templates.js"

interface JobLike {
  readonly id: string
  readonly state: string
  readonly lease?: { readonly expiresAt?: number }
}

interface Claimed {
  readonly job: JobLike
  readonly token: string
}

export interface Setup {
  /** Each sentinel as the broker answered it after the setup. */
  readonly sentinels: ReadonlyMap<string, JobLike>
  /** Jobs the fuzz may act on (by id). */
  readonly fuzzIds: ReadonlyArray<string>
  /** Leases of some of those, for probes to present. */
  readonly leases: ReadonlyArray<Lease>
}

/** Payloads of every kind JSON has, some at the edges (deep, long, odd characters), from `seed`. */
const payloads = (seed: number, n: number): Array<unknown> => {
  const drawn = fc.sample(fc.jsonValue({ maxDepth: 4 }), { seed, numRuns: n }) as Array<unknown>
  const deep = (depth: number): unknown => (depth === 0 ? "bottom" : [deep(depth - 1)])
  const specials: Array<unknown> = [
    deep(48),
    { long: "x".repeat(100_000) },
    { unicode: "日本語 🙂 \u202e \u0000 \ud800", escapes: "\"\\/\b\f\n\r\t" },
    { numbers: [0, -0, 1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER, 1e21, 0.1] },
    JSON.parse("{\"__proto__\":{\"polluted\":true},\"constructor\":{\"prototype\":1}}"),
    null,
    "",
    []
  ]
  specials.forEach((special, i) => (drawn[i * 7] = special))
  return drawn
}

const group = 20

/** Claims every job of `type` (there are `count`), with an hour's lease. */
const claimAll = async (broker: Broker, type: string, count: number): Promise<Array<Claimed>> => {
  const claimed = await must<Array<Claimed>>(broker, "POST", "/v1/jobs/claim", {
    workerId: "fuzz-setup",
    types: [type],
    max: count,
    leaseMs: 3_600_000
  })
  if (claimed.length !== count) throw new Error(`claimed ${claimed.length} jobs of ${type}, not ${count}`)
  return claimed
}

const enqueueAll = async (broker: Broker, jobs: ReadonlyArray<Record<string, unknown>>): Promise<Array<JobLike>> =>
  must<Array<JobLike>>(broker, "POST", "/v1/jobs/batch", { jobs })

export const setUp = async (broker: Broker, seed: number): Promise<Setup> => {
  const data = payloads(seed, 200)
  const at = (i: number) => ({ payload: data[i] })
  const delayed = await enqueueAll(
    broker,
    Array.from({ length: 120 }, (_, i) => ({ type: "sentinel", ...at(i), delayMs: maxDelayMs, priority: i - 60 }))
  )

  await enqueueAll(broker, Array.from({ length: group }, (_, i) => ({ type: "sentinel-running", ...at(120 + i) })))
  await claimAll(broker, "sentinel-running", group)

  await enqueueAll(broker, Array.from({ length: group }, (_, i) => ({ type: "sentinel-retry", ...at(140 + i) })))
  for (const { job, token } of await claimAll(broker, "sentinel-retry", group)) {
    await must(broker, "POST", `/v1/jobs/${job.id}/fail`, {
      token,
      error: `failed ${job.id}`,
      retryDelayMs: maxDelayMs
    })
  }

  await enqueueAll(broker, Array.from({ length: group }, (_, i) => ({ type: "sentinel-done", ...at(160 + i) })))
  for (const [i, { job, token }] of (await claimAll(broker, "sentinel-done", group)).entries()) {
    await must(broker, "POST", `/v1/jobs/${job.id}/complete`, { token, result: data[(i * 13) % data.length] })
  }

  const toCancel = await enqueueAll(
    broker,
    Array.from({ length: group }, (_, i) => ({ type: "sentinel-cancel", ...at(180 + i), delayMs: 60_000 }))
  )
  for (const job of toCancel) await must(broker, "POST", `/v1/jobs/${job.id}/cancel`)

  const fuzzJobs = await enqueueAll(
    broker,
    Array.from({ length: 100 }, (_, i) => ({ type: "fuzz", payload: { n: i } }))
  )
  const claimed = await must<Array<Claimed>>(broker, "POST", "/v1/jobs/claim", {
    workerId: "fuzz-setup",
    types: ["fuzz"],
    max: 40,
    leaseMs: 3_600_000
  })

  const first = Number(delayed[0]!.id.replace("job-", ""))
  const ids = Array.from({ length: 200 }, (_, i) => `job-${first + i}`)
  const sentinels = new Map<string, JobLike>()
  for (const id of ids) sentinels.set(id, await must<JobLike>(broker, "GET", `/v1/jobs/${id}`))
  const states = new Set([...sentinels.values()].map((job) => job.state))
  for (const state of ["delayed", "running", "failed-waiting-retry", "completed", "cancelled"]) {
    if (!states.has(state)) throw new Error(`the setup made no ${state} sentinel: ${[...states].join(", ")}`)
  }
  return {
    sentinels,
    fuzzIds: fuzzJobs.map((job) => job.id),
    leases: claimed.map(({ job, token }) => ({ jobId: job.id, token }))
  }
}

/**
 * The sentinels that differ from the setup's answers, each with what changed. A broker that took
 * over (`restarted`) grants running leases a new grace, so their expiry may move.
 */
export const changedSentinels = async (broker: Broker, setup: Setup, restarted: boolean): Promise<Array<string>> => {
  const changed: Array<string> = []
  for (const [id, before] of setup.sentinels) {
    let now: JobLike
    try {
      now = await must<JobLike>(broker, "GET", `/v1/jobs/${id}`)
    } catch (error) {
      changed.push(`${id}: ${String(error).slice(0, 300)}`)
      continue
    }
    const strip = (job: JobLike): JobLike =>
      restarted && job.lease ? { ...job, lease: { ...job.lease, expiresAt: 0 } } : job
    if (!isDeepStrictEqual(strip(now), strip(before))) {
      changed.push(`${id} was ${JSON.stringify(before).slice(0, 400)}\n    is now ${JSON.stringify(now).slice(0, 400)}`)
    }
  }
  return changed
}
