/**
 * The Promise facade, for code without Effect. Start a broker first, then:
 *   pnpm exec tsx --conditions=source packages/client/examples/promise.ts
 */
import { OsqueueClient } from "@osqueue/client/promise"

const client = new OsqueueClient({
  brokerUrls: (process.env.OSQUEUE_BROKERS ?? "http://localhost:8080").split(","),
  transport: { kind: "http" }, // or { kind: "ws" } / { kind: "rest" }
  token: process.env.OSQUEUE_TOKEN // optional
})

try {
  const job = await client.submitJob("resize", { width: 640 }, { priority: 1 })
  console.log("submitted", job.id)

  // A worker loop, by hand: claim (long poll), work, complete or fail.
  const claimed = await client.claimJob("example-worker", { types: ["resize"], waitMs: 2_000 })
  if (claimed !== null) {
    try {
      await client.heartbeat(claimed.token, { pct: 50 })
      await client.completeJob(claimed.token, { ok: true })
      console.log("completed", claimed.job.id)
    } catch (error) {
      await client.failJob(claimed.token, error instanceof Error ? error : String(error))
    }
  }

  console.log(await client.getStats())
  await client.getJob("job-does-not-exist")
} catch (error) {
  // Rejections are the tagged errors themselves.
  if (error instanceof Error && "_tag" in error && error._tag === "JobNotFound") {
    console.log("as expected:", error.message)
  } else throw error
} finally {
  await client.close()
}
