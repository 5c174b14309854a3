/**
 * Routes for operators: `/healthz` (the process answers), `/readyz` (a leader whose commits go
 * through, or a follower that knows the leader), `/metrics` (Prometheus text) and `/state` (the committed queue.json, without
 * the lease secrets).
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Election, GroupCommit } from "@osqueue/core"
import { jobStates } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import { Handlers } from "../Handlers.js"
import * as Prometheus from "../Prometheus.js"

export const opsPaths = { health: "/healthz", ready: "/readyz", metrics: "/metrics", state: "/state" } as const

const jobs = Metric.gauge("osqueue_jobs", { description: "Jobs by state, in this broker's latest view" })
const leading = Metric.gauge("osqueue_leader", { description: "1 when this broker leads, else 0" })
const epoch = Metric.gauge("osqueue_epoch", { description: "The epoch of this broker's latest view" })

export const layer: Layer.Layer<never, never, HttpLayerRouter.HttpRouter | GroupCommit.GroupCommit | Election.Election | Handlers> =
  HttpLayerRouter.use((router) =>
    Effect.gen(function*() {
      const commit = yield* GroupCommit.GroupCommit
      const election = yield* Election.Election
      const handlers = yield* Handlers

      yield* router.add("GET", opsPaths.health, HttpServerResponse.unsafeJson({ ok: true }))

      yield* router.add(
        "GET",
        opsPaths.ready,
        Effect.gen(function*() {
          const leader = yield* handlers.leader.pipe(Effect.orDie)
          const { progressing, sinceCommitMs } = yield* commit.health
          // A leader is ready while its commits go through; a follower while it knows where to send clients.
          const ready = leader.role === "leader" ? progressing : leader.leaderUrl !== null
          return HttpServerResponse.unsafeJson({ ready, ...leader, sinceCommitMs }, { status: ready ? 200 : 503 })
        })
      )

      yield* router.add(
        "GET",
        opsPaths.metrics,
        Effect.gen(function*() {
          // Depth and role are read at scrape time: nothing to keep up to date in between.
          const stats = yield* commit.stats
          for (const state of jobStates) yield* Metric.set(Metric.tagged(jobs, "state", state), stats.counts[state])
          const role = yield* election.role
          yield* Metric.set(leading, role._tag === "Leader" ? 1 : 0)
          yield* Metric.set(epoch, role.epoch)
          return HttpServerResponse.text(Prometheus.format(yield* Metric.snapshot), {
            contentType: "text/plain; version=0.0.4; charset=utf-8"
          })
        })
      )

      yield* router.add(
        "GET",
        opsPaths.state,
        Effect.gen(function*() {
          const role = yield* election.role
          const version = yield* commit.checkpointVersion
          // The state is already JSON text; splice it in rather than parse and re-encode it.
          const body = yield* commit.read((state) => {
            const header = JSON.stringify({
              version,
              epoch: state.epoch,
              seq: state.seq,
              commitId: state.commitId,
              role: role._tag === "Leader" ? "leader" : "follower"
            })
            return `${header.slice(0, -1)},"state":${state.publicJson(state.seq, state.commitId)}}`
          })
          return HttpServerResponse.text(body, { contentType: "application/json" })
        })
      )
    })
  )
