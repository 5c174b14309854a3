// The README's Promise example, type-checked by `pnpm typecheck`.
import { OsqueueClient } from "@osqueue/client/promise"

const client = new OsqueueClient({ brokerUrl: "http://localhost:8080", transport: { kind: "http" } }) // or "ws", "rest"
const job = await client.submitJob("email", { to: "a@example.com" })
console.log("enqueued", job.id)
const claimed = await client.claimJob("worker-1", { waitMs: 5_000 }) // null when none came
if (claimed) await client.completeJob(claimed.token, { sent: true })
console.log(await client.getStats())
await client.close()
