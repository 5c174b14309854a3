/** How results and errors are printed: plain lines for people, JSON with `--json`. */
import type { Job } from "@osqueue/types"
import * as Console from "effect/Console"

export const printJson = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

export const jobLine = (job: Job): string =>
  [
    job.id.padEnd(12),
    job.state.padEnd(21),
    job.type.padEnd(16),
    `prio ${job.priority}`.padEnd(9),
    `attempts ${job.attempts}/${job.maxAttempts}`.padEnd(14),
    job.lastError === undefined ? "" : `last error: ${job.lastError}`
  ].join(" ").trimEnd()

export const printJob = (job: Job, json: boolean) => (json ? printJson(job) : Console.log(jobLine(job)))
