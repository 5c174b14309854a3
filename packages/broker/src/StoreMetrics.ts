/**
 * Counts and times every storage request by kind (get, head, put, delete, list; and where the
 * store keeps logs of its own, append, log_read, log_collect and log_positions) and outcome, by
 * decorating the ObjectStore the engine uses: the stores themselves stay free of metrics.
 */
import { bodyLength, ObjectStore, type ObjectStoreShape } from "@osqueue/storage"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import { cachedTagPairs, cachedTags, outcomeOf, series } from "./BrokerMetrics.js"

const requestsKey = MetricKey.counter("osqueue_storage_requests_total", {
  description: "Object storage requests by backend, kind and outcome"
})

/**
 * Bytes of every put or append that landed, whatever wrote it (log entries, checkpoints): the
 * figure `osqueue_commit_bytes_total` should match, counted at the store instead of by the engine.
 */
const bytesPutKey = MetricKey.counter("osqueue_storage_put_bytes_total", {
  description: "Bytes written by successful object storage puts and log appends, by backend"
})

/** Updated with seconds, from 0.25 ms to 8 s. */
const latencyKey = MetricKey.histogram(
  "osqueue_storage_latency_seconds",
  MetricBoundaries.exponential({ start: 0.00025, factor: 2, count: 16 }),
  "Object storage request latency by kind, in seconds"
)

export const instrument = (store: ObjectStoreShape): ObjectStoreShape => {
  // Each series tagged once (`series`): every commit puts, so each put's count and time are on the hot path.
  const counter = cachedTagPairs((kind: string, outcome: string) =>
    series(requestsKey, [["backend", store.backend], ["kind", kind], ["outcome", outcome]])
  )
  const timer = cachedTags((kind: string) => series(latencyKey, [["kind", kind]]))
  const written = series(bytesPutKey, [["backend", store.backend]])
  // One step around the request, its labels read from the fiber it runs on: the count, the time
  // and (a put that landed) the bytes in the one callback that ends it, not an effect each.
  const track =
    (kind: string, bytes?: number) => <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>) =>
      Effect.withFiberRuntime<A, E>((fiber) => {
        const started = performance.now()
        return Effect.onExit(effect, (exit) => {
          const labels = fiber.getFiberRef(FiberRef.currentMetricLabels)
          counter(kind, outcomeOf(exit)).unsafeUpdate(1, labels)
          timer(kind).unsafeUpdate((performance.now() - started) / 1000, labels)
          if (bytes !== undefined && exit._tag === "Success") written.unsafeUpdate(bytes, labels)
          return Effect.void
        })
      })
  const logs = store.appendLogs
  return {
    ...store,
    ...(logs === undefined ? {} : {
      appendLogs: {
        append: (log, position, tag, body) => track("append", bodyLength(body))(logs.append(log, position, tag, body)),
        read: (log, position) => track("log_read")(logs.read(log, position)),
        collect: (log, position) => track("log_collect")(logs.collect(log, position)),
        positions: (log) => track("log_positions")(logs.positions(log))
      }
    }),
    get: (key) => track("get")(store.get(key)),
    head: (key) => track("head")(store.head(key)),
    put: (key, bytes, condition, options) => track("put", bodyLength(bytes))(store.put(key, bytes, condition, options)),
    delete: (key, ifMatch) => track("delete")(store.delete(key, ifMatch)),
    list: (prefix) => track("list")(store.list(prefix))
  }
}

/** Replaces the ObjectStore below it with the instrumented one. */
export const layer: Layer.Layer<ObjectStore, never, ObjectStore> = Layer.effect(
  ObjectStore,
  Effect.map(ObjectStore, instrument)
)
