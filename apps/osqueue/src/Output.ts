/**
 * How results and errors are printed: plain lines for people, JSON with `--json`; colour only
 * to a terminal, and never with NO_COLOR set (no-color.org).
 */
import type { Job } from "@osqueue/types"
import * as Console from "effect/Console"
import { stripVTControlCharacters } from "node:util"

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

/** Whether what goes to `stream` may be coloured: a terminal, and NO_COLOR unset or empty. */
export const colorFor = (stream: { readonly isTTY?: boolean }): boolean =>
  stream.isTTY === true && (process.env["NO_COLOR"] ?? "") === ""

/**
 * The command's console: @effect/cli colours its usage errors whatever the stream and ends them
 * with a blank line; here colour is taken out where it is not wanted, and a message ends with
 * its last line.
 */
export const commandConsole = (base: Console.Console): Console.Console => {
  const tidy = (color: boolean) => (args: ReadonlyArray<unknown>) =>
    args.map((a) => (typeof a !== "string" ? a : (color ? a : stripVTControlCharacters(a)).replace(/\n+$/, "")))
  const toStdout = tidy(colorFor(process.stdout))
  const toStderr = tidy(colorFor(process.stderr))
  return {
    ...base,
    log: (...args) => base.log(...toStdout(args)),
    info: (...args) => base.info(...toStdout(args)),
    error: (...args) => base.error(...toStderr(args)),
    warn: (...args) => base.warn(...toStderr(args))
  }
}
