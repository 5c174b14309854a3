/**
 * Routes for operators: `/healthz` (the process answers), `/readyz` (for every queue served: a
 * leader whose commits go through, or a follower that knows the leader), `/metrics` (Prometheus
 * text, the queue gauges labelled by queue) and `/state` (the committed queue.json, without the
 * lease secrets; `?queue=<name>` for a named queue).
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { httpStatus, jobStates, OsqueueError, QueueNames } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import * as Prometheus from "../Prometheus.js"
import * as Queues from "../Queues.js"

export const operatorPaths = { health: "/healthz", ready: "/readyz", metrics: "/metrics", state: "/state" } as const

const jobs = Metric.gauge("osqueue_jobs", { description: "Jobs by state, in this broker's latest view" })
const leading = Metric.gauge("osqueue_leader", { description: "1 when this broker leads, else 0" })
const epoch = Metric.gauge("osqueue_epoch", { description: "The epoch of this broker's latest view" })

/** The queue a `/state?queue=<name>` request names (none: the default queue). */
const queueParam = (url: string): string | undefined => {
  const query = url.indexOf("?")
  return query < 0 ? undefined : (new URLSearchParams(url.slice(query + 1)).get("queue") ?? undefined)
}

export const layer: Layer.Layer<never, never, HttpLayerRouter.HttpRouter | Queues.Queues> = HttpLayerRouter.use((
  router
) =>
  Effect.gen(function*() {
    const queues = yield* Queues.Queues

    yield* router.add("GET", operatorPaths.health, HttpServerResponse.unsafeJson({ ok: true }))

    /** One queue's readiness: a leader while its commits go through; a follower while it knows where to send clients. */
    const readiness = (queue: Queues.Queue) =>
      Effect.gen(function*() {
        const leader = yield* queue.operations.leader.pipe(Effect.orDie)
        const { progressing, sinceCommitMs } = yield* queue.commit.health
        const ready = leader.role === "leader" ? progressing : leader.leaderUrl !== null
        return { ready, ...leader, sinceCommitMs }
      })

    // Ready when every queue is. The default queue's fields stay at the top, as before queues had names.
    yield* router.add(
      "GET",
      operatorPaths.ready,
      Effect.gen(function*() {
        const each = yield* Effect.forEach(queues.all, readiness)
        const ready = each.every((queue) => queue.ready)
        const byName = Object.fromEntries(queues.all.map((queue, i) => [queue.name, each[i]!]))
        const main = byName[QueueNames.defaultQueue] ?? {}
        return HttpServerResponse.unsafeJson({ ...main, ready, queues: byName }, { status: ready ? 200 : 503 })
      })
    )

    yield* router.add(
      "GET",
      operatorPaths.metrics,
      Effect.gen(function*() {
        // Depth and role are read at scrape time: nothing to keep up to date in between.
        for (const queue of queues.all) {
          const stats = yield* queue.commit.stats
          const role = yield* queue.election.role
          // The default queue's series carry no label, as before queues had names (`Queues`).
          const tagged = <M extends Metric.Metric.Gauge<number>>(metric: M) =>
            queue.name === QueueNames.defaultQueue ? metric : Metric.tagged(metric, "queue", queue.name)
          for (const state of jobStates) {
            yield* Metric.set(Metric.tagged(tagged(jobs), "state", state), stats.counts[state])
          }
          yield* Metric.set(tagged(leading), role._tag === "Leader" ? 1 : 0)
          yield* Metric.set(tagged(epoch), role.epoch)
        }
        return HttpServerResponse.text(Prometheus.format(yield* Metric.snapshot), {
          contentType: "text/plain; version=0.0.4; charset=utf-8"
        })
      })
    )

    yield* router.add(
      "GET",
      operatorPaths.state,
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const found = queues.resolve(queueParam(request.url))
        if (Either.isLeft(found)) {
          return HttpServerResponse.unsafeJson(Schema.encodeSync(OsqueueError)(found.left), {
            status: httpStatus(found.left)
          })
        }
        const body = yield* found.right.operations.stateJson
        return HttpServerResponse.text(body, { contentType: "application/json" })
      })
    )
  })
)
