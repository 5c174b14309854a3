/**
 * Where the S3 tests find their server, and what they do when it is not there.
 *
 * OSQUEUE_TEST_S3_ENDPOINT    default http://127.0.0.1:7480 (scripts/s3-server start)
 * OSQUEUE_TEST_S3_BUCKET      default osqueue-test (created by scripts/s3-server)
 * OSQUEUE_TEST_S3_ACCESS_KEY  default test     OSQUEUE_TEST_S3_SECRET_KEY  default test
 * OSQUEUE_TEST_S3_REGION      default us-east-1
 * OSQUEUE_TEST_S3_ETAG_QUOTING  default unquoted (radosgw); "quoted" for AWS and most others
 *
 * Without a reachable server the S3 tests skip with a message, except under CI=true, where they
 * fail: CI must never pass by not running them.
 */
import * as Redacted from "effect/Redacted"
import { randomUUID } from "node:crypto"
import * as http from "node:http"
import { describe, it } from "vitest"
import type { S3StoreConfig } from "../../src/S3Store.js"

export const s3Endpoint = process.env.OSQUEUE_TEST_S3_ENDPOINT ?? "http://127.0.0.1:7480"
export const s3Bucket = process.env.OSQUEUE_TEST_S3_BUCKET ?? "osqueue-test"
export const s3Quoting = process.env.OSQUEUE_TEST_S3_ETAG_QUOTING === "quoted" ? "quoted" : "unquoted"
export const s3IsRadosgw = s3Quoting === "unquoted"

// The SDK warns on every process that Node 20 support ends in 2027; the tests know.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true"

/** A fresh prefix per call, so runs and tests never see each other's objects. */
export const testPrefix = (label: string) => `test-${label}-${Date.now().toString(36)}-${randomUUID().slice(0, 8)}/`

export const s3Config = (overrides: Partial<S3StoreConfig> = {}): S3StoreConfig => ({
  bucket: s3Bucket,
  endpoint: s3Endpoint,
  region: process.env.OSQUEUE_TEST_S3_REGION ?? "us-east-1",
  forcePathStyle: true,
  etagQuoting: s3Quoting,
  prefix: testPrefix("s3"),
  requestTimeout: "5 seconds",
  credentials: {
    accessKeyId: process.env.OSQUEUE_TEST_S3_ACCESS_KEY ?? "test",
    secretAccessKey: Redacted.make(process.env.OSQUEUE_TEST_S3_SECRET_KEY ?? "test")
  },
  ...overrides
})

const reachable = (url: string) =>
  new Promise<boolean>((resolve) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume()
      resolve(true)
    })
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", () => resolve(false))
  })

export const s3Reachable = await reachable(s3Endpoint)
const inCi = process.env.CI === "true"

let warned = false
/**
 * `describe` when the server answers. Otherwise: under CI=true a suite with one failing test,
 * else a skipped suite and one line on stderr saying why.
 */
export const describeS3 = (name: string, body: () => void) => {
  if (s3Reachable) return describe(name, body)
  const why = `no S3 server at ${s3Endpoint}: start one with scripts/s3-server start, or set OSQUEUE_TEST_S3_ENDPOINT`
  if (inCi) {
    return describe(name, () => {
      it("has a reachable S3 server (CI=true: S3 tests must run)", () => {
        throw new Error(why)
      })
    })
  }
  if (!warned) {
    warned = true
    process.stderr.write(`\n[osqueue] skipping S3 tests: ${why}\n\n`)
  }
  return describe.skip(`${name} (skipped: ${why})`, body)
}
