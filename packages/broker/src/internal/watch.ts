/**
 * A watch stream: job events as they commit, leader changes (the current leader first), stats
 * and their history if asked, sent in batches and ended when the broker stops.
 */
import type { Election, GroupCommit } from "@osqueue/core"
import type { LeaderInfo, OsqueueError, Stats, WatchEvent, WatchRequest } from "@osqueue/types"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as BrokerMetrics from "../BrokerMetrics.js"
import type * as StatsHistory from "../StatsHistory.js"

/** Most events in one watch message. */
const watchBatchMax = 1_000

/** How long events wait to go together in one watch message. */
const batchEvery = Duration.millis(100)

/** Most events waiting for a watcher that lags: the oldest beyond are dropped. */
const watchBacklogMax = 16_384

export const make = (
  commit: GroupCommit.GroupCommitShape,
  election: Election.ElectionShape,
  history: StatsHistory.StatsHistoryShape,
  closing: Deferred.Deferred<void>,
  leaderInfo: Effect.Effect<LeaderInfo>,
  statsNow: Effect.Effect<Stats, OsqueueError>
) =>
(request: WatchRequest): Stream.Stream<WatchEvent, OsqueueError> =>
  Stream.unwrapScoped(
    Effect.gen(function*() {
      yield* Effect.acquireRelease(
        Metric.increment(BrokerMetrics.watchers),
        () => Metric.incrementBy(BrokerMetrics.watchers, -1)
      )
      // Job events wait in a buffer until the stream takes them: a stream of them, merged and
      // grouped, cost a fiber's work per event, about a third more broker CPU per job with one
      // dashboard open (docs/performance.md, "Events counted without a fiber").
      let waiting: Array<WatchEvent> = []
      // A watcher that lags loses the oldest job events, as one subscribed to a sliding queue
      // would; the leader, stats and history notices stay (a client reads the job it waits for on
      // the leader's), unless they alone fill the backlog. Trimmed when twice as many wait, so
      // that a commit's events cost no copy of the buffer.
      const trim = () => {
        let excess = waiting.length - watchBacklogMax
        if (excess <= 0) return
        waiting = waiting.filter((event) => {
          if (event._tag !== "Job" || excess === 0) return true
          excess--
          return false
        })
        if (waiting.length > watchBacklogMax) waiting.splice(0, waiting.length - watchBacklogMax)
      }
      const keep = (event: WatchEvent) => {
        if (waiting.push(event) >= 2 * watchBacklogMax) trim()
      }
      yield* commit.onEvents((events) => {
        for (const event of events) keep({ _tag: "Job", event })
      })
      const leaders = election.roleChanges.pipe(
        Stream.mapEffect(() => leaderInfo),
        Stream.changesWith((a, b) => a.role === b.role && a.leaderUrl === b.leaderUrl && a.epoch === b.epoch),
        Stream.map((leader): WatchEvent => ({ _tag: "Leader", leader }))
      )
      const stats = request.statsEveryMs === undefined
        ? Stream.empty
        : Stream.repeatEffectWithSchedule(
          Effect.map(statsNow, (stats): WatchEvent => ({ _tag: "Stats", stats })),
          Schedule.spaced(Duration.millis(request.statsEveryMs))
        )
      const samples = request.history === true
        ? history.stream.pipe(Stream.map((samples): WatchEvent => ({ _tag: "History", samples })))
        : Stream.empty
      // The rest (a few a second) joins the job events in the buffer, in the order they came.
      const others = Stream.mergeAll([leaders, stats, samples], { concurrency: "unbounded" }).pipe(
        Stream.tap((event) => Effect.sync(() => keep(event))),
        Stream.drain
      )
      // Sent in batches of what came within 100 ms (one RPC message each, one acknowledgement):
      // on a busy queue every commit has events, and a message per commit costs a watching
      // browser more than the events themselves. A full batch goes at once.
      const take = Effect.sync(() => {
        trim()
        return Chunk.unsafeFromArray(waiting.splice(0, watchBatchMax))
      })
      const nextBatch: Effect.Effect<Chunk.Chunk<WatchEvent>> = Effect.suspend(() =>
        waiting.length >= watchBatchMax
          ? take
          : Effect.zipRight(Effect.sleep(batchEvery), Effect.suspend(() => waiting.length > 0 ? take : nextBatch))
      )
      const batches = Stream.repeatEffectChunk(nextBatch)
      return Stream.merge(batches, others).pipe(
        // A stopping broker ends every watch (the client goes on at the next leader), on every
        // transport: an open stream would otherwise hold its HTTP server's close.
        Stream.interruptWhen(Deferred.await(closing))
      )
    })
  )
