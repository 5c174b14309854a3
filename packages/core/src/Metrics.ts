/** The engine's instruments; the broker exports them at /metrics. */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

export const commits = Metric.counter("osqueue_commits_total", { description: "Successful commits of queue.json" })
export const commitFailures = Metric.counter("osqueue_commit_failures_total", {
  description: "Commits that failed (conflict, storage error)"
})
export const batchSize = Metric.histogram(
  "osqueue_commit_batch_size",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 14 }),
  "Commands per commit"
)
export const commitLatency = Metric.histogram(
  "osqueue_commit_latency_ms",
  MetricBoundaries.exponential({ start: 0.5, factor: 2, count: 16 }),
  "Time from a batch's start to its durable write, in ms"
)
export const encodeLatency = Metric.histogram(
  "osqueue_commit_encode_ms",
  MetricBoundaries.exponential({ start: 0.25, factor: 2, count: 16 }),
  "CPU time of a commit before its write: applying the batch and encoding queue.json, in ms"
)
export const bytesWritten = Metric.counter("osqueue_commit_bytes_total", {
  description: "Bytes of queue.json written by successful commits"
})
export const stateBytes = Metric.gauge("osqueue_state_bytes", { description: "Size of the last committed queue.json" })
export const pending = Metric.gauge("osqueue_pending_commands", { description: "Commands waiting for a commit" })
