/** The worker's instruments (Prometheus-style names; exported by whatever metrics reader the app installs). */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

export type Outcome =
  | "completed"
  | "failed"
  | "dead"
  | "invalid_payload"
  | "timeout"
  | "lease_lost"
  | "released"
  | "unacknowledged"

/** Jobs finished by this process, by outcome (`jobs_processed_total{outcome=...}`). */
export const jobsProcessed = Metric.counter("osqueue_worker_jobs_processed_total", {
  description: "jobs a worker finished handling, by outcome"
})

const outcomes: ReadonlyArray<Outcome> = [
  "completed",
  "failed",
  "dead",
  "invalid_payload",
  "timeout",
  "lease_lost",
  "released",
  "unacknowledged"
]

/** Built once per outcome: a tagged metric built per job cost more than the job's count. */
const processedByOutcome = new Map(
  outcomes.map((outcome) => [outcome, Metric.tagged(jobsProcessed, "outcome", outcome)])
)

export const processed = (outcome: Outcome) => processedByOutcome.get(outcome)!

export const inHand = Metric.gauge("osqueue_worker_jobs_in_hand", { description: "jobs leased and being handled" })

/** Updated with seconds, from 5 ms to 164 s. */
export const jobDuration = Metric.histogram(
  "osqueue_worker_job_duration_seconds",
  MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 16 }),
  "time from claim to the job's outcome being acknowledged, in seconds"
)

export const claimErrors = Metric.counter("osqueue_worker_claim_errors_total", {
  description: "claim calls that failed (the worker backs off and retries)"
})
