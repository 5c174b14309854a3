/**
 * The queue's recent history, kept by the broker so that a dashboard opened now shows the last
 * half hour instead of starting empty: a bounded ring of samples, one every `sampleEveryMs`,
 * each with the counts at its end, what committed during it (from the commit path's job
 * events), how long jobs waited (runnable → claimed) and ran (claimed → completed), and the
 * same per job type. Every broker keeps one; only the leader sees job events, so a follower's
 * samples carry counts alone. Per-type figures are kept for the last minute's samples only, so
 * the ring stays small. It is served by `watch({ history: true })`.
 */
import { GroupCommit } from "@osqueue/core"
import type { JobEvent, Percentiles, StateCounts, StatsSample, TypeSample } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

export const sampleEveryMs = 5_000
/** Half an hour of samples. */
export const maxSamples = 360
/** Samples that keep their per-type figures (the last minute); older ones drop them to stay small. */
export const typedSamples = 12
/** Durations kept per interval (and type) for its percentiles: past it, a uniform reservoir. */
const maxDurations = 2_000

export interface StatsHistoryShape {
  /** The samples kept, oldest first, then each new one as it is taken. */
  readonly stream: Stream.Stream<ReadonlyArray<StatsSample>>
}

/** Durations with a bounded memory: every value is kept until `maxDurations`, then a uniform sample. */
class Durations {
  private readonly values: Array<number> = []
  private seen = 0

  add(ms: number): void {
    this.seen++
    if (this.values.length < maxDurations) this.values.push(ms)
    else {
      const slot = Math.floor(Math.random() * this.seen)
      if (slot < maxDurations) this.values[slot] = ms
    }
  }

  percentiles(): Percentiles {
    if (this.values.length === 0) return { p50: null, p95: null }
    const sorted = [...this.values].sort((a, b) => a - b)
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
    return { p50: at(0.5), p95: at(0.95) }
  }
}

/** What one interval has seen so far, for the queue and per type. */
class Interval {
  enqueued = 0
  completed = 0
  failed = 0
  dead = 0
  events = 0
  readonly wait = new Durations()
  readonly run = new Durations()
  readonly types = new Map<string, { completed: number; failed: number; wait: Durations; run: Durations }>()

  type(name: string) {
    let row = this.types.get(name)
    if (row === undefined) {
      this.types.set(name, row = { completed: 0, failed: 0, wait: new Durations(), run: new Durations() })
    }
    return row
  }
}

const noCounts: StateCounts = {
  queued: 0,
  delayed: 0,
  running: 0,
  completed: 0,
  "failed-waiting-retry": 0,
  dead: 0,
  cancelled: 0,
  "waiting-children": 0
}

export const make: Effect.Effect<StatsHistoryShape, never, GroupCommit.GroupCommit | Scope.Scope> = Effect.gen(
  function*() {
    const commit = yield* GroupCommit.GroupCommit
    const ring: Array<StatsSample> = []
    const published = yield* PubSub.unbounded<StatsSample>()
    let current = new Interval()
    let started = Date.now()
    let lastSeq = (yield* commit.stats).seq

    /** Counts a batch of committed events; claims and completions carry their durations. */
    const record = (events: ReadonlyArray<JobEvent>) => {
      const interval = current
      for (const event of events) {
        interval.events++
        const type = interval.type(event.type)
        switch (event.kind) {
          case "enqueued":
            interval.enqueued++
            break
          case "claimed":
            if (event.waitedMs !== undefined) {
              interval.wait.add(event.waitedMs)
              type.wait.add(event.waitedMs)
            }
            break
          case "completed":
            interval.completed++
            type.completed++
            if (event.ranMs !== undefined) {
              interval.run.add(event.ranMs)
              type.run.add(event.ranMs)
            }
            break
          case "retrying":
            interval.failed++
            type.failed++
            break
          case "dead":
            interval.failed++
            interval.dead++
            type.failed++
            break
        }
      }
    }

    /** Closes the interval: a sample with the counts now, into the ring and to every watcher. */
    const sample = Effect.gen(function*() {
      const stats = yield* commit.stats
      const byTypeCounts = yield* commit.read((state) => state.countsByType())
      const now = Date.now()
      const interval = current
      current = new Interval()
      const byType: Record<string, TypeSample> = {}
      for (const name of new Set([...byTypeCounts.keys(), ...interval.types.keys()])) {
        const seen = interval.types.get(name)
        byType[name] = {
          counts: byTypeCounts.get(name) ?? noCounts,
          completed: seen?.completed ?? 0,
          failed: seen?.failed ?? 0,
          wait: seen?.wait.percentiles() ?? { p50: null, p95: null },
          run: seen?.run.percentiles() ?? { p50: null, p95: null }
        }
      }
      const next: StatsSample = {
        at: now,
        intervalMs: now - started,
        counts: stats.counts,
        enqueued: interval.enqueued,
        completed: interval.completed,
        failed: interval.failed,
        dead: interval.dead,
        // A new leader's seq may start below the last one seen: count from there.
        commits: Math.max(0, stats.seq - lastSeq),
        events: interval.events,
        wait: interval.wait.percentiles(),
        run: interval.run.percentiles(),
        paused: stats.paused,
        byType
      }
      started = now
      lastSeq = stats.seq
      ring.push(next)
      if (ring.length > maxSamples) ring.shift()
      const aged = ring.length - 1 - typedSamples
      if (aged >= 0) ring[aged] = { ...ring[aged]!, byType: {} }
      yield* PubSub.publish(published, next)
    })

    yield* commit.onEvents(record)
    yield* Effect.sleep(sampleEveryMs).pipe(Effect.zipRight(sample), Effect.forever, Effect.forkScoped)

    return {
      stream: Stream.unwrapScoped(Effect.map(PubSub.subscribe(published), (fresh) =>
        // Subscribed before the ring is read: a sample taken in between comes after it, not lost.
        Stream.concat(Stream.succeed([...ring]), Stream.fromQueue(fresh).pipe(Stream.map((one) => [one])))))
    }
  }
)
