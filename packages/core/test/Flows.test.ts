/**
 * Flows in the state machine (docs/flows.md): a parent waits for its children, keeps how each
 * ended, runs or dies per the flow's policy; nested levels; cancels cascade down; a refused flow
 * changes nothing; checkpoints and log entries carry it all.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  type FlowJob,
  type Job,
  type JobId,
  type LeaseToken,
  maxFlowDepth,
  maxFlowJobs,
  QueueFile
} from "@osqueue/types"
import { Either, Schema } from "effect"
import type { Command, ResultOf } from "../src/Command.js"
import { decode, logKey } from "../src/LogEntry.js"
import { defaultLimits, type Limits, QueueState } from "../src/QueueState.js"
import { testSecrets } from "./fixtures/model.js"
import { left, right } from "./fixtures/outcomes.js"

const T0 = 1_700_000_000_000
const secrets = testSecrets()

const fresh = (overrides: Partial<Limits> = {}) =>
  QueueState.empty({ ...defaultLimits, defaultMaxAttempts: 1, ...overrides })

const run = <C extends Command>(s: QueueState, command: C, now = T0) => s.apply(command, now, secrets)

const flow = (s: QueueState, job: FlowJob, onChildFailure?: "fail" | "ignore", now = T0) =>
  run(s, { _tag: "EnqueueFlow", job, ...(onChildFailure === undefined ? {} : { onChildFailure }) }, now)

/** Claims one job of `type` and returns its token. */
const claim = (s: QueueState, type: string, now = T0): { job: Job; token: LeaseToken } => {
  const [claimed] = right(run(s, { _tag: "Claim", workerId: "w", types: [type], max: 1 }, now))
  if (claimed === undefined) throw new Error(`no ${type} job to claim`)
  return claimed
}

const state = (s: QueueState, id: string) => s.get(id)?.state

/** Root `report` over two `part`s. */
const twoParts: FlowJob = {
  type: "report",
  payload: { r: 1 },
  children: [{ type: "part", payload: { p: 1 } }, { type: "part", payload: { p: 2 } }]
}

describe("a flow", () => {
  it("is enqueued whole, each job before its children; the parent waits, the children are claimable", () => {
    const s = fresh()
    const jobs = right(flow(s, twoParts))
    expect(jobs.map((job) => [job.id, job.type, job.state])).toEqual([
      ["job-1", "report", "waiting-children"],
      ["job-2", "part", "queued"],
      ["job-3", "part", "queued"]
    ])
    expect(jobs[0]).toMatchObject({ children: ["job-2", "job-3"], onChildFailure: "fail" })
    expect(jobs[1]!.parentId).toBe("job-1")
    expect(s.stats().counts["waiting-children"]).toBe(1)
    expect(s.hasClaimable(["report"], T0)).toBe(false)
    expect(right(run(s, { _tag: "Claim", workerId: "w", types: ["report"], max: 5 }))).toEqual([])
  })

  it("the parent becomes claimable when its last child completes, with every child's result", () => {
    const s = fresh()
    right(flow(s, twoParts))
    const first = claim(s, "part")
    right(run(s, { _tag: "Complete", token: first.token, result: { sum: 1 } }))
    expect(state(s, "job-1")).toBe("waiting-children")
    expect(s.get("job-1")!.childResults).toEqual({ "job-2": { state: "completed", result: { sum: 1 } } })
    const second = claim(s, "part")
    right(run(s, { _tag: "Complete", token: second.token }))
    const parent = claim(s, "report")
    expect(parent.job.id).toBe("job-1")
    // In the children's order, whatever order they ended in.
    expect(Object.keys(parent.job.childResults!)).toEqual(["job-2", "job-3"])
    expect(parent.job.childResults).toEqual({
      "job-2": { state: "completed", result: { sum: 1 } },
      "job-3": { state: "completed" }
    })
  })

  it("a parent whose own runAt is later waits delayed for it, then runs with its priority", () => {
    const s = fresh()
    right(flow(s, { type: "report", delayMs: 5_000, priority: -3, children: [{ type: "part" }] }))
    right(run(s, { _tag: "Complete", token: claim(s, "part").token }))
    expect(s.get("job-1")).toMatchObject({ state: "delayed", runAt: T0 + 5_000, priority: -3 })
    s.begin()
    s.tick(T0 + 5_000)
    expect(state(s, "job-1")).toBe("queued")
  })

  it("fail: a child that dies after its retries sends the parent to the dead-letter list, naming the child", () => {
    const s = fresh({ defaultMaxAttempts: 2 })
    right(flow(s, twoParts))
    const once = claim(s, "part")
    right(run(s, { _tag: "Fail", token: once.token, error: "disk full", retryDelayMs: 0 }))
    // The first failure is retried: the parent still waits.
    expect(state(s, "job-1")).toBe("waiting-children")
    const twice = claim(s, "part")
    expect(twice.job.id).toBe(once.job.id)
    right(run(s, { _tag: "Fail", token: twice.token, error: "disk full" }))
    expect(s.get("job-1")).toMatchObject({
      state: "dead",
      lastError: "child job-2 (part) died: disk full",
      childResults: { "job-2": { state: "dead", error: "disk full" } }
    })
    expect(s.stats().deadTotal).toBe(2)
    // The sibling still runs; its end is kept by the dead parent (a retry of it runs with it).
    right(run(s, { _tag: "Complete", token: claim(s, "part").token, result: 3 }))
    expect(s.get("job-1")!.childResults!["job-3"]).toEqual({ state: "completed", result: 3 })
  })

  it("ignore: the parent runs once every child ended, the failed one's end in its results, without a result", () => {
    const s = fresh()
    right(flow(s, twoParts, "ignore"))
    right(run(s, { _tag: "Fail", token: claim(s, "part").token, error: "boom", retryable: false }))
    right(run(s, { _tag: "Complete", token: claim(s, "part").token, result: "ok" }))
    const parent = claim(s, "report")
    expect(parent.job.childResults).toEqual({
      "job-2": { state: "dead", error: "boom" },
      "job-3": { state: "completed", result: "ok" }
    })
  })

  it("nests: a child that is a parent runs after its own children, and its parent after it", () => {
    const s = fresh()
    right(
      flow(s, {
        type: "root",
        children: [{ type: "mid", children: [{ type: "leaf" }, { type: "leaf" }] }, { type: "leaf" }]
      })
    )
    // job-1 root, job-2 mid, job-3 and job-4 its leaves, job-5 root's leaf.
    expect(s.get("job-2")).toMatchObject({ state: "waiting-children", parentId: "job-1", children: ["job-3", "job-4"] })
    expect(s.get("job-1")!.children).toEqual(["job-2", "job-5"])
    for (let i = 0; i < 3; i++) right(run(s, { _tag: "Complete", token: claim(s, "leaf").token, result: i }))
    expect(state(s, "job-1")).toBe("waiting-children")
    const mid = claim(s, "mid")
    expect(Object.keys(mid.job.childResults!)).toEqual(["job-3", "job-4"])
    right(run(s, { _tag: "Complete", token: mid.token, result: "mid" }))
    expect(claim(s, "root").job.childResults).toEqual({
      "job-2": { state: "completed", result: "mid" },
      "job-5": { state: "completed", result: 2 }
    })
  })

  it("a grandchild that dies under fail takes its parent and then the root with it", () => {
    const s = fresh()
    right(flow(s, { type: "root", children: [{ type: "mid", children: [{ type: "leaf" }] }] }))
    right(run(s, { _tag: "Fail", token: claim(s, "leaf").token, error: "x", retryable: false }))
    expect(s.get("job-2")!.lastError).toBe("child job-3 (leaf) died: x")
    expect(s.get("job-1")!.lastError).toBe("child job-2 (mid) died: child job-3 (leaf) died: x")
  })

  it("a cancelled parent cancels its unfinished children, running ones too (their leases end), and theirs", () => {
    const s = fresh()
    right(flow(s, { type: "root", children: [{ type: "mid", children: [{ type: "leaf" }] }, { type: "leaf" }] }))
    const running = claim(s, "leaf")
    right(run(s, { _tag: "Cancel", id: "job-1" as JobId }))
    expect(["job-1", "job-2", "job-3", "job-4"].map((id) => state(s, id))).toEqual([
      "cancelled",
      "cancelled",
      "cancelled",
      "cancelled"
    ])
    expect(left(run(s, { _tag: "Complete", token: running.token }))._tag).toBe("LeaseLost")
  })

  it("a cancelled or deleted child fails its parent under fail; under ignore the parent runs without it", () => {
    const s = fresh()
    right(flow(s, twoParts))
    right(run(s, { _tag: "Cancel", id: "job-2" as JobId }))
    expect(s.get("job-1")!.lastError).toBe("child job-2 (part) was cancelled")
    right(flow(s, twoParts))
    right(run(s, { _tag: "Delete", id: "job-6" as JobId }))
    expect(s.get("job-4")!.lastError).toBe("child job-6 (part) was deleted before it finished")
    const ignoring = fresh()
    right(flow(ignoring, twoParts, "ignore"))
    right(run(ignoring, { _tag: "Purge", state: "queued", type: "part" }))
    expect(ignoring.get("job-1")).toMatchObject({
      state: "queued",
      childResults: { "job-2": { state: "deleted" }, "job-3": { state: "deleted" } }
    })
  })

  it("retention may drop a completed child: its parent keeps the result", () => {
    const s = fresh({ keepFinished: 0 })
    right(flow(s, { type: "report", children: [{ type: "part" }, { type: "part" }] }))
    right(run(s, { _tag: "Complete", token: claim(s, "part").token, result: "kept" }))
    s.begin()
    s.tick(T0 + 1)
    expect(s.get("job-2")).toBeUndefined()
    right(run(s, { _tag: "Complete", token: claim(s, "part", T0 + 1).token }, T0 + 1))
    expect(claim(s, "report", T0 + 1).job.childResults!["job-2"]).toEqual({ state: "completed", result: "kept" })
  })

  it("a parent keeps its children's results up to the payload limit in all; past it a result is omitted", () => {
    const s = fresh({ maxPayloadBytes: 100 })
    right(flow(s, twoParts))
    right(run(s, { _tag: "Complete", token: claim(s, "part").token, result: "a".repeat(40) }))
    right(run(s, { _tag: "Complete", token: claim(s, "part").token, result: "b".repeat(40) }))
    expect(s.get("job-1")!.childResults).toEqual({
      "job-2": { state: "completed", result: "a".repeat(40) },
      "job-3": { state: "completed", resultOmitted: true }
    })
  })

  it("a retried child takes its end back from a dead parent; the parent retried then waits for it", () => {
    const s = fresh()
    right(flow(s, twoParts))
    right(run(s, { _tag: "Fail", token: claim(s, "part").token, error: "x", retryable: false }))
    expect(state(s, "job-1")).toBe("dead")
    right(run(s, { _tag: "Retry", id: "job-2" as JobId }))
    expect(s.get("job-1")!.childResults).toBeUndefined()
    right(run(s, { _tag: "Retry", id: "job-1" as JobId }))
    expect(state(s, "job-1")).toBe("waiting-children")
    right(run(s, { _tag: "Complete", token: claim(s, "part").token }))
    right(run(s, { _tag: "Complete", token: claim(s, "part").token }))
    expect(state(s, "job-1")).toBe("queued")
  })

  it("a waiting parent cannot be promoted or retried; its priority can change", () => {
    const s = fresh()
    right(flow(s, twoParts))
    expect(left(run(s, { _tag: "Promote", id: "job-1" as JobId }))._tag).toBe("InvalidTransition")
    expect(left(run(s, { _tag: "Retry", id: "job-1" as JobId }))._tag).toBe("InvalidTransition")
    expect(right(run(s, { _tag: "SetPriority", id: "job-1" as JobId, priority: 5 })).priority).toBe(5)
  })

  it("the root's idempotency key answers the flow enqueued before; any other key held already is refused", () => {
    const s = fresh()
    const first = right(flow(s, { ...twoParts, idempotencyKey: "nightly" }))
    const again = right(flow(s, { type: "other", idempotencyKey: "nightly", children: [{ type: "x" }] }))
    expect(again.map((job) => job.id)).toEqual(first.map((job) => job.id))
    right(run(s, { _tag: "Enqueue", jobs: [{ type: "x", idempotencyKey: "taken" }] }))
    const refused = left(flow(s, { type: "r", children: [{ type: "x", idempotencyKey: "taken" }] }))
    expect(refused.message).toMatch(/"taken" is held by job-4, outside this flow/)
  })
})

describe("a refused flow changes nothing", () => {
  const deep = (
    levels: number
  ): FlowJob => (levels === 1 ? { type: "leaf" } : { type: "level", children: [deep(levels - 1)] })
  const cases: ReadonlyArray<readonly [string, FlowJob, string, RegExp]> = [
    ["too deep", deep(maxFlowDepth + 1), "InvalidRequest", new RegExp(`at most ${maxFlowDepth} levels`)],
    [
      "too many jobs",
      { type: "r", children: Array.from({ length: maxFlowJobs }, () => ({ type: "c" })) },
      "InvalidRequest",
      new RegExp(`at most ${maxFlowJobs} jobs`)
    ],
    [
      "a key named twice",
      { type: "r", children: [{ type: "c", idempotencyKey: "k" }, { type: "c", idempotencyKey: "k" }] },
      "InvalidRequest",
      /named twice/
    ],
    [
      "a payload too large",
      { type: "r", children: [{ type: "c" }, { type: "c", payload: "x".repeat(300) }] },
      "PayloadTooLarge",
      /payload/
    ],
    [
      "a child's payload that is no JSON (a BigInt)",
      { type: "r", children: [{ type: "c" }, { type: "c", payload: 10n }] },
      "InvalidRequest",
      /BigInt|not JSON/
    ],
    [
      "a key held already by a job outside the flow",
      { type: "r", children: [{ type: "c", idempotencyKey: "before-key" }] },
      "InvalidRequest",
      /held by job-1/
    ]
  ]
  for (const [name, job, tag, message] of cases) {
    it(name, () => {
      const s = fresh({ maxPayloadBytes: 256 })
      right(run(s, { _tag: "Enqueue", jobs: [{ type: "before", idempotencyKey: "before-key" }] }))
      const before = s.toJson(0, "c")
      const error = left(flow(s, job))
      expect(error._tag).toBe(tag)
      expect(error.message).toMatch(message)
      expect(s.toJson(0, "c")).toBe(before)
    })
  }

  it("a flow at the limits is taken", () => {
    const s = fresh()
    expect(right(flow(s, deep(maxFlowDepth))).length).toBe(maxFlowDepth)
    expect(
      right(flow(s, { type: "r", children: Array.from({ length: maxFlowJobs - 1 }, () => ({ type: "c" })) })).length
    ).toBe(maxFlowJobs)
  })

  it("a flow past the state's cap is QueueFull", () => {
    const s = fresh({ maxStateBytes: 2_000 })
    const error = left(flow(s, { type: "r", children: Array.from({ length: 10 }, () => ({ type: "c" })) }))
    expect(error._tag).toBe("QueueFull")
    expect(s.size).toBe(0)
  })
})

describe("flows across a failover", () => {
  it("a checkpoint and a replica replaying the log both hold the flow as the leader does", () => {
    const leader = fresh()
    const replica = fresh()
    let position = 0
    const commit = <C extends Command>(command: C): ResultOf<C> => {
      leader.begin()
      leader.tick(T0)
      const result = right(leader.apply(command, T0, secrets))
      const { parts } = leader.entryParts("batch", ++position, `L:${position}`)
      leader.committed(position, `L:${position}`)
      expect(replica.replay(Either.getOrThrow(decode(logKey(position), Buffer.concat(parts))))).toBeUndefined()
      return result
    }
    commit({ _tag: "EnqueueFlow", job: twoParts, onChildFailure: "ignore" })
    const [one, two] = commit({ _tag: "Claim", workerId: "w", types: ["part"], max: 2 })
    commit({ _tag: "Complete", token: one!.token, result: { n: 1 } })
    commit({ _tag: "Fail", token: two!.token, error: "no", retryable: false })
    expect(replica.get("job-1")).toEqual(leader.get("job-1"))
    expect(replica.get("job-1")!.state).toBe("queued")
    const text = leader.toJson(position, "c")
    const restored = QueueState.fromFile(Schema.decodeUnknownSync(QueueFile)(JSON.parse(text)), text.length)
    expect(restored.get("job-1")).toEqual(leader.get("job-1"))
    expect(restored.stats().counts).toEqual(leader.stats().counts)
  })
})
