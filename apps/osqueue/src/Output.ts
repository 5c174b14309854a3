/**
 * How results and errors are printed: plain lines for people, JSON with `--json`; colour only
 * to a terminal, and never with NO_COLOR set (no-color.org).
 */
import type { Job } from "@osqueue/types"
import * as Config from "effect/Config"
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

/** NO_COLOR (no-color.org): set to anything but the empty string, nothing is coloured. */
export const noColor = Config.string("NO_COLOR").pipe(Config.withDefault(""), Config.map((value) => value !== ""))

/** Whether what goes to `stream` may be coloured: a terminal, and no NO_COLOR. */
export const colorFor = (stream: { readonly isTTY?: boolean }, noColor: boolean): boolean =>
  stream.isTTY === true && !noColor

/**
 * The command's console: @effect/cli colours its usage errors whatever the stream and ends them
 * with a blank line; here colour is taken out where it is not wanted, and a message ends with
 * its last line.
 */
export const commandConsole = (base: Console.Console, noColor: boolean): Console.Console => {
  const tidy = (color: boolean) => (args: ReadonlyArray<unknown>) =>
    args.map((a) => (typeof a !== "string" ? a : (color ? a : stripVTControlCharacters(a)).replace(/\n+$/, "")))
  const toStdout = tidy(colorFor(process.stdout, noColor))
  const toStderr = tidy(colorFor(process.stderr, noColor))
  return {
    ...base,
    log: (...args) => base.log(...toStdout(args)),
    info: (...args) => base.info(...toStdout(args)),
    error: (...args) => base.error(...toStderr(args)),
    warn: (...args) => base.warn(...toStderr(args))
  }
}
