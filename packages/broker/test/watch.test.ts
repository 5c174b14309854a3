/**
 * A watch stream that lags (`internal/watch.ts`), over a real engine on the memory store: its
 * client takes nothing while 40,000 job events commit, then reads. It gets the newest job events
 * in commit order (about 16,384 of them, and the batch the stream had taken before), and the
 * stats notices that came meanwhile.
 */
import { describe, expect, it } from "@effect/vitest"
import { Election, Engine, EngineConfig, GroupCommit } from "@osqueue/core"
import { MemoryStore } from "@osqueue/storage"
import type { EnqueueOptions, LeaderInfo, WatchEvent } from "@osqueue/types"
import { Chunk, Context, Deferred, Effect, Either, Layer, Stream } from "effect"
import * as Watch from "../src/internal/watch.js"
import * as StatsHistory from "../src/StatsHistory.js"

const backlog = 16_384

describe("watch", () => {
  it.scopedLive(
    "a watcher that lags loses the oldest job events, keeps its notices, and reads the rest in order",
    () =>
      Effect.gen(function*() {
        const engine = yield* Layer.build(
          Engine.layer.pipe(
            Layer.provide(MemoryStore.layer),
            Layer.provide(EngineConfig.layer({ advertisedUrl: "http://watch:1" }))
          )
        )
        const commit = Context.get(engine, GroupCommit.GroupCommit)
        const election = Context.get(engine, Election.Election)
        const enqueue = (count: number) =>
          commit.submit({
            _tag: "Enqueue",
            jobs: Array.from({ length: count }, () => ({ type: "lag" }) as EnqueueOptions)
          })
        // Leading before the watch begins: its first event says so.
        while (Either.isLeft(yield* Effect.either(enqueue(1)))) yield* Effect.sleep("10 millis")
        const history = yield* StatsHistory.make.pipe(Effect.provideService(GroupCommit.GroupCommit, commit))
        const leaderInfo = Effect.succeed<LeaderInfo>({
          self: "http://watch:1",
          role: "leader",
          leaderUrl: "http://watch:1",
          epoch: 1,
          since: 0
        })
        const watch = Watch.make(commit, election, history, yield* Deferred.make<void>(), leaderInfo, commit.stats)
        const pull = yield* Stream.toPull(watch({ statsEveryMs: 100 }))

        const first = Chunk.toReadonlyArray(yield* pull)
        expect(first.some((event) => event._tag === "Leader" && event.leader.role === "leader")).toBe(true)
        // 40,000 job events while nothing is read: more than twice the backlog, so it is trimmed
        // as they come and again when the reader comes back.
        const ids: Array<string> = []
        for (let i = 0; i < 40; i++) {
          ids.push(...(yield* enqueue(1_000)).map((job) => job.id))
          // Stats notices (one each 100 ms) come meanwhile.
          if (i === 20) yield* Effect.sleep("300 millis")
        }

        const read: Array<WatchEvent> = []
        for (;;) {
          const batch = Chunk.toReadonlyArray(yield* pull)
          expect(batch.length).toBeLessThanOrEqual(1_000)
          read.push(...batch)
          if (read.some((event) => event._tag === "Job" && event.event.jobId === ids[ids.length - 1])) break
        }
        const position = new Map(ids.map((id, i) => [id, i]))
        const jobs = read.flatMap((event) => event._tag === "Job" ? [position.get(event.event.jobId)!] : [])
        const notices = read.filter((event) => event._tag !== "Job")
        expect(notices.length).toBeGreaterThan(0)
        expect(notices.every((event) => event._tag === "Stats")).toBe(true)
        // Those of the pause, older than every job event kept, are kept too.
        expect(notices.some((event) => event._tag === "Stats" && event.stats.enqueuedTotal <= 21_001)).toBe(true)
        expect(jobs.every((at, i) => i === 0 || at > jobs[i - 1]!)).toBe(true)
        // The oldest are gone; every one of the newest is there.
        expect(jobs.length).toBeLessThanOrEqual(backlog + 1_000)
        expect(jobs.slice(jobs.length - (backlog - 1_000))).toEqual(
          Array.from({ length: backlog - 1_000 }, (_, i) => ids.length - (backlog - 1_000) + i)
        )
      }),
    60_000
  )
})
