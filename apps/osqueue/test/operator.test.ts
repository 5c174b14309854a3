/**
 * The operator's verbs from the `osqueue` command, spawned against a real broker process on the
 * file store: purge asks for --yes (and touches nothing without it), delete, promote, priority and
 * workers.
 */
import type { Job } from "@osqueue/types"
import { mkdtemp } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { freePort, getJson, killAll, leading, osqueue, osqueueRun } from "./support/processes.js"

afterEach(killAll)

const post = async (url: string, body: unknown): Promise<unknown> => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  return response.json()
}

// About nine commands, each a Node process running from source: 5–8 s apiece alone, 15 on a loaded machine.
describe("osqueue operator commands", { timeout: 240_000 }, () => {
  it("purge without --yes removes nothing and exits 2 saying what it would remove; with --yes it answers the count", async () => {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const dir = await mkdtemp(join(tmpdir(), "osqueue-operator-"))
    osqueue(["broker", "--port", String(port), "--host", "127.0.0.1", "--url", url, "--dir", dir])
    await leading(url)
    const [delayed, queued] = (await post(`${url}/v1/jobs/batch`, {
      jobs: [{ type: "a", delayMs: 3_600_000 }, { type: "a" }, { type: "b" }]
    })) as Array<Job>

    const unconfirmed = await osqueueRun(["jobs", "purge", "--state", "queued", "--type", "a", "-b", url])
    expect(unconfirmed.code).toBe(2)
    expect(unconfirmed.stderr).toContain("purge removes every queued job of type a for good: add --yes to confirm")
    expect(((await getJson(`${url}/v1/stats`)) as { counts: { queued: number } }).counts.queued).toBe(2)

    const confirmed = await osqueueRun(["jobs", "purge", "--state", "queued", "--type", "a", "--yes", "-b", url])
    expect(confirmed.code).toBe(0)
    expect(confirmed.stdout).toContain("1 job(s) removed (every queued job of type a)")
    expect(((await getJson(`${url}/v1/stats`)) as { counts: { queued: number } }).counts.queued).toBe(1)
    expect((await fetch(`${url}/v1/jobs/${queued!.id}`)).status).toBe(404)

    const running = await osqueueRun(["jobs", "purge", "--state", "running", "--yes", "-b", url])
    expect(running.code).toBe(2)

    const promoted = await osqueueRun(["jobs", "promote", delayed!.id, "-b", url, "--json"])
    expect(promoted.code).toBe(0)
    expect(JSON.parse(promoted.stdout)).toMatchObject({ id: delayed!.id, state: "queued" })
    const reprioritized = await osqueueRun(["jobs", "priority", delayed!.id, "-5", "-b", url, "--json"])
    expect(reprioritized.code).toBe(0)
    expect(JSON.parse(reprioritized.stdout)).toMatchObject({ priority: -5 })

    await post(`${url}/v1/jobs/claim`, { workerId: "cli-worker" })
    const workers = await osqueueRun(["workers", "-b", url])
    expect(workers.code).toBe(0)
    expect(workers.stdout).toMatch(/^cli-worker\s+jobs 1\s+last seen \d{4}-/m)

    const refused = await osqueueRun(["jobs", "delete", delayed!.id, "-b", url])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain("cancel it first")
    expect((await osqueueRun(["jobs", "cancel", delayed!.id, "-b", url])).code).toBe(0)
    const deleted = await osqueueRun(["jobs", "delete", delayed!.id, "-b", url])
    expect(deleted.code).toBe(0)
    expect((await fetch(`${url}/v1/jobs/${delayed!.id}`)).status).toBe(404)
  })
})

describe("osqueue limit", { timeout: 240_000 }, () => {
  it("set, list and clear limits on claims; a bad --rate or value changes nothing", async () => {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const dir = await mkdtemp(join(tmpdir(), "osqueue-limit-"))
    osqueue(["broker", "--port", String(port), "--host", "127.0.0.1", "--url", url, "--dir", dir])
    await leading(url)

    const set = await osqueueRun([
      "limit",
      "set",
      "--type",
      "mail",
      "--concurrency",
      "1",
      "--rate",
      "100/60s",
      "-b",
      url
    ])
    expect(set.code).toBe(0)
    expect(set.stdout).toMatch(/^mail\s+concurrency 1, rate 100\/1m$/m)
    const badRate = await osqueueRun(["limit", "set", "--type", "mail", "--rate", "100 per minute", "-b", url])
    expect(badRate.code).toBe(2)
    expect(badRate.stderr).toContain("is not M/<window>")
    const badValue = await osqueueRun(["limit", "set", "--type", "mail", "--concurrency", "0", "-b", url])
    expect(badValue.code).toBe(1)
    expect(badValue.stderr).toContain("concurrency")

    await post(`${url}/v1/jobs/batch`, { jobs: [{ type: "mail" }, { type: "mail" }] })
    expect(await post(`${url}/v1/jobs/claim`, { workerId: "w", max: 5 })).toHaveLength(1)
    const list = await osqueueRun(["limit", "list", "-b", url])
    expect(list.code).toBe(0)
    expect(list.stdout).toMatch(/^mail\s+concurrency 1, rate 100\/1m\s+running 1\/1, started 1\/100 in the last 1m$/m)

    const cleared = await osqueueRun(["limit", "clear", "--type", "mail", "-b", url, "--json"])
    expect(cleared.code).toBe(0)
    expect(JSON.parse(cleared.stdout)).toEqual([])
    expect(await post(`${url}/v1/jobs/claim`, { workerId: "w", max: 5 })).toHaveLength(1)
  })
})
