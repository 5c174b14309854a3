/**
 * `osqueue schedule set|remove|list`, spawned against a real broker process on the file store:
 * a cron schedule in a time zone and an interval, listed as lines and as JSON, a bad expression
 * refused naming it, and a removal.
 */
import type { Schedule } from "@osqueue/types"
import { mkdtemp } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { freePort, getJson, killAll, leading, osqueue, osqueueRun } from "./support/processes.js"

afterEach(killAll)

// Six commands, each a Node process running from source: 5–8 s apiece alone, 15 on a loaded machine.
describe("osqueue schedule", { timeout: 180_000 }, () => {
  it("sets, lists, refuses a bad expression and removes", async () => {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const dir = await mkdtemp(join(tmpdir(), "osqueue-schedule-"))
    osqueue(["broker", "--port", String(port), "--host", "127.0.0.1", "--url", url, "--dir", dir])
    await leading(url)

    const set = await osqueueRun([
      "schedule",
      "set",
      "nightly",
      "report",
      "--cron",
      "0 3 * * *",
      "--tz",
      "Europe/Paris",
      "-p",
      "{\"kind\":\"daily\"}",
      "--missed",
      "skip",
      "-b",
      url,
      "--json"
    ])
    expect(set.code, set.stderr).toBe(0)
    const nightly = JSON.parse(set.stdout) as Schedule
    expect(nightly).toMatchObject({
      id: "nightly",
      cron: "0 3 * * *",
      timezone: "Europe/Paris",
      missed: "skip",
      job: { type: "report", payload: { kind: "daily" } }
    })
    // 03:00 in Paris is 01:00 or 02:00 UTC.
    expect([1, 2]).toContain(new Date(nightly.nextAt!).getUTCHours())

    const every = await osqueueRun(["schedule", "set", "ping", "ping", "--every-ms", "3600000", "-b", url])
    expect(every.code, every.stderr).toBe(0)
    expect(every.stdout).toMatch(/^ping\s+ping\s+every 3600000 ms\s+next \d{4}-\d\d-\d\dT\d\d:00:00\.000Z last -$/m)

    const bad = await osqueueRun(["schedule", "set", "bad", "t", "--cron", "0 0 32 * *", "-b", url])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain(`the cron expression "0 0 32 * *" is not valid`)

    const listed = await osqueueRun(["schedule", "list", "-b", url])
    expect(listed.code).toBe(0)
    const lines = listed.stdout.trimEnd().split("\n")
    expect(lines.map((line) => line.split(/\s+/)[0])).toEqual(["nightly", "ping"])
    expect(lines[0]).toContain(`cron "0 3 * * *" Europe/Paris`)
    expect(lines[0]).toContain(`next ${new Date(nightly.nextAt!).toISOString()}`)

    const removed = await osqueueRun(["schedule", "remove", "nightly", "-b", url])
    expect(removed.code).toBe(0)
    expect(removed.stdout).toMatch(/^nightly\s+report/)
    expect(((await getJson(`${url}/v1/schedules`)) as ReadonlyArray<Schedule>).map((s) => s.id)).toEqual(["ping"])
    const gone = await osqueueRun(["schedule", "remove", "nightly", "-b", url])
    expect(gone.code).toBe(1)
    expect(gone.stderr).toContain("no schedule with id nightly")
  })
})
