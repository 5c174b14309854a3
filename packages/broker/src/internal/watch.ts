/**
 * A watch stream: job events as they commit, leader changes (the current leader first), stats
 * and their history if asked, sent in batches and ended when the broker stops.
 */
import type { Election, GroupCommit } from "@osqueue/core"
import type { LeaderInfo, OsqueueError, Stats, WatchEvent, WatchRequest } from "@osqueue/types"
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
      const events = yield* commit.events
      const jobs = Stream.fromQueue(events).pipe(Stream.map((event): WatchEvent => ({ _tag: "Job", event })))
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
      // Sent in batches of what came within 100 ms (one RPC message each, one acknowledgement):
      // on a busy queue every commit has events, and a message per commit costs a watching
      // browser more than the events themselves.
      const samples = request.history === true
        ? history.stream.pipe(Stream.map((samples): WatchEvent => ({ _tag: "History", samples })))
        : Stream.empty
      return Stream.mergeAll([jobs, leaders, stats, samples], { concurrency: "unbounded" }).pipe(
        Stream.groupedWithin(watchBatchMax, Duration.millis(100)),
        Stream.flattenChunks,
        // A stopping broker ends every watch (the client goes on at the next leader), on every
        // transport: an open stream would otherwise hold its HTTP server's close.
        Stream.interruptWhen(Deferred.await(closing))
      )
    })
  )
