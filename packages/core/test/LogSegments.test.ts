/**
 * The log on the file store, which keeps it in segment files (packages/storage/README.md, "Logs
 * in segment files"), through real engines on a real directory and the real clock: a queue whose
 * log an older release left as objects is taken over with nothing lost, and what the new leader
 * appends goes to segments, which a follower replays.
 */
import { describe, expect, it } from "@effect/vitest"
import { type GroupCommit, LogEntry } from "@osqueue/core"
import { FaultyStore, FileStore, type ObjectStoreShape } from "@osqueue/storage"
import { Duration, Effect, Exit, Option, Schedule, Scope } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { type StartedEngine, startEngine } from "./fixtures/engine.js"

const settings = { electionTtl: Duration.millis(600) }

/** Polls `effect` every 50 ms until `done` accepts its answer, and answers that (a follower catches up at its pace). */
const until = <A, E>(effect: Effect.Effect<A, E>, done: (a: A) => boolean) =>
  effect.pipe(
    Effect.filterOrFail(done, (a) => new Error(`still ${JSON.stringify(a)}`)),
    Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 200 })
  )

const leads = (engine: StartedEngine) => until(engine.election.role, (role) => role._tag === "Leader")

const queued = (commit: GroupCommit.GroupCommitShape) => commit.read((s) => s.stats().counts.queued)

describe("the log in segment files", () => {
  it.live(
    "a queue whose entries an older release left as objects is taken over whole; new entries go to segments",
    () =>
      Effect.gen(function*() {
        const directory = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "osqueue-log-segments-"))
        const store = yield* FileStore.make({ directory, fsync: false })
        // The older release: the same directory, no logs of the store's own (every entry an object).
        const { appendLogs: _, ...objectsOnly } = store
        const older = yield* FaultyStore.wrap(objectsOnly satisfies ObjectStoreShape, {})
        const a = yield* startEngine(older.store, "http://a:8080", settings)
        yield* leads(a)
        for (let i = 0; i < 5; i++) yield* a.commit.submit({ _tag: "Enqueue", jobs: [{ type: `old-${i}` }] })
        const objects = (yield* store.list(LogEntry.logPrefix)).length
        expect(objects).toBeGreaterThanOrEqual(5)
        // a dies with entries past its checkpoint: its release and checkpoint cannot be written.
        yield* older.control.set({ writeFailureRate: 1 })
        yield* Scope.close(a.scope, Exit.void)

        const b = yield* startEngine(store, "http://b:8080", settings)
        yield* leads(b)
        expect(yield* queued(b.commit)).toBe(5)
        yield* b.commit.submit({ _tag: "Enqueue", jobs: [{ type: "new" }] })
        const position = yield* b.commit.read((s) => s.seq)
        // The new entries are in a segment file, and no object was made for them.
        expect(Option.isSome(yield* store.appendLogs!.read(LogEntry.logPrefix, position))).toBe(true)
        expect(Option.isNone(yield* store.get(LogEntry.logKey(position)))).toBe(true)
        expect(NodeFs.readdirSync(NodePath.join(directory, "logs", "log"))).toContain("0000000000000000.seg")
        expect((yield* store.list(LogEntry.logPrefix)).length).toBe(objects)

        // A follower replays checkpoint, objects and segments alike.
        const c = yield* startEngine(store, "http://c:8080", settings)
        expect(yield* until(queued(c.commit), (n) => n === 6)).toBe(6)
        expect(yield* c.commit.read((s) => s.seq)).toBe(position)
        yield* Scope.close(c.scope, Exit.void)
        yield* Scope.close(b.scope, Exit.void)
        NodeFs.rmSync(directory, { recursive: true, force: true })
      }),
    { timeout: 30_000 }
  )
})
