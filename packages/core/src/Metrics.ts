/**
 * The engine's instruments; the broker exports them at /metrics. Names follow Prometheus's
 * conventions (base units, counters end in `_total`); docs/monitoring.md says what each means.
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

/**
 * A histogram in seconds that is fed milliseconds, the unit the engine's clocks measure in:
 * callers pass milliseconds, the exposition shows seconds.
 */
const secondsFromMillis = (name: string, startSeconds: number, description: string): Metric.Metric.Histogram<number> =>
  Metric.histogram(name, MetricBoundaries.exponential({ start: startSeconds, factor: 2, count: 16 }), description).pipe(
    Metric.mapInput((millis: number) => millis / 1000)
  )

export const commits = Metric.counter("osqueue_commits_total", {
  description: "Successful commits (log entries appended)"
})
export const commitFailures = Metric.counter("osqueue_commit_failures_total", {
  description: "Commits that failed (conflict, storage error)"
})
export const batchSize = Metric.histogram(
  "osqueue_commit_batch_size",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 14 }),
  "Commands per commit"
)
/** Updated with milliseconds; exposed in seconds, from 0.5 ms to 16 s. */
export const commitLatency = secondsFromMillis(
  "osqueue_commit_latency_seconds",
  0.0005,
  "Time from a batch's start to its durable write, in seconds"
)
/** Updated with milliseconds; exposed in seconds, from 0.25 ms to 8 s. */
export const encodeLatency = secondsFromMillis(
  "osqueue_commit_encode_seconds",
  0.00025,
  "CPU time of a commit before its append (applying the batch and encoding its log entry), in seconds"
)
export const bytesWritten = Metric.counter("osqueue_commit_bytes_total", {
  description: "Bytes written to the store: log entries and checkpoints"
})
export const stateBytes = Metric.gauge("osqueue_state_bytes", {
  description: "Size of the last checkpoint (queue.json), in bytes"
})
export const pending = Metric.gauge("osqueue_pending_commands", { description: "Commands waiting for a commit" })
export const checkpoints = Metric.counter("osqueue_checkpoints_total", {
  description: "Checkpoints (the whole state, queue.json) written in the background"
})
/**
 * 1 from the moment a checkpoint is due until it is written (or given up), else 0: a checkpoint
 * of a big queue takes seconds, and one that never ends shows here.
 */
export const checkpointWriting = Metric.gauge("osqueue_checkpoint_writing", {
  description: "1 while a checkpoint (queue.json) is due or being written, else 0"
})
/** Updated with milliseconds; exposed in seconds, from 1 ms to 32 s. */
export const checkpointLatency = secondsFromMillis(
  "osqueue_checkpoint_latency_seconds",
  0.001,
  "Time to write one checkpoint (queue.json), in seconds"
)
export const logEntriesCollected = Metric.counter("osqueue_log_entries_collected_total", {
  description: "Log entries deleted once a checkpoint had covered them for the grace"
})
