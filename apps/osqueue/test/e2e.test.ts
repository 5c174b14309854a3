/**
 * The queue end to end with real processes: `osqueue broker` on the file store, an `osqueue
 * worker`, jobs from the CLI, plain REST, and the typed client over RPC-HTTP and RPC-WS; then two
 * brokers on one directory, the leader killed with SIGKILL.
 */
import { OsqueueClient } from "@osqueue/client"
import type { Job } from "@osqueue/types"
import { Effect, Layer } from "effect"
import { mkdtemp } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { eventually, freePort, getJson, killAll, leading, osqueue, osqueueRun } from "./support/processes.js"

afterEach(killAll)

const tempDir = () => mkdtemp(join(tmpdir(), "osqueue-e2e-"))

const startBroker = async (dir: string, extra: ReadonlyArray<string> = []) => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const proc = osqueue(["broker", "--port", String(port), "--host", "127.0.0.1", "--url", url, "--dir", dir, ...extra])
  return { url, proc }
}

const withClient = <A, E>(
  layer: Layer.Layer<OsqueueClient>,
  f: (client: OsqueueClient["Type"]) => Effect.Effect<A, E>
) => Effect.runPromise(Effect.flatMap(OsqueueClient, f).pipe(Effect.provide(layer)))

const jobState = async (url: string, id: string) => ((await getJson(`${url}/v1/jobs/${id}`)) as Job).state

describe("osqueue end to end", () => {
  it(
    "jobs from the CLI, REST, RPC over HTTP and over WebSocket all complete on a worker process; watch sees them",
    async () => {
      const { url, proc: broker } = await startBroker(await tempDir())
      await leading(url)
      const watch = osqueue(["watch", "-b", url, "--json"])
      // the stream opens with the leader: from then on, every event reaches it
      await eventually(
        "watch to connect",
        async () => (watch.output().includes("\"_tag\":\"Leader\"") ? true : undefined)
      )

      const cli = await osqueueRun(["enqueue", "email", "-b", url, "-p", "{\"to\":\"a@example.com\"}", "--json"])
      expect(cli.code).toBe(0)
      const fromCli = JSON.parse(cli.output.slice(cli.output.indexOf("{"))) as Job

      const response = await fetch(`${url}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ type: "thumbnail", payload: { image: "a.jpg" } })
      })
      expect(response.status).toBeLessThan(300)
      const fromRest = (await response.json()) as Job

      const fromHttp = await withClient(OsqueueClient.layerHttp({ urls: url }), (c) => c.enqueue("report", { day: 1 }))
      const fromWs = await withClient(
        OsqueueClient.layerWebSocket({ urls: url }),
        (c) => c.enqueue("report", { day: 2 })
      )
      const ids = [fromCli.id, fromRest.id, fromHttp.id, fromWs.id]
      expect(new Set(ids).size).toBe(4)

      const worker = osqueue(["worker", "-b", url, "-c", "2", "--fail-rate", "0", "--work-ms", "40"])
      for (const id of ids) {
        await eventually(`${id} completed`, async () => ((await jobState(url, id)) === "completed" ? true : undefined))
      }

      await eventually(
        "watch to see every completion",
        async () =>
          ids.every((id) => watch.output().includes(`"kind":"completed","jobId":"${id}"`))
            ? true
            : undefined
      )
      expect(watch.output()).toContain(`"kind":"enqueued","jobId":"${fromWs.id}"`)
      expect(watch.output()).toContain(`"kind":"claimed"`)

      const got = await osqueueRun(["jobs", "get", fromHttp.id, "-b", url, "--json"])
      expect(got.code).toBe(0)
      expect(got.output).toContain("\"state\": \"completed\"")

      const missing = await osqueueRun(["jobs", "get", "job-999999", "-b", url])
      expect(missing.code).toBe(1)
      expect(missing.output).toContain("JobNotFound")

      // SIGTERM: the worker drains and the broker releases leadership, both exit cleanly
      worker.child.kill("SIGTERM")
      broker.child.kill("SIGTERM")
      expect(await worker.exited).toBe(0)
      expect(await broker.exited).toBe(0)
      expect(broker.output()).toContain("released leadership")
    },
    90_000
  )

  it("a worker with a bad --concurrency or --prefetch is refused before it starts, saying which", async () => {
    for (
      const [flag, value, message] of [
        ["-c", "0", "--concurrency must be 1 or more"],
        ["--prefetch", "-1", "--prefetch must be 0 or more"]
      ] as const
    ) {
      const run = await osqueueRun(["worker", "-b", "http://127.0.0.1:1", flag, value])
      expect(run.code).toBe(2)
      expect(run.output).toContain(message)
      expect(run.output).not.toContain("RuntimeException")
    }
  }, 30_000)

  it(
    "two brokers on one directory: kill -9 the leader, the follower serves writes within TTL + 1 s, nothing acknowledged is lost",
    async () => {
      const dir = await tempDir()
      const ttlMs = 2_000
      const a = await startBroker(dir, ["--election-ttl-ms", String(ttlMs)])
      await leading(a.url)
      const b = await startBroker(dir, ["--election-ttl-ms", String(ttlMs)])
      await eventually("b to follow a", async () => {
        const info = (await getJson(`${b.url}/v1/leader`)) as { role: string; leaderUrl: string | null }
        return info.role === "follower" && info.leaderUrl === a.url ? true : undefined
      })
      const client = OsqueueClient.layerHttp({ urls: [a.url, b.url] })
      const before = await withClient(
        client,
        (c) => Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], (n) => c.enqueue("email", { n }))
      )

      a.proc.child.kill("SIGKILL")
      const killedAt = Date.now()
      await leading(b.url)
      const takeoverMs = Date.now() - killedAt
      expect(takeoverMs).toBeLessThanOrEqual(ttlMs + 1_000)

      // given only the dead broker's URL and the store, a command finds the leader in the metadata
      const found = await osqueueRun(["stats", "-b", a.url, "--leader-from-store", "--dir", dir, "--json"])
      expect(found.code).toBe(0)
      expect(found.output).toContain(`"leaderUrl": "${b.url}"`)

      // the client, given both URLs, keeps working: it finds the new leader
      const after = await withClient(
        client,
        (c) => Effect.forEach([11, 12, 13, 14, 15], (n) => c.enqueue("email", { n }))
      )
      const worker = osqueue(["worker", "-b", `${a.url},${b.url}`, "-c", "4", "--fail-rate", "0", "--work-ms", "20"])
      for (const job of [...before, ...after]) {
        await eventually(
          `${job.id} completed`,
          async () => ((await jobState(b.url, job.id)) === "completed" ? true : undefined)
        )
      }
      worker.child.kill("SIGTERM")
      await worker.exited
    },
    90_000
  )
})
