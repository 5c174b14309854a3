/**
 * `osqueue broker` takes its settings from the variables the README names: the election TTL from
 * `OSQUEUE_ELECTION_TTL` (a duration), with `--election-ttl-ms` winning over it. Seen from
 * outside: an idle leader still commits every third of its TTL (docs/storage.md), so `/state`'s
 * `seq` climbs fast under a short TTL and stands still under the default 10 s.
 */
import { afterEach, describe, expect, it } from "vitest"
import { freePort, getJson, killAll, leading, osqueue, sleep } from "./support/processes.js"

afterEach(killAll)

/** Commits an idle leader makes in `ms`, started with these flags and variables. */
const idleCommits = async (args: ReadonlyArray<string>, env: Record<string, string>, ms: number) => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  osqueue(["broker", "--storage", "memory", "--port", String(port), "--host", "127.0.0.1", "--url", url, ...args], env)
  await leading(url, 60_000)
  const seq = async () => ((await getJson(`${url}/state`)) as { seq: number }).seq
  const before = await seq()
  await sleep(ms)
  return (await seq()) - before
}

describe("osqueue broker: election TTL", () => {
  it("OSQUEUE_ELECTION_TTL sets it; --election-ttl-ms wins over it", async () => {
    // 900 ms: an idle commit every 300 ms, about 6 in 2 s.
    expect(await idleCommits([], { OSQUEUE_ELECTION_TTL: "900 millis" }, 2_000)).toBeGreaterThanOrEqual(3)
    // The flag's 30 s: an idle commit every 10 s, none in 2 s (but perhaps the one due at start).
    expect(await idleCommits(["--election-ttl-ms", "30000"], { OSQUEUE_ELECTION_TTL: "900 millis" }, 2_000))
      .toBeLessThanOrEqual(1)
  }, 150_000)

  it("a TTL that is no duration stops the broker with a message naming the variable", async () => {
    const port = await freePort()
    const broker = osqueue(["broker", "--storage", "memory", "--port", String(port)], { OSQUEUE_ELECTION_TTL: "10000" })
    expect(await broker.exited).not.toBe(0)
    expect(broker.output()).toContain("OSQUEUE_ELECTION_TTL")
  }, 60_000)
})
