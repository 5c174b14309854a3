/**
 * A job's JSON written field by field (internal/jobText.ts) is `JSON.stringify`'s: byte for byte
 * for every job the state machine makes, whatever the commands did to it; the same JSON for any
 * job, whatever order its nested objects hold their fields in.
 */
import { describe, expect, it } from "@effect/vitest"
import { type EnqueueOptions, Job, type JobId, type LeaseToken, storedJob } from "@osqueue/types"
import { Arbitrary, FastCheck } from "effect"
import type { Command } from "../src/Command.js"
import { fieldTexts, storedText } from "../src/internal/jobText.js"
import { defaultLimits, QueueState } from "../src/QueueState.js"
import { testSecrets } from "./fixtures/model.js"
import { right } from "./fixtures/outcomes.js"

const T0 = 1_700_000_000_000
const secrets = testSecrets()
const fieldNames = Object.keys(Job.fields) as ReadonlyArray<keyof Job>

const expectJsonBytes = (job: Job) => {
  expect(storedText(job, JSON.stringify(job.payload))).toBe(JSON.stringify(storedJob(job)))
  fieldNames.forEach((key, i) => {
    const value = job[key]
    if (value !== undefined) expect(fieldTexts[i]!(value as never)).toBe(JSON.stringify(value))
  })
}

describe("a job's JSON written field by field", () => {
  it("is JSON.stringify's, byte for byte, for every job the state makes", () => {
    const s = QueueState.empty({ ...defaultLimits, maxHistory: 3 })
    let now = T0
    const ids = new Set<JobId>()
    const run = <C extends Command>(command: C) => right(s.apply(command, now += 7, secrets))
    const checkAll = () => {
      for (const id of ids) {
        const job = s.get(id)
        if (job !== undefined) expectJsonBytes(job)
      }
    }
    const awkward = "quote \" backslash \\ \n\t \u2028 é 😀 \ud800"
    const options: Array<EnqueueOptions> = [
      { type: "plain", payload: { n: 1 } },
      { type: `t${awkward}`, payload: [awkward, -0, 1e21], idempotencyKey: `k${awkward}`, priority: -3 },
      {
        type: "timed",
        payload: null,
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        timeoutMs: 9,
        maxAttempts: 3,
        backoff: { _tag: "fixed", delayMs: 5 }
      },
      { type: "later", payload: "x", delayMs: 3 }
    ]
    for (const job of run({ _tag: "Enqueue", jobs: options })) ids.add(job.id)
    const flow = run({
      _tag: "EnqueueFlow",
      job: { type: "parent", payload: { p: 1 }, children: [{ type: "child", payload: { c: awkward } }] }
    })
    for (const job of flow) ids.add(job.id)
    checkAll()

    const claimAll = (workerId: string): ReadonlyArray<LeaseToken> => {
      now += 10
      return run({ _tag: "Claim", workerId, max: 10, leaseMs: 1_000 }).map((claimed) => claimed.token)
    }
    const [first, second, third, fourth] = claimAll(`w${awkward}`)
    checkAll()
    run({ _tag: "Heartbeat", token: first!, progress: { done: 0.5, note: awkward }, leaseMs: 2_000 })
    run({ _tag: "Fail", token: second!, error: `failed: ${awkward}` })
    run({ _tag: "Release", token: third! })
    run({ _tag: "Complete", token: fourth!, result: { ok: awkward, list: [1, null, { deep: [] }] } })
    checkAll()
    // Again until each job has run out of attempts or finished: histories at their limit, ended
    // attempts with errors, dead jobs, a parent that ran once its child finished.
    for (let round = 0; round < 6; round++) {
      now += 100_000
      claimAll("w2").forEach((token, i) =>
        i % 2 === 0
          ? run({ _tag: "Fail", token, error: `round ${round}` })
          : run({ _tag: "Complete", token, result: round })
      )
      checkAll()
    }
  })

  it("writes any job as the same JSON", () => {
    FastCheck.assert(
      FastCheck.property(Arbitrary.make(Job), (job) => {
        const payload = JSON.stringify(job.payload) as string | undefined
        const text = payload === undefined ? undefined : storedText(job, payload)
        const json = JSON.stringify(storedJob(job))
        if (text === undefined) return
        expect(JSON.parse(text)).toStrictEqual(JSON.parse(json))
        expect(text.length).toBe(json.length)
      }),
      { seed: 20_261_207, numRuns: 2_000 }
    )
  })
})
