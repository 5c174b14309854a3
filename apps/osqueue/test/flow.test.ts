/**
 * `osqueue flow enqueue|show`, spawned against a real broker process on the file store: a nested
 * flow from a JSON file, printed as a tree and as JSON; a file that is no flow refused in one line
 * (exit 2); a flow the broker refuses (exit 1); a child's parent and its children's ends shown.
 */
import type { Job } from "@osqueue/types"
import { mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { freePort, killAll, leading, osqueue, osqueueRun } from "./support/processes.js"

afterEach(killAll)

describe("osqueue flow", { timeout: 180_000 }, () => {
  it("enqueues a flow from a file, refuses a bad one, and shows a job's parent and children", async () => {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const dir = await mkdtemp(join(tmpdir(), "osqueue-flow-"))
    osqueue(["broker", "--port", String(port), "--host", "127.0.0.1", "--url", url, "--dir", dir])
    await leading(url)

    const file = join(dir, "flow.json")
    await writeFile(
      file,
      JSON.stringify({
        type: "report",
        children: [{ type: "fetch", payload: { region: "eu" } }, { type: "merge", children: [{ type: "fetch" }] }]
      })
    )
    const enqueued = await osqueueRun(["flow", "enqueue", file, "--on-child-failure", "ignore", "-b", url, "--json"])
    expect(enqueued.code, enqueued.stderr).toBe(0)
    const jobs = JSON.parse(enqueued.stdout) as ReadonlyArray<Job>
    expect(jobs.map((job) => [job.id, job.type, job.state])).toEqual([
      ["job-1", "report", "waiting-children"],
      ["job-2", "fetch", "queued"],
      ["job-3", "merge", "waiting-children"],
      ["job-4", "fetch", "queued"]
    ])
    expect(jobs[0]!.onChildFailure).toBe("ignore")

    const notAFlow = join(dir, "bad.json")
    await writeFile(notAFlow, JSON.stringify({ type: "report", children: [{ kind: "fetch" }] }))
    const bad = await osqueueRun(["flow", "enqueue", notAFlow, "-b", url])
    expect(bad.code).toBe(2)
    expect(bad.stderr.trimEnd().split("\n")).toHaveLength(1)
    expect(bad.stderr).toMatch(/bad\.json is not a flow: .*children/)

    const twice = join(dir, "twice.json")
    await writeFile(
      twice,
      JSON.stringify({ type: "r", children: [{ type: "c", idempotencyKey: "k" }, { type: "c", idempotencyKey: "k" }] })
    )
    const refused = await osqueueRun(["flow", "enqueue", twice, "-b", url])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(`the idempotency key "k" is named twice`)

    const shown = await osqueueRun(["flow", "show", "job-3", "-b", url])
    expect(shown.code, shown.stderr).toBe(0)
    const lines = shown.stdout.trimEnd().split("\n")
    expect(lines[0]).toMatch(/^parent: job-1\s+waiting-children\s+report/)
    expect(lines[1]).toMatch(/^job-3\s+waiting-children\s+merge/)
    expect(lines[2]).toMatch(/^ {2}job-4\s+queued\s+fetch/)
  })
})
