/**
 * The whole queue on a real S3 server (radosgw, `scripts/s3-server start`): a broker process on
 * `--storage s3`, a worker process, and a client: 1,000 jobs complete. Under CI=true the S3
 * server must be there; elsewhere the test skips with a message when it is not.
 */
import { OsqueueClient } from "@osqueue/client"
import { Chunk, Effect } from "effect"
import { randomUUID } from "node:crypto"
import * as http from "node:http"
import { afterEach, describe, expect, it } from "vitest"
import { eventually, freePort, getJson, killAll, leading, osqueue } from "./support/processes.js"

afterEach(killAll)

const endpoint = process.env.OSQUEUE_TEST_S3_ENDPOINT ?? "http://127.0.0.1:7480"
const reachable = await new Promise<boolean>((resolve) => {
  const request = http.get(endpoint, { timeout: 2000 }, (res) => {
    res.resume()
    resolve(true)
  })
  request.on("timeout", () => request.destroy(new Error("timeout")))
  request.on("error", () => resolve(false))
})
if (!reachable && process.env.CI !== "true") {
  process.stderr.write(
    `\n[osqueue] skipping the S3 end-to-end test: no S3 server at ${endpoint} (scripts/s3-server start)\n\n`
  )
}

const s3Env = {
  S3_BUCKET: process.env.OSQUEUE_TEST_S3_BUCKET ?? "osqueue-test",
  S3_PREFIX: `e2e-${randomUUID().slice(0, 8)}/`,
  S3_REGION: "us-east-1",
  S3_ENDPOINT: endpoint,
  S3_FORCE_PATH_STYLE: "true",
  S3_ETAG_QUOTING: process.env.OSQUEUE_TEST_S3_ETAG_QUOTING ?? "unquoted",
  AWS_ACCESS_KEY_ID: process.env.OSQUEUE_TEST_S3_ACCESS_KEY ?? "test",
  AWS_SECRET_ACCESS_KEY: process.env.OSQUEUE_TEST_S3_SECRET_KEY ?? "test",
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true"
}

describe.runIf(reachable || process.env.CI === "true")(`osqueue on S3 at ${endpoint}`, () => {
  it("a broker on S3, a worker and a client: 1,000 jobs complete", async () => {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    osqueue(["broker", "--storage", "s3", "--port", String(port), "--host", "127.0.0.1", "--url", url], s3Env)
    await leading(url)

    const jobs = await Effect.runPromise(
      Effect.flatMap(
        OsqueueClient,
        (client) =>
          Effect.forEach(
            Chunk.chunksOf(Chunk.range(1, 1_000), 100),
            (chunk) => client.enqueueMany(Chunk.toReadonlyArray(chunk).map((n) => ({ type: "email", payload: { n } })))
          )
      ).pipe(Effect.provide(OsqueueClient.layerHttp({ urls: url })))
    )
    expect(jobs.flat().length).toBe(1_000)

    osqueue(["worker", "-b", url, "-c", "32", "--fail-rate", "0", "--work-ms", "1"])
    const stats = await eventually("1,000 completions", async () => {
      const s = (await getJson(`${url}/v1/stats`)) as { counts: { completed: number; dead: number } }
      return s.counts.completed === 1_000 ? s : undefined
    }, 120_000)
    expect(stats.counts.dead).toBe(0)
  }, 180_000)
})
