/**
 * Claims on a broker: a claim that may wait (a long poll) is held by the commit loop until a job
 * may be claimable for it; a claim that does not wait, or that follows a completion
 * (`CompleteAndClaim`), is queued for the next commit at once; and the workers this broker has
 * seen claim, which the state alone does not know.
 */
import type { GroupCommit } from "@osqueue/core"
import type { ClaimedJob, ClaimRequest, CompleteAndClaimRequest, OsqueueError } from "@osqueue/types"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as BrokerMetrics from "../BrokerMetrics.js"

type Claimed = ReadonlyArray<ClaimedJob>

/** Past this many workers remembered, a claim forgets those not seen within a lease TTL. */
const claimersSwept = 1_000

/**
 * Whether a claim may wait for a job (a long poll): only such a claim can be dropped while it
 * waits; one that does not wait is queued for the next commit at once and commits.
 */
export const waits = (request: ClaimRequest): boolean => (request.waitMs ?? 0) > 0

export const make = (commit: GroupCommit.GroupCommitShape) =>
  Effect.gen(function*() {
    const claimCommand = (request: ClaimRequest) => ({ _tag: "Claim" as const, ...request, max: request.max ?? 1 })
    // A named queue's metrics carry its label: its operations are made under it (`Queues`).
    const labels = yield* FiberRef.get(FiberRef.currentMetricLabels)
    const clock = yield* Effect.clock

    /**
     * Workers' claim calls on this broker, by worker id: an idle worker long-polling holds no lease,
     * so the state does not know it (`state.workers()` knows those holding jobs). A broker's own
     * memory: after a failover, workers reappear with their next claim.
     */
    const claimers = new Map<string, { at: number; polling: number }>()
    const defaultLeaseMs = yield* commit.read((state) => state.limits.defaultLeaseMs)
    const seenWithin = (now: number) => (seen: { at: number; polling: number }) =>
      seen.polling > 0 || seen.at >= now - defaultLeaseMs

    /** Notes a claim call of `workerId` at `now`: `polling` +1 as it starts, -1 as it ends (0: one that does not wait). */
    const noteClaimer = (workerId: string, polling: -1 | 0 | 1, now: number) => {
      const seen = claimers.get(workerId)
      if (seen === undefined) claimers.set(workerId, { at: now, polling })
      else {
        seen.at = now
        seen.polling += polling
      }
      if (claimers.size > claimersSwept) {
        const recent = seenWithin(now)
        for (const [id, other] of claimers) if (!recent(other)) claimers.delete(id)
      }
    }

    /**
     * A claim that may wait is held by the commit loop until a job may be claimable for it
     * (`GroupCommit.claimWaitingWith`, docs/architecture.md "Long-poll claims"): a thousand idle
     * workers cost no commits and no work per commit, and a job enqueued is claimed in the very
     * commit that enqueued it. Without a wait it is queued for the next commit at once (a
     * follower answers NotLeader), and commits whether its client stays or not: nothing drops it.
     * Its worker is noted as polling while it waits; it is timed and counted as it ends, however
     * it ends (dropped too: the client hung up). By callback, `respond` called once unless what
     * it returns drops the claim first: no fiber, no Effect step, no batch of its own, as each
     * claim of a plain client is a call of its own (docs/performance.md, "A long-poll claim
     * without a fiber", "A claim that does not wait, by callback"). `claim` is the same as an
     * effect.
     */
    const claimWith = (
      request: ClaimRequest,
      respond: (exit: Exit.Exit<Claimed, OsqueueError>) => void
    ): (() => void) | undefined => {
      const polls = waits(request)
      noteClaimer(request.workerId, polls ? 1 : 0, clock.unsafeCurrentTimeMillis())
      const started = clock.unsafeCurrentTimeNanos()
      let ended = false
      const end = (outcome: string) => {
        ended = true
        if (polls) noteClaimer(request.workerId, -1, clock.unsafeCurrentTimeMillis())
        BrokerMetrics.claimWait.unsafeUpdate(Number(clock.unsafeCurrentTimeNanos() - started) / 1e9, labels)
        BrokerMetrics.requestSeries("claim", outcome).unsafeUpdate(1, labels)
      }
      const drop = commit.claimWaitingWith(claimCommand(request), request.waitMs ?? 0, (outcome) => {
        if (Either.isRight(outcome)) {
          end("ok")
          respond(Exit.succeed(outcome.right))
        } else {
          end(outcome.left._tag)
          respond(Exit.fail(outcome.left))
        }
      })
      if (!polls) return undefined
      return () => {
        if (ended) return
        drop()
        end("interrupted")
      }
    }

    /**
     * The command of a completion that claims next (`CompleteAndClaim`): its worker is noted as
     * a claim's is, one that does not wait; the command is submitted like any (it never waits).
     */
    const completeAndClaimCommand = (request: CompleteAndClaimRequest) => {
      noteClaimer(request.workerId, 0, clock.unsafeCurrentTimeMillis())
      return { _tag: "CompleteAndClaim" as const, ...request, max: request.max ?? 1 }
    }

    const claim = (request: ClaimRequest) =>
      Effect.async<Claimed, OsqueueError>((resume) => {
        const drop = claimWith(request, resume)
        return drop === undefined ? undefined : Effect.sync(drop)
      })

    const workers = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const byId = new Map((yield* commit.read((state) => state.workers())).map((worker) => [worker.id, { ...worker }]))
      const recent = seenWithin(now)
      for (const [id, seen] of claimers) {
        if (!recent(seen)) continue
        const at = seen.polling > 0 ? now : seen.at
        const worker = byId.get(id)
        if (worker === undefined) byId.set(id, { id, jobs: 0, lastSeenAt: at })
        else worker.lastSeenAt = Math.max(worker.lastSeenAt, at)
      }
      return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    })

    return { claim, claimWith, completeAndClaimCommand, workers }
  })
