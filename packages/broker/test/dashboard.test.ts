/**
 * The dashboard's routes: its files at `/` and `/assets/…` (public, even with a token), a page
 * that says what is missing when no dashboard is configured or built, no way out of the
 * directory; and the `State` RPC behind its raw-state view.
 */
import { describe, expect, it } from "@effect/vitest"
import { startBroker as startTestBroker } from "@osqueue/broker/testing"
import { MemoryStore } from "@osqueue/storage"
import { Effect } from "effect"
import { mkdir, mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { brotliCompressSync, gzipSync } from "node:zlib"
import { acceptedEncodings } from "../src/http/Dashboard.js"
import { awaitLeader, rpcHttp, startBroker } from "./fixtures.js"

const get = (url: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, { headers })
    return { status: response.status, headers: response.headers, body: await response.text() }
  })

const built = Effect.promise(async () => {
  const dir = await mkdtemp(join(tmpdir(), "osqueue-dashboard-test-"))
  await mkdir(join(dir, "assets"))
  await writeFile(join(dir, "index.html"), "<!doctype html><title>osqueue dashboard</title>")
  await writeFile(join(dir, "assets", "index-abc123.js"), "console.log('dashboard')")
  return dir
})

const script = `console.log(${JSON.stringify("dashboard ".repeat(500))})`

/** A build with compressed copies of its script (as `apps/web`'s build writes them) and a source map. */
const compressedBuild = Effect.promise(async () => {
  const dir = await mkdtemp(join(tmpdir(), "osqueue-dashboard-test-"))
  await mkdir(join(dir, "assets"))
  await writeFile(join(dir, "index.html"), "<!doctype html><title>osqueue dashboard</title>")
  await writeFile(join(dir, "assets", "index-abc123.js"), script)
  await writeFile(join(dir, "assets", "index-abc123.js.br"), brotliCompressSync(script))
  await writeFile(join(dir, "assets", "index-abc123.js.gz"), gzipSync(script))
  await writeFile(join(dir, "assets", "index-abc123.js.map"), "{\"sources\":[]}")
  return dir
})

describe("dashboard routes", () => {
  it.scopedLive("sends an asset compressed as the browser accepts (br, then gzip), never a source map", () =>
    Effect.gen(function*() {
      const dashboardDir = yield* compressedBuild
      const url = yield* startTestBroker({ store: yield* MemoryStore.make, dashboardDir })
      const asset = `${url}/assets/index-abc123.js`
      const brotli = yield* get(asset, { "accept-encoding": "gzip, deflate, br" })
      expect(brotli.headers.get("content-encoding")).toBe("br")
      expect(brotli.headers.get("content-type")).toBe("text/javascript; charset=utf-8")
      expect(brotli.headers.get("vary")).toBe("accept-encoding")
      expect(brotli.body).toBe(script)
      const gzip = yield* get(asset, { "accept-encoding": "gzip, br;q=0" })
      expect(gzip.headers.get("content-encoding")).toBe("gzip")
      expect(gzip.body).toBe(script)
      const plain = yield* get(asset, { "accept-encoding": "identity" })
      expect(plain.headers.get("content-encoding")).toBeNull()
      expect(plain.body).toBe(script)
      expect((yield* get(`${asset}.map`)).status).toBe(404)
    }))

  it("reads accept-encoding: the codings it takes, br first; q=0 refuses one", () => {
    expect(acceptedEncodings("gzip, deflate, br")).toEqual(["br", "gzip"])
    expect(acceptedEncodings("br;q=0, gzip;q=0.5")).toEqual(["gzip"])
    expect(acceptedEncodings("GZIP")).toEqual(["gzip"])
    expect(acceptedEncodings(undefined)).toEqual([])
    expect(acceptedEncodings("*")).toEqual([])
  })

  it.scopedLive("serves the build at / and its assets, without the token", () =>
    Effect.gen(function*() {
      const dashboardDir = yield* built
      const url = yield* startTestBroker({ store: yield* MemoryStore.make, token: "s3cret", dashboardDir })
      const index = yield* get(`${url}/`)
      expect(index.status).toBe(200)
      expect(index.body).toContain("osqueue dashboard")
      expect(index.headers.get("cache-control")).toBe("no-cache")
      const asset = yield* get(`${url}/assets/index-abc123.js`)
      expect(asset.status).toBe(200)
      expect(asset.headers.get("cache-control")).toContain("immutable")
      // Only files inside assets/, by plain names.
      expect((yield* get(`${url}/assets/..%2Findex.html`)).status).toBe(404)
      expect(yield* get(`${url}/assets/missing.js`)).toMatchObject({
        status: 404,
        body: expect.stringContaining("\"_tag\":\"NoSuchRoute\"")
      })
      // The data still needs the token.
      expect((yield* get(`${url}/v1/stats`)).status).toBe(401)
    }))

  it.scopedLive("says what is missing: no dashboard configured, or not built", () =>
    Effect.gen(function*() {
      const none = yield* startTestBroker({ store: yield* MemoryStore.make })
      const page = yield* get(`${none}/`)
      expect(page.status).toBe(404)
      expect(page.body).toContain("OSQUEUE_DASHBOARD_DIR")

      const empty = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "osqueue-dashboard-empty-")))
      const unbuilt = yield* startTestBroker({ store: yield* MemoryStore.make, dashboardDir: empty })
      const missing = yield* get(`${unbuilt}/`)
      expect(missing.status).toBe(503)
      expect(missing.body).toContain("pnpm --filter @osqueue/web build")
    }))
})

describe("State RPC", () => {
  it.scopedLive("answers the committed queue.json with its version, epoch and seq", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const client = yield* rpcHttp(broker.base)
      const job = yield* client.Enqueue({ type: "email" })
      const raw = yield* client.State()
      expect(raw.role).toBe("leader")
      expect(raw.epoch).toBe(1)
      expect(raw.version).not.toBeNull()
      expect(raw.state).toMatchObject({ format: 5, epoch: raw.epoch, seq: raw.seq, commitId: raw.commitId })
      expect(JSON.stringify(raw.state)).toContain(job.id)
    }))
})
