/** The broker's own instruments; /metrics exports them with the engine's (`@osqueue/core` Metrics). */
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import type * as MetricKeyType from "effect/MetricKeyType"
import * as MetricLabel from "effect/MetricLabel"

const requestsKey = MetricKey.counter("osqueue_requests_total", {
  description: "Broker operations by operation and outcome (all transports)"
})

/** Tagged per call with `operation` and `outcome` (`ok`, an error's tag, `defect`, `interrupted`). */
export const requests = Metric.fromMetricKey(requestsKey)

export const watchers = Metric.gauge("osqueue_watchers", { description: "Open watch streams" })

const refusalsKey = MetricKey.counter("osqueue_http_refusals_total", {
  description: "HTTP requests refused before reaching an operation, by reason"
})

/** Tagged per refusal with its `reason` (`unauthorized`, `origin`, `too_large`, …). */
export const refusals = Metric.fromMetricKey(refusalsKey)

/** Updated with seconds, from 1 ms to 65 s (a long poll waits up to 60 s). */
export const claimWait = Metric.histogram(
  "osqueue_claim_wait_seconds",
  MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 17 }),
  "How long claims took, waiting included (long poll), in seconds"
)

/**
 * `Metric.tagged` builds and hashes a new key on every call, which costs more than the count
 * itself; hot paths take their tagged instrument from here, built once per tag value (a small
 * set: refusal reasons). Looked up without building anything: a count per request must not
 * allocate.
 */
export const cachedTags = <M>(build: (value: string) => M) => {
  const cache = new Map<string, M>()
  return (value: string): M => {
    let metric = cache.get(value)
    if (metric === undefined) {
      metric = build(value)
      cache.set(value, metric)
    }
    return metric
  }
}

/** `cachedTags` for two tags (operations × outcomes, storage kinds × outcomes). */
export const cachedTagPairs = <M>(build: (first: string, second: string) => M) => {
  const cache = new Map<string, (second: string) => M>()
  return (first: string, second: string): M => {
    let byFirst = cache.get(first)
    if (byFirst === undefined) {
      byFirst = cachedTags((value) => build(first, value))
      cache.set(first, byFirst)
    }
    return byFirst(second)
  }
}

/**
 * One series of a metric, its key tagged once: a `Metric.tagged` metric still builds and hashes
 * a key on every update (it merges its tags into the update's), one made from the tagged key
 * does not.
 */
export const series = <Type extends MetricKeyType.MetricKeyType.Untyped>(
  key: MetricKey.MetricKey<Type>,
  labels: ReadonlyArray<readonly [string, string]>
) => Metric.fromMetricKey(MetricKey.taggedWithLabels(key, labels.map(([name, value]) => MetricLabel.make(name, value))))

/** A call's `outcome` label: `ok`, the error's tag, `interrupted` or `defect`. */
export const outcomeOf = (exit: Exit.Exit<unknown, { readonly _tag: string }>): string => {
  if (Exit.isSuccess(exit)) return "ok"
  if (exit.cause._tag === "Fail") return exit.cause.error._tag
  return Exit.isInterrupted(exit) ? "interrupted" : "defect"
}

/** `requests` for one operation and outcome. */
export const requestSeries = cachedTagPairs((operation: string, outcome: string) =>
  series(requestsKey, [["operation", operation], ["outcome", outcome]])
)

/** `refusals` for one reason a request was refused. */
export const refusedSeries = cachedTags((reason: string) => series(refusalsKey, [["reason", reason]]))
