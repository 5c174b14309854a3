/** The broker's own instruments; /metrics exports them with the engine's (`@osqueue/core` Metrics). */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

/** Tagged per call with `operation` and `outcome` (`ok`, an error's tag, `defect`, `interrupted`). */
export const requests = Metric.counter("osqueue_requests_total", {
  description: "Broker operations by operation and outcome (all transports)"
})

export const watchers = Metric.gauge("osqueue_watchers", { description: "Open watch streams" })

export const httpRequests = Metric.counter("osqueue_http_requests_total", {
  description: "HTTP requests refused before reaching an operation, by reason"
})

export const claimWait = Metric.histogram(
  "osqueue_claim_wait_ms",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 17 }),
  "How long claims waited (long poll), in ms"
)
