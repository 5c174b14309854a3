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

/**
 * `Metric.tagged` builds and hashes a new key on every call, which costs more than the count
 * itself; hot paths take their tagged instrument from here, built once per set of tag values
 * (a small set: operations × outcomes, storage kinds × outcomes).
 */
export const cachedTags = <Values extends ReadonlyArray<string>, M>(build: (...values: Values) => M) => {
  const cache = new Map<string, M>()
  return (...values: Values): M => {
    const key = values.join("\u0000")
    let metric = cache.get(key)
    if (metric === undefined) {
      metric = build(...values)
      cache.set(key, metric)
    }
    return metric
  }
}
