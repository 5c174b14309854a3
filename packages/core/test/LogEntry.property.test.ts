/**
 * Property test: a replica that starts from a checkpoint and replays each batch's log entry
 * (through JSON, as a follower reads it) ends every batch with the same queue.json as the
 * state that ran the commands, schedules and their runs included, and flows (a parent's
 * children's ends, its release, its death, a cancel's cascade).
 */
import { describe, expect, it } from "@effect/vitest"
import { type JobId, type LeaseToken, QueueFile } from "@osqueue/types"
import { Either, FastCheck as fc, Schema } from "effect"
import type { Command } from "../src/Command.js"
import { decode, logKey, positionOf } from "../src/LogEntry.js"
import { defaultLimits, QueueState } from "../src/QueueState.js"
import { testSecrets } from "./fixtures/model.js"
import { right } from "./fixtures/outcomes.js"

const decodeFile = Schema.decodeUnknownSync(QueueFile)

const T0 = 1_700_000_000_000
const limits = {
  ...defaultLimits,
  keepFinished: 2,
  keepFinishedMs: 5_000,
  defaultMaxAttempts: 2,
  defaultLeaseMs: 1_000
}

const step = fc.oneof(
  fc.record({
    kind: fc.constant("enqueue" as const),
    type: fc.constantFrom("a", "b"),
    n: fc.integer({ min: 1, max: 3 }),
    delayMs: fc.constantFrom(0, 0, 2_000)
  }),
  fc.record({ kind: fc.constant("claim" as const), max: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constantFrom("complete" as const, "fail" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constantFrom("pause" as const, "resume" as const) }),
  fc.record({
    kind: fc.constantFrom("promote" as const, "delete" as const, "priority" as const),
    job: fc.integer({ min: 1, max: 20 })
  }),
  fc.record({
    kind: fc.constant("purge" as const),
    state: fc.constantFrom("queued" as const, "completed" as const, "dead" as const)
  }),
  fc.record({
    kind: fc.constant("schedule" as const),
    id: fc.constantFrom("s1", "s2"),
    everyMs: fc.constantFrom(1_000, 2_500, 60_000),
    missed: fc.constantFrom("catch-up" as const, "skip" as const)
  }),
  fc.record({ kind: fc.constant("unschedule" as const), id: fc.constantFrom("s1", "s2") }),
  // Limits on claims: set (a rate's start times then travel in the entries), cleared (forgotten).
  fc.record({
    kind: fc.constant("limit" as const),
    type: fc.constantFrom("a", "b", undefined),
    concurrency: fc.constantFrom(1, 2, undefined),
    rate: fc.constantFrom(
      { max: 1, windowMs: 1_000 },
      { max: 2, windowMs: 5_000 },
      { max: 4, windowMs: 60_000 },
      undefined
    )
  }),
  fc.record({ kind: fc.constant("unlimit" as const), type: fc.constantFrom("a", "b", undefined) }),
  fc.record({
    kind: fc.constant("flow" as const),
    children: fc.integer({ min: 1, max: 3 }),
    policy: fc.constantFrom("fail" as const, "ignore" as const)
  }),
  fc.record({ kind: fc.constant("cancel" as const), job: fc.integer({ min: 1, max: 20 }) })
)
// Now and then a gap longer than the schedules' grace: missed slots.
const advance = fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 3_000 }) }, {
  weight: 1,
  arbitrary: fc.constant(25_000)
})
const batches = fc.array(fc.record({ advance, steps: fc.array(step, { maxLength: 6 }) }), { maxLength: 12 })

describe("LogEntry", () => {
  it("keys sort in position order", () => {
    expect(logKey(9) < logKey(10)).toBe(true)
    expect(logKey(Number.MAX_SAFE_INTEGER)).toBe("log/9007199254740991")
    expect(positionOf(logKey(42))).toBe(42)
    expect(positionOf("log/42")).toBeUndefined()
  })

  it("an entry that does not decode, or sits at another position, is StateCorrupt naming its key", () => {
    const bytes = (text: string) => new TextEncoder().encode(text)
    const notJson = decode(logKey(3), bytes("{"))
    expect(Either.isLeft(notJson) && notJson.left.message).toMatch(/^log\/0000000000000003 is unreadable \(not JSON/)
    const state = QueueState.empty(limits)
    state.begin()
    const moved = decode(
      logKey(4),
      state.entryParts("batch", 3, "L:3:1").parts.reduce((a, b) => Buffer.concat([a, b]), Buffer.alloc(0))
    )
    expect(Either.isLeft(moved) && moved.left.message).toMatch(/it says it is entry 3/)
  })

  it("checkpoint + replay of each batch's entry equals the state that ran it", () => {
    fc.assert(
      fc.property(batches, (plan) => {
        const secrets = testSecrets()
        const leader = QueueState.empty(limits)
        const replica = QueueState.empty(limits)
        const tokens: Array<LeaseToken> = []
        let now = T0
        plan.forEach(({ advance, steps }, i) => {
          now += advance
          leader.begin()
          leader.tick(now)
          for (const s of steps) {
            let command: Command
            if (s.kind === "enqueue") {
              command = {
                _tag: "Enqueue",
                jobs: Array.from(
                  { length: s.n },
                  () => ({ type: s.type, payload: { i, pad: "p".repeat(40 * s.n) }, delayMs: s.delayMs })
                )
              }
            } else if (s.kind === "claim") command = { _tag: "Claim", workerId: "w", max: s.max }
            else if (s.kind === "pause" || s.kind === "resume") {
              command = { _tag: s.kind === "pause" ? "Pause" : "Resume" }
            } else if (s.kind === "promote" || s.kind === "delete") {
              command = { _tag: s.kind === "promote" ? "Promote" : "Delete", id: `job-${s.job}` as JobId }
            } else if (s.kind === "priority") {
              command = { _tag: "SetPriority", id: `job-${s.job}` as JobId, priority: s.job % 3 }
            } else if (s.kind === "purge") command = { _tag: "Purge", state: s.state }
            else if (s.kind === "schedule") {
              command = {
                _tag: "UpsertSchedule",
                schedule: { id: s.id, everyMs: s.everyMs, missed: s.missed, job: { type: "a", payload: { s: s.id } } }
              }
            } else if (s.kind === "unschedule") command = { _tag: "RemoveSchedule", id: s.id }
            else if (s.kind === "flow") {
              // A root of type b over children of type a, the first with a child of its own.
              const children = Array.from(
                { length: s.children },
                (_, c) => ({ type: "a", payload: { c }, ...(c === 0 ? { children: [{ type: "a" }] } : {}) })
              )
              command = { _tag: "EnqueueFlow", job: { type: "b", payload: { i }, children }, onChildFailure: s.policy }
            } else if (s.kind === "cancel") command = { _tag: "Cancel", id: `job-${s.job}` as JobId }
            else if (s.kind === "limit") {
              const { concurrency, rate, type } = s
              command = {
                _tag: "SetLimit",
                limit: {
                  ...(type === undefined ? {} : { type }),
                  ...(concurrency === undefined ? {} : { concurrency }),
                  ...(rate === undefined ? {} : { rate })
                }
              }
            } else if (s.kind === "unlimit") {
              command = { _tag: "ClearLimit", ...(s.type === undefined ? {} : { type: s.type }) }
            } else if (tokens.length === 0) continue
            else if (s.kind === "complete" || s.kind === "fail") {
              const token = tokens.splice(s.pick % tokens.length, 1)[0]!
              command = s.kind === "complete"
                ? { _tag: "Complete", token, result: { by: i } }
                : { _tag: "Fail", token, error: "e" }
            } else continue
            const result = leader.apply(command, now, secrets)
            if (command._tag === "Claim" && Either.isRight(result)) {
              for (const claimed of result.right as ReadonlyArray<{ token: LeaseToken }>) tokens.push(claimed.token)
            }
          }
          const position = i + 1
          const { parts } = leader.entryParts("batch", position, `L:${position}`)
          leader.committed(position, `L:${position}`)
          const entry = Either.getOrThrow(decode(logKey(position), Buffer.concat(parts)))
          expect(replica.replay(entry)).toBeUndefined()
          expect(replica.bytes, `replica ${replica.bytes} leader ${leader.bytes}`).toBe(leader.bytes)
          // The size the leader tracks by growth is a full encode's, but for the header (a few hundred bytes).
          expect(Math.abs(leader.bytes - leader.encode(position, "c").length)).toBeLessThan(512)
          const [back, ran] = [JSON.parse(replica.toJson(position, "c")), JSON.parse(leader.toJson(position, "c"))]
          expect(back).toEqual(ran)
          // Jobs byte for byte: a job a command built has `Job`'s field order, as a replayed one (`jobWith`).
          expect(JSON.stringify(back.jobs)).toBe(JSON.stringify(ran.jobs))
        })
      }),
      { seed: 20_261_205, numRuns: 300 }
    )
  })

  it("a claim's and a completion's entries carry what changed, not the payload; a patch that does not apply is refused", () => {
    const leader = QueueState.empty(limits)
    const replica = QueueState.empty(limits)
    const payload = { text: "a payload written once ".repeat(20) }
    let position = 0
    const commit = (command: Command) => {
      leader.begin()
      const result = Either.getOrThrow(leader.apply(command, T0, testSecrets()))
      position++
      const bytes = Buffer.concat(leader.entryParts("batch", position, `L:${position}`).parts)
      leader.committed(position, `L:${position}`)
      const entry = Either.getOrThrow(decode(logKey(position), bytes))
      expect(replica.replay(entry)).toBeUndefined()
      return { result, text: bytes.toString("utf8"), entry }
    }
    const enqueued = commit({ _tag: "Enqueue", jobs: [{ type: "a", payload }] })
    expect(enqueued.text).toContain(payload.text)
    const claimed = commit({ _tag: "Claim", workerId: "w", max: 1 })
    expect(claimed.text).not.toContain(payload.text)
    expect(claimed.entry.patched?.length).toBe(1)
    const token = (claimed.result as ReadonlyArray<{ token: LeaseToken }>)[0]!.token
    const completed = commit({ _tag: "Complete", token, result: { ok: true } })
    expect(completed.text).not.toContain(payload.text)
    expect(completed.entry.patched?.[0]?.unset).toContain("lease")
    expect(JSON.parse(replica.toJson(position, "c"))).toEqual(JSON.parse(leader.toJson(position, "c")))

    const stray = { ...completed.entry, position: position + 1, patched: [{ id: "job-404", set: { state: "queued" } }] }
    expect(replica.replay(stray)).toMatch(/job-404/)
    const invalid = {
      ...completed.entry,
      position: position + 1,
      patched: [{ id: "job-1", set: { attempts: "many" } }]
    }
    expect(replica.replay(invalid)).toMatch(/no valid job/)
    const unknownField = {
      ...completed.entry,
      position: position + 1,
      patched: [{ id: "job-1", set: { isAdmin: true } }]
    }
    expect(replica.replay(unknownField)).toMatch(/no valid job/)
    // Refused entries change nothing.
    expect(replica.seq).toBe(position)
    expect(JSON.parse(replica.toJson(position, "c"))).toEqual(JSON.parse(leader.toJson(position, "c")))
  })

  it("a claimed job's size, measured from its entry's patch instead of encoded, is its bytes' size", () => {
    // Beyond ASCII in the worker's id and the payload, a priority and a retry's history: the fields
    // a claim changes, stored or left out (`storedJob`), each counted in UTF-8 bytes.
    const leader = QueueState.empty(limits)
    const replica = QueueState.empty(limits)
    const secrets = testSecrets()
    let position = 0
    const commit = (command: Command) => {
      leader.begin()
      const result = Either.getOrThrow(leader.apply(command, T0 + position, secrets))
      position++
      const bytes = Buffer.concat(leader.entryParts("batch", position, `L:${position}`).parts)
      leader.committed(position, `L:${position}`)
      expect(replica.replay(Either.getOrThrow(decode(logKey(position), bytes)))).toBeUndefined()
      // The replica sizes each job by encoding it.
      expect(leader.bytes).toBe(replica.bytes)
      return result as ReadonlyArray<{ token: LeaseToken }>
    }
    commit({ _tag: "Enqueue", jobs: [{ type: "a", payload: { text: "é✓" }, priority: 2, maxAttempts: 3 }] })
    const [first] = commit({ _tag: "Claim", workerId: "wörker-✓", max: 1 })
    commit({ _tag: "Fail", token: first!.token, error: "broke ✗", retryDelayMs: 0 })
    const [second] = commit({ _tag: "Claim", workerId: "w✓", max: 1 })
    commit({ _tag: "Heartbeat", token: second!.token, progress: { done: "½" } })
    commit({ _tag: "Complete", token: second!.token, result: "fin ✓" })
    // And a checkpoint's encode of every job gives the size the leader kept.
    expect(Math.abs(leader.bytes - leader.encode(position, "c").length)).toBeLessThan(512)
    expect(JSON.parse(replica.toJson(position, "c"))).toEqual(JSON.parse(leader.toJson(position, "c")))
  })

  it("entries and a checkpoint written before jobs were built in `Job`'s field order still load, to the same state", () => {
    // As the build before `jobWith` wrote them: a claim's patch sets `history` before `startedAt`
    // and `lease`, a completion's before `finishedAt`; a checkpoint holds the fields in that order too.
    const replica = QueueState.empty()
    oldEntries.forEach((text, i) => {
      const entry = Either.getOrThrow(decode(logKey(i + 1), new TextEncoder().encode(text)))
      expect(replica.replay(entry)).toBeUndefined()
    })
    const fromCheckpoint = QueueState.fromFile(decodeFile(JSON.parse(oldCheckpoint)), oldCheckpoint.length)
    // The same commands run by this build.
    const leader = QueueState.empty()
    const secrets = testSecrets()
    const run = <C extends Command>(at: number, command: C) => {
      leader.begin()
      leader.tick(at)
      const result = Either.getOrThrow(leader.apply(command, at, secrets))
      leader.committed(leader.seq + 1, `L:${leader.seq + 1}`)
      return result
    }
    run(T0, {
      _tag: "Enqueue",
      jobs: [{ type: "a", payload: { n: 1 } }, {
        type: "a",
        payload: "x",
        idempotencyKey: "k1",
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
      }]
    })
    const [first, second] = run(T0 + 1_000, { _tag: "Claim", workerId: "w", max: 2 })
    leader.begin()
    leader.tick(T0 + 2_000)
    right(leader.apply({ _tag: "Complete", token: first!.token, result: { ok: true } }, T0 + 2_000, secrets))
    right(leader.apply({ _tag: "Fail", token: second!.token, error: "boom" }, T0 + 2_000, secrets))
    leader.committed(3, "L:3")
    const now = leader.toJson(3, "L:3")
    expect(replica.toJson(3, "L:3")).toBe(now)
    expect(JSON.parse(fromCheckpoint.toJson(3, "L:3"))).toEqual(JSON.parse(now))
    expect(JSON.parse(oldCheckpoint)).toEqual(JSON.parse(now))
    expect(fromCheckpoint.get("job-2")).toEqual(leader.get("job-2"))
  })
})

/** Log entries 1 to 3 and the checkpoint at 3 as the build before `jobWith` wrote them (see the test). */
const oldEntries: ReadonlyArray<string> = [
  "{\"format\":5,\"kind\":\"batch\",\"position\":1,\"epoch\":0,\"commitId\":\"L:1\",\"header\":{\"epoch\":0,\"leader\":null,\"nextJobSeq\":3,\"paused\":{\"all\":false,\"types\":[]},\"totals\":{\"enqueued\":2,\"completed\":0,\"dead\":0},\"limits\":[]},\"put\":[{\"id\":\"job-1\",\"type\":\"a\",\"payload\":{\"n\":1},\"state\":\"queued\",\"maxAttempts\":3,\"seq\":1,\"createdAt\":1700000000000},{\"id\":\"job-2\",\"type\":\"a\",\"payload\":\"x\",\"state\":\"queued\",\"maxAttempts\":3,\"seq\":2,\"createdAt\":1700000000000,\"idempotencyKey\":\"k1\",\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"}],\"removed\":[]}",
  "{\"format\":5,\"kind\":\"batch\",\"position\":2,\"epoch\":0,\"commitId\":\"L:2\",\"put\":[],\"patched\":[{\"id\":\"job-1\",\"set\":{\"state\":\"running\",\"attempts\":1,\"claims\":1,\"history\":[{\"attempt\":1,\"workerId\":\"w\",\"startedAt\":1700000001000,\"outcome\":\"running\"}],\"startedAt\":1700000001000,\"lease\":{\"workerId\":\"w\",\"epoch\":0,\"expiresAt\":1700000031000,\"ttlMs\":30000,\"secret\":\"00000000000000000000s1\"}}},{\"id\":\"job-2\",\"set\":{\"state\":\"running\",\"attempts\":1,\"claims\":1,\"history\":[{\"attempt\":1,\"workerId\":\"w\",\"startedAt\":1700000001000,\"outcome\":\"running\"}],\"startedAt\":1700000001000,\"lease\":{\"workerId\":\"w\",\"epoch\":0,\"expiresAt\":1700000031000,\"ttlMs\":30000,\"secret\":\"00000000000000000000s2\"}}}],\"removed\":[]}",
  "{\"format\":5,\"kind\":\"batch\",\"position\":3,\"epoch\":0,\"commitId\":\"L:3\",\"header\":{\"epoch\":0,\"leader\":null,\"nextJobSeq\":3,\"paused\":{\"all\":false,\"types\":[]},\"totals\":{\"enqueued\":2,\"completed\":1,\"dead\":0},\"limits\":[]},\"put\":[],\"patched\":[{\"id\":\"job-1\",\"set\":{\"state\":\"completed\",\"history\":[{\"attempt\":1,\"workerId\":\"w\",\"startedAt\":1700000001000,\"outcome\":\"completed\",\"endedAt\":1700000002000}],\"finishedAt\":1700000002000,\"result\":{\"ok\":true}},\"unset\":[\"lease\"]},{\"id\":\"job-2\",\"set\":{\"state\":\"failed-waiting-retry\",\"runAt\":1700000002821,\"history\":[{\"attempt\":1,\"workerId\":\"w\",\"startedAt\":1700000001000,\"outcome\":\"failed\",\"endedAt\":1700000002000,\"error\":\"boom\"}],\"lastError\":\"boom\"},\"unset\":[\"lease\"]}],\"removed\":[]}"
]
const oldCheckpoint =
  "{\"format\":5,\"epoch\":0,\"seq\":3,\"commitId\":\"L:3\",\"leader\":null,\"nextJobSeq\":3,\"paused\":{\"all\":false,\"types\":[]},\"totals\":{\"enqueued\":2,\"completed\":1,\"dead\":0},\"jobs\":[{\"id\":\"job-1\",\"type\":\"a\",\"payload\":{\"n\":1},\"state\":\"completed\",\"maxAttempts\":3,\"seq\":1,\"createdAt\":1700000000000,\"startedAt\":1700000001000,\"finishedAt\":1700000002000,\"result\":{\"ok\":true},\"attempts\":1,\"claims\":1,\"history\":[{\"attempt\":1,\"workerId\":\"w\",\"startedAt\":1700000001000,\"outcome\":\"completed\",\"endedAt\":1700000002000}]},{\"id\":\"job-2\",\"type\":\"a\",\"payload\":\"x\",\"state\":\"failed-waiting-retry\",\"maxAttempts\":3,\"seq\":2,\"createdAt\":1700000000000,\"idempotencyKey\":\"k1\",\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\",\"startedAt\":1700000001000,\"lastError\":\"boom\",\"attempts\":1,\"claims\":1,\"runAt\":1700000002821,\"history\":[{\"attempt\":1,\"workerId\":\"w\",\"startedAt\":1700000001000,\"outcome\":\"failed\",\"endedAt\":1700000002000,\"error\":\"boom\"}]}]}"
