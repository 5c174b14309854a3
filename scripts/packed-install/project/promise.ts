// Promise style, as the README shows it: submit, claim, complete, read the stats.
import { OsqueueClient } from "@osqueue/client/promise"

const client = new OsqueueClient({
  brokerUrl: process.env.OSQUEUE_BROKERS ?? "http://localhost:8080",
  transport: { kind: "http" }
})
try {
  const job = await client.submitJob("resize", { width: 640 })
  const claimed = await client.claimJob("promise-worker", { types: ["resize"], waitMs: 5_000 })
  if (claimed === null || claimed.job.id !== job.id) {
    throw new Error(`claimed ${claimed?.job.id ?? "nothing"}, not ${job.id}`)
  }
  await client.completeJob(claimed.token, { ok: true })
  const done = await client.getJob(job.id)
  if (done.state !== "completed") throw new Error(`${job.id} is ${done.state}`)
  const stats = await client.getStats()
  console.log(`promise: ${job.id} completed; ${stats.completedTotal} completed in all`)
} finally {
  await client.close()
}
