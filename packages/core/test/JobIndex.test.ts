/**
 * The job indexes as a replica keeps them: a replica following the log installs every change but
 * claims, expires and retires nothing itself, so nothing pops its heaps; their stale items must
 * still not pile up with every job that passes through (`JobIndex.pushTo`).
 */
import { describe, expect, it } from "@effect/vitest"
import type { JobId, LeaseToken } from "@osqueue/types"
import type { Command } from "../src/Command.js"
import { Entry } from "../src/internal/entry.js"
import { JobIndex } from "../src/internal/jobIndex.js"
import { defaultLimits, QueueState } from "../src/QueueState.js"
import { testSecrets } from "./fixtures/model.js"
import { right } from "./fixtures/outcomes.js"

const T0 = 1_700_000_000_000
const secrets = testSecrets()

describe("JobIndex on a replica", () => {
  it("keeps each heap within twice its current jobs and a margin, however many jobs pass through", () => {
    const leader = QueueState.empty({ ...defaultLimits, keepFinished: 100_000 })
    const index = new JobIndex()
    let stamp = 0
    const mirror = (id: JobId) => {
      const job = leader.get(id)
      index.install(id, index.entries.get(id), job === undefined ? undefined : Entry.of(job, ++stamp))
    }
    const run = <C extends Command>(command: C) => right(leader.apply(command, T0, secrets))

    const jobs = 5_000
    for (let i = 0; i < jobs; i++) {
      const [enqueued] = run({ _tag: "Enqueue", jobs: [{ type: "t" }] })
      mirror(enqueued!.id)
      const [claimed] = run({ _tag: "Claim", workerId: "w", types: ["t"], max: 1 })
      mirror(claimed!.job.id)
      run({ _tag: "Complete", token: claimed!.token as LeaseToken, result: i })
      mirror(claimed!.job.id)
    }
    // Every job passed through the ready heap and the leases' heap, and none is current there.
    expect(index.ready.get("t")!.size).toBeLessThanOrEqual(1_025)
    expect(index.leases.size).toBeLessThanOrEqual(1_025)
    expect(index.finished.size).toBe(jobs)

    // What is current is still found.
    const [next] = run({ _tag: "Enqueue", jobs: [{ type: "t" }] })
    mirror(next!.id)
    expect(index.validTop(index.ready.get("t")!)?.id).toBe(next!.id)
  })
})
