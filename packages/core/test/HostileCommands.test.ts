/**
 * Whatever one command carries, it is refused alone: a payload, result or progress that
 * `JSON.stringify` throws on (nested past the stack, a BigInt, a cycle, a `toJSON` that throws),
 * or numbers that would put a time past what queue.json can hold, never fail the commit of the
 * commands beside it, and queue.json always reads back. Lease tokens cannot be made from what a
 * job's answers show.
 */
import { describe, expect, it } from "@effect/vitest"
import { Engine, EngineConfig, GroupCommit, LeaseSecret, QueueState } from "@osqueue/core"
import { MemoryStore, ObjectStore } from "@osqueue/storage"
import {
  EnqueueOptions,
  FailRequest,
  HeartbeatRequest,
  type Job,
  JobOnWire,
  type LeaseToken,
  maxDelayMs,
  maxInstant,
  maxPausedTypes,
  type OsqueueError,
  parseLeaseToken,
  QueueFile
} from "@osqueue/types"
import {
  Arbitrary,
  Context,
  Duration,
  Effect,
  Either,
  FastCheck as fc,
  Layer,
  Option,
  Schema,
  Scope,
  TestClock
} from "effect"
import type { Command } from "../src/Command.js"
import { durable } from "./fixtures/durable.js"
import { testSecrets } from "./fixtures/model.js"
import { right } from "./fixtures/outcomes.js"

const T0 = 1_700_000_000_000

const decodeFile = Schema.decodeUnknownSync(QueueFile)
const encodeJob = Schema.encodeEither(JobOnWire)

/** An array nested `depth` deep, built without recursion. */
const nested = (depth: number): unknown => {
  let value: unknown = []
  for (let i = 0; i < depth; i++) value = [value]
  return value
}

const cycle = (): unknown => {
  const value: Record<string, unknown> = { a: 1 }
  value.self = value
  return value
}

/** A value whose JSON can be written once, and throws the next time. */
const throwsSecondTime = (): unknown => {
  let calls = 0
  return {
    toJSON: () => {
      if (calls++ > 0) throw new Error("cannot be written twice")
      return "once"
    }
  }
}

/** Values `JSON.stringify` throws on, as a client of the command API could pass them. */
const unwritable: ReadonlyArray<readonly [string, () => unknown]> = [
  ["nested 100,000 deep", () => nested(100_000)],
  ["a BigInt", () => ({ n: 10n })],
  ["a cycle", cycle]
]

/**
 * Each bad value and where it is refused. One whose JSON throws the second time is refused as
 * a result or progress (checked, then written with the job) but not as a payload, which is
 * written once: the job's encode takes the size check's text.
 */
const refusedAs: ReadonlyArray<readonly [string, () => unknown, { readonly payload: boolean }]> = [
  ...unwritable.map(([what, make]) => [what, make, { payload: true }] as const),
  ["a toJSON that throws the second time", throwsSecondTime, { payload: false }]
]

const tagOf = (result: Either.Either<unknown, OsqueueError>) => (Either.isLeft(result) ? result.left._tag : "ok")

/** Commits the open batch as the engine would, and reads queue.json back as a takeover would. */
const commitAndReload = (state: QueueState) => {
  const seq = state.seq + 1
  const text = state.toJson(seq, `leader:${seq}`)
  state.committed(seq, `leader:${seq}`, Buffer.byteLength(text))
  const file = decodeFile(JSON.parse(text))
  return { text, file, back: QueueState.fromFile(file, Buffer.byteLength(text), state.limits) }
}

/** queue.json with its jobs in seq order: equal states give equal forms. */
const canonical = (text: string) => {
  const file = JSON.parse(text) as { jobs: Array<{ seq: number }> }
  file.jobs.sort((a, b) => a.seq - b.seq)
  return file
}

describe("a command that cannot be applied or encoded", () => {
  for (const [what, make, { payload }] of refusedAs) {
    it(`is refused alone, in a batch of good ones, with ${what} as ${payload ? "payload, " : ""}result or progress`, () => {
      // Two states fed the same good commands, one of them with the bad ones mixed in.
      const run = (withBad: boolean) => {
        const secrets = testSecrets()
        const state = QueueState.empty()
        const apply = <C extends Command>(command: C) => state.apply(command, T0, secrets)
        state.begin()
        right(apply({ _tag: "Enqueue", jobs: [{ type: "a", payload: { n: 1 } }, { type: "a" }, { type: "a" }] }))
        const [first, second, third] = right(apply({ _tag: "Claim", workerId: "w", max: 3 }))
        const refused: Array<string> = []
        const bad = (command: Command) => {
          if (!withBad || (command._tag === "Enqueue" && !payload)) return
          const result = apply(command)
          refused.push(tagOf(result))
        }
        bad({ _tag: "Enqueue", jobs: [{ type: "a", payload: "fine" }, { type: "a", payload: make() }] })
        right(apply({ _tag: "Enqueue", jobs: [{ type: "b", payload: [1, 2] }] }))
        bad({ _tag: "Complete", token: first!.token, result: make() })
        right(apply({ _tag: "Complete", token: first!.token, result: { ok: true } }))
        bad({ _tag: "Heartbeat", token: second!.token, progress: make() })
        right(apply({ _tag: "Heartbeat", token: second!.token, progress: 50 }))
        bad({ _tag: "Complete", token: third!.token, result: make() })
        right(apply({ _tag: "Fail", token: third!.token, error: "boom" }))
        return { state, refused }
      }
      const clean = run(false)
      const mixed = run(true)
      expect(mixed.refused).toEqual(Array.from({ length: payload ? 4 : 3 }, () => "InvalidRequest"))
      // Exactly as if the bad commands had never come: same jobs, same seqs, same header.
      const a = commitAndReload(clean.state)
      const b = commitAndReload(mixed.state)
      expect(canonical(b.text)).toEqual(canonical(a.text))
      expect(b.file.jobs.map((job) => job.id)).toEqual(["job-1", "job-2", "job-3", "job-4"])
      expect(b.back.get("job-1")?.result).toEqual({ ok: true })
      for (const job of b.file.jobs) expect(Either.isRight(encodeJob(job))).toBe(true)
    })
  }

  it("a payload whose JSON throws the second time is stored as its one write, which a claim in the same batch reads", () => {
    const state = QueueState.empty()
    const secrets = testSecrets()
    state.begin()
    const [added] = right(
      state.apply({ _tag: "Enqueue", jobs: [{ type: "a", payload: throwsSecondTime() }] }, T0, secrets)
    )
    const [claimed] = right(state.apply({ _tag: "Claim", workerId: "w", max: 1 }, T0, secrets))
    expect(claimed!.job.id).toBe(added!.id)
    expect(claimed!.job.payload).toBe("once")
    const { back, file } = commitAndReload(state)
    expect(file.jobs.map((job) => [job.id, job.state, job.payload])).toEqual([["job-1", "running", "once"]])
    expect(back.get("job-1")?.payload).toBe("once")
  })

  it("names what went wrong, without the value", () => {
    const state = QueueState.empty()
    const result = state.apply({ _tag: "Enqueue", jobs: [{ type: "a", payload: { n: 10n } }] }, T0, testSecrets())
    expect(Either.isLeft(result) && result.left.message).toMatch(
      /^the Enqueue request was refused: TypeError: .*BigInt/
    )
    expect(state.size).toBe(0)
  })
})

describe("numbers that would leave queue.json unreadable", () => {
  it("times the state computes stop at maxInstant: huge delays, retry delays and backoffs read back", () => {
    const secrets = testSecrets()
    const state = QueueState.empty()
    state.begin()
    const apply = <C extends Command>(command: C) => right(state.apply(command, T0, secrets))
    const huge = Number.MAX_SAFE_INTEGER
    const [delayed, retried, backedOff] = apply({
      _tag: "Enqueue",
      jobs: [
        { type: "a", delayMs: huge },
        { type: "b" },
        { type: "c", backoff: { _tag: "exponential", baseMs: huge, maxMs: huge, jitter: 0 } }
      ]
    })
    expect(delayed!.runAt).toBe(maxInstant)
    const [claimedB] = apply({ _tag: "Claim", workerId: "w", max: 1, types: ["b"] })
    expect(apply({ _tag: "Fail", token: claimedB!.token, error: "x", retryDelayMs: huge }).runAt).toBe(maxInstant)
    const [claimedC] = apply({ _tag: "Claim", workerId: "w", max: 1, types: ["c"] })
    expect(apply({ _tag: "Fail", token: claimedC!.token, error: "x" }).runAt).toBe(maxInstant)
    const { file } = commitAndReload(state)
    expect(file.jobs.map((job) => [job.id, job.runAt])).toEqual([
      [delayed!.id, maxInstant],
      [retried!.id, maxInstant],
      [backedOff!.id, maxInstant]
    ])
  })

  it("a job queue.json held before requests were bounded still reads, and its next retry is bounded", () => {
    const state = QueueState.empty()
    state.begin()
    const [job] = right(state.apply({ _tag: "Enqueue", jobs: [{ type: "a", maxAttempts: 1_000 }] }, T0, testSecrets()))
    const { text } = commitAndReload(state)
    // As an older broker could have written it: a backoff past today's maxima, on its 1,000th attempt.
    const old = JSON.parse(text) as { jobs: Array<Record<string, unknown>> }
    old.jobs[0]!.backoff = {
      _tag: "exponential",
      baseMs: Number.MAX_SAFE_INTEGER,
      maxMs: Number.MAX_SAFE_INTEGER,
      jitter: 1
    }
    old.jobs[0]!.attempts = 998
    const back = QueueState.fromFile(decodeFile(old), text.length)
    back.begin()
    const secrets = testSecrets()
    const [claimed] = right(back.apply({ _tag: "Claim", workerId: "w", max: 1 }, T0, secrets))
    const failed = right(back.apply({ _tag: "Fail", token: claimed!.token, error: "x" }, T0, secrets))
    expect(failed.id).toBe(job!.id)
    expect(Number.isSafeInteger(failed.runAt)).toBe(true)
    expect(failed.runAt).toBeLessThanOrEqual(maxInstant)
    commitAndReload(back)
  })

  it("random valid requests, extremes included, always leave a queue.json that reads back and answers that encode", () => {
    const options = Arbitrary.make(EnqueueOptions).map((o) =>
      JSON.parse(JSON.stringify(o)) as typeof EnqueueOptions.Type
    )
    const fail = Arbitrary.make(FailRequest.pipe(Schema.omit("token")))
    const heartbeat = Arbitrary.make(HeartbeatRequest.pipe(Schema.omit("token")))
    const step = fc.oneof(
      fc.record({ _tag: fc.constant("Enqueue" as const), jobs: fc.array(options, { minLength: 1, maxLength: 4 }) }),
      fc.record({
        _tag: fc.constant("Claim" as const),
        max: fc.integer({ min: 1, max: 4 }),
        leaseMs: fc.constantFrom(1, 3_600_000)
      }),
      fc.record({ _tag: fc.constant("Fail" as const), request: fail }),
      fc.record({ _tag: fc.constant("Heartbeat" as const), request: heartbeat }),
      fc.record({ _tag: fc.constant("Complete" as const) }),
      fc.record({
        _tag: fc.constant("Tick" as const),
        at: fc.oneof(fc.integer({ min: 0, max: maxDelayMs }), fc.constant(maxInstant))
      })
    )
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        const secrets = testSecrets()
        let state = QueueState.empty()
        let now = T0
        const tokens: Array<LeaseToken> = []
        const answers: Array<Job> = []
        state.begin()
        const keep = (result: Either.Either<unknown, OsqueueError>) => {
          if (Either.isLeft(result)) return
          const value = result.right
          for (const item of Array.isArray(value) ? value : [value]) {
            const job = (item as { job?: Job }).job ?? (item as Job)
            if (typeof job === "object" && job !== null && "id" in job) answers.push(job)
            const token = (item as { token?: LeaseToken }).token
            if (token !== undefined) tokens.push(token)
          }
        }
        for (const s of steps) {
          switch (s._tag) {
            case "Enqueue":
              keep(state.apply({ _tag: "Enqueue", jobs: s.jobs }, now, secrets))
              break
            case "Claim":
              keep(state.apply({ _tag: "Claim", workerId: "w", max: s.max, leaseMs: s.leaseMs }, now, secrets))
              break
            case "Fail":
              keep(
                state.apply(
                  { _tag: "Fail", token: tokens.pop() ?? ("job-1/1/0" as LeaseToken), ...s.request },
                  now,
                  secrets
                )
              )
              break
            case "Heartbeat": {
              const token = tokens[tokens.length - 1] ?? ("job-1/1/0" as LeaseToken)
              keep(state.apply({ _tag: "Heartbeat", token, ...s.request }, now, secrets))
              break
            }
            case "Complete":
              keep(state.apply({ _tag: "Complete", token: tokens.pop() ?? ("job-1/1/0" as LeaseToken) }, now, secrets))
              break
            case "Tick": {
              // A commit, then time moves on (to the far future, at times) and a takeover reads it back.
              now = Math.max(now, s.at)
              state = commitAndReload(state).back
              state.begin()
              state.tick(now)
              break
            }
          }
        }
        commitAndReload(state)
        for (const job of answers) expect(Either.isRight(encodeJob(job))).toBe(true)
      }),
      { numRuns: 300 }
    )
  })
})

describe("pausing types one by one", () => {
  it(`stops at ${maxPausedTypes} types, naming the limit; pausing one already paused, or every type, still works`, () => {
    const state = QueueState.empty()
    const secrets = testSecrets()
    for (let i = 0; i < maxPausedTypes; i++) right(state.apply({ _tag: "Pause", type: `t${i}` }, T0, secrets))
    const refused = state.apply({ _tag: "Pause", type: "one-more" }, T0, secrets)
    expect(Either.isLeft(refused) && refused.left.message).toContain(`at most ${maxPausedTypes} types`)
    expect(state.paused.types).toHaveLength(maxPausedTypes)
    expect(right(state.apply({ _tag: "Pause", type: "t0" }, T0, secrets)).types).toHaveLength(maxPausedTypes)
    expect(right(state.apply({ _tag: "Pause" }, T0, secrets)).all).toBe(true)
    right(state.apply({ _tag: "Resume", type: "t0" }, T0, secrets))
    expect(right(state.apply({ _tag: "Pause", type: "one-more" }, T0, secrets)).types).toContain("one-more")
  })
})

describe("lease tokens", () => {
  const leased = () => {
    const secrets = testSecrets()
    const state = QueueState.empty()
    state.begin()
    right(state.apply({ _tag: "Enqueue", jobs: [{ type: "a" }] }, T0, secrets))
    const [claimed] = right(state.apply({ _tag: "Claim", workerId: "w", max: 1 }, T0, secrets))
    return { state, secrets, claimed: claimed! }
  }

  it("a token made from what the job's answers show is refused with LeaseLost; a malformed one is InvalidRequest", () => {
    const { claimed, secrets, state } = leased()
    const shown = Schema.encodeSync(JobOnWire)(state.get(claimed.job.id)!)
    expect(JSON.stringify(shown)).not.toContain(parseLeaseToken(claimed.token)!.secret)
    const forged = `${shown.id}/${shown.claims}/${shown.lease!.epoch}` as LeaseToken
    const guessed = `${forged}/${"A".repeat(22)}` as LeaseToken
    for (const token of [forged, guessed]) {
      const result = state.apply({ _tag: "Complete", token }, T0, secrets)
      expect(tagOf(result)).toBe("LeaseLost")
    }
    expect(tagOf(state.apply({ _tag: "Complete", token: "job-1/x/1" as LeaseToken }, T0, secrets))).toBe(
      "InvalidRequest"
    )
    expect(state.get(claimed.job.id)!.state).toBe("running")
    expect(right(state.apply({ _tag: "Complete", token: claimed.token }, T0, secrets)).state).toBe("completed")
  })

  it("the secret stays in queue.json (a takeover keeps the lease) and out of the operator's view", () => {
    const { claimed, state } = leased()
    const secret = parseLeaseToken(claimed.token)!.secret!
    const { back, text } = commitAndReload(state)
    expect(text).toContain(secret)
    expect(back.publicJson(back.seq, back.commitId)).not.toContain(secret)
    expect(JSON.parse(back.publicJson(back.seq, back.commitId)).jobs[0].lease).toEqual({
      workerId: "w",
      epoch: 0,
      expiresAt: T0 + 30_000,
      ttlMs: 30_000
    })
    back.begin()
    back.takeover({ id: "leader-2", url: "http://b", since: T0 }, T0 + 1)
    expect(right(back.apply({ _tag: "Heartbeat", token: claimed.token }, T0 + 2, testSecrets())).jobId).toBe("job-1")
  })

  it("a lease an older broker granted (no secret) takes its three-part token, and only that", () => {
    const { claimed, state } = leased()
    const { text } = commitAndReload(state)
    const old = JSON.parse(text) as { jobs: Array<{ lease: Record<string, unknown> }> }
    delete old.jobs[0]!.lease.secret
    const back = QueueState.fromFile(decodeFile(old), text.length)
    const legacy = `job-1/1/0` as LeaseToken
    expect(tagOf(back.apply({ _tag: "Heartbeat", token: claimed.token }, T0, testSecrets()))).toBe("LeaseLost")
    expect(tagOf(back.apply({ _tag: "Heartbeat", token: legacy }, T0, testSecrets()))).toBe("ok")
  })
})

describe("through the engine", () => {
  const engine = Effect.gen(function*() {
    const store = yield* MemoryStore.make
    const scope = yield* Scope.make()
    const layer = Engine.layer.pipe(
      Layer.provide(Layer.succeed(ObjectStore, store)),
      Layer.provide(EngineConfig.layer({ advertisedUrl: "http://a:8080", electionTtl: Duration.seconds(3) }))
    )
    const context = yield* Layer.buildWithScope(layer, scope)
    yield* TestClock.adjust(Duration.millis(0))
    return { commit: Context.get(context, GroupCommit.GroupCommit), read: durable(store) }
  })

  /** Runs an effect to its end while the test clock moves (a commit may wait on it). */
  const settle = <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(effect)
      for (let i = 0; i < 20 && Option.isNone(yield* fiber.poll); i++) yield* TestClock.adjust(Duration.millis(0))
      return yield* fiber.await.pipe(Effect.flatMap((exit) => exit))
    })

  it.scoped("one batch: the good commands commit, each bad one is refused, queue.json reads back and the loop goes on", () =>
    Effect.gen(function*() {
      const { commit, read } = yield* engine
      const commands: Array<Command> = [
        { _tag: "Enqueue", jobs: [{ type: "good" }] },
        ...unwritable.map(([, make]): Command => ({ _tag: "Enqueue", jobs: [{ type: "bad", payload: make() }] })),
        { _tag: "Enqueue", jobs: [{ type: "good", delayMs: Number.MAX_SAFE_INTEGER }] },
        { _tag: "Enqueue", jobs: [{ type: "good", payload: { fine: true } }] }
      ]
      const outcomes = yield* settle(commit.submitAll(commands))
      expect(outcomes.map(tagOf)).toEqual([
        "ok",
        "InvalidRequest",
        "InvalidRequest",
        "InvalidRequest",
        "ok",
        "ok"
      ])
      const loaded = Option.getOrThrow(yield* read)
      expect(loaded.file.jobs.map((job) => [job.id, job.type])).toEqual([["job-1", "good"], ["job-2", "good"], [
        "job-3",
        "good"
      ]])
      // Claims, outcomes with bad results beside good ones, and then more commits.
      const claimed = yield* settle(commit.submit({ _tag: "Claim", workerId: "w", max: 2 }))
      expect(claimed.map(({ job }) => job.id)).toEqual(["job-1", "job-3"])
      const [a, b] = claimed
      const after = yield* settle(commit.submitAll<Command>([
        { _tag: "Complete", token: a!.token, result: nested(100_000) },
        { _tag: "Heartbeat", token: b!.token, progress: { n: 1n } },
        { _tag: "Complete", token: b!.token, result: "done" },
        { _tag: "Fail", token: a!.token, error: "boom", retryDelayMs: Number.MAX_SAFE_INTEGER }
      ]))
      expect(after.map(tagOf)).toEqual(["InvalidRequest", "InvalidRequest", "ok", "ok"])
      const next = yield* settle(commit.submit({ _tag: "Enqueue", jobs: [{ type: "later" }] }))
      expect(next[0]!.id).toBe("job-4")
      const final = Option.getOrThrow(yield* read)
      expect(final.file.jobs.map((job) => [job.id, job.state])).toEqual([
        ["job-1", "failed-waiting-retry"],
        ["job-2", "delayed"],
        ["job-3", "completed"],
        ["job-4", "queued"]
      ])
      expect(final.file.jobs.find((job) => job.id === "job-1")!.runAt).toBe(maxInstant)
      expect(final.file.jobs.find((job) => job.id === "job-3")!.result).toBe("done")
    }))

  it("the leader's secrets are random: two claims never share one", () => {
    const seen = new Set(Array.from({ length: 1_000 }, LeaseSecret.random))
    expect(seen.size).toBe(1_000)
    for (const secret of seen) expect(secret).toMatch(/^[A-Za-z0-9_-]{22}$/)
  })
})
