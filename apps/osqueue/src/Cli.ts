/** The `osqueue` command tree. */
import * as Command from "@effect/cli/Command"
import { broker } from "./commands/broker.js"
import { demo } from "./commands/demo.js"
import { flow, flowSubcommands } from "./commands/flow.js"
import { enqueue, jobs, jobsSubcommands, pause, resume, stats, watch, workers } from "./commands/jobs.js"
import { limit, limitSubcommands } from "./commands/limit.js"
import { produce } from "./commands/produce.js"
import { schedule, scheduleSubcommands } from "./commands/schedule.js"
import { worker } from "./commands/worker.js"
import { node } from "./Help.js"

const subcommands = [
  broker,
  worker,
  demo,
  enqueue,
  jobs,
  schedule,
  flow,
  stats,
  workers,
  pause,
  resume,
  limit,
  watch,
  produce
] as const

export const osqueue = Command.make("osqueue").pipe(
  Command.withDescription("A job queue on object storage with compare-and-swap"),
  Command.withSubcommands(subcommands)
)

/** The same tree for `--help` (Help.ts): @effect/cli's accessors see only one level of subcommands. */
export const commandTree = node(
  osqueue,
  subcommands.map((command) =>
    command === jobs
      ? node(jobs, jobsSubcommands.map((child) => node(child)))
      : command === schedule
      ? node(schedule, scheduleSubcommands.map((child) => node(child)))
      : command === limit
      ? node(limit, limitSubcommands.map((child) => node(child)))
      : command === flow
      ? node(flow, flowSubcommands.map((child) => node(child)))
      : node(command)
  )
)

export const run = Command.run(osqueue, { name: "osqueue", version: "0.1.0" })
