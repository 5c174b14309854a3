/**
 * Named queues on the command line, against a real broker process on the file store:
 * `osqueue broker --queue` (repeated) serves several queues, `osqueue --queue` chooses one, and
 * a queue the broker does not serve is refused naming the ones it does. Logs go to stderr.
 */
import { existsSync } from "node:fs"
import { mkdtemp } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { eventually, freePort, getJson, killAll, osqueue, osqueueRun } from "./support/processes.js"

afterEach(killAll)

describe("osqueue --queue", { timeout: 180_000 }, () => {
  it("a broker serves the queues named; commands choose theirs", async () => {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const dir = await mkdtemp(join(tmpdir(), "osqueue-queues-"))
    const broker = osqueue([
      "broker",
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--url",
      url,
      "--dir",
      dir,
      "--queue",
      "default",
      "--queue",
      "emails"
    ])
    await eventually(`${url} to lead every queue`, async () => {
      const ready = (await fetch(`${url}/readyz`).then((r) => r.json(), () => undefined)) as
        | { queues?: Record<string, { role: string }> }
        | undefined
      const roles = Object.values(ready?.queues ?? {}).map((queue) => queue.role)
      return roles.length === 2 && roles.every((role) => role === "leader") ? roles : undefined
    })

    const sent = await osqueueRun(["enqueue", "send", "-b", url, "--queue", "emails", "--json"])
    expect(sent.code, sent.stderr).toBe(0)
    const stats = await osqueueRun(["stats", "-b", url, "--queue", "emails", "--json"])
    expect(JSON.parse(stats.stdout)).toMatchObject({ counts: { queued: 1 } })
    expect(await getJson(`${url}/v1/stats`)).toMatchObject({ counts: { queued: 0 } })
    expect(existsSync(join(dir, "objects"))).toBe(true)

    const unknown = await osqueueRun(["stats", "-b", url, "--queue", "nope"])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain(`serves no queue named "nope"`)

    // Logs go to stderr: stdout is a command's output alone.
    expect(broker.stderr()).toContain("starting broker")
    expect(broker.stdout()).toBe("")
  })
})
