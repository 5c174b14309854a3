/** The `osqueue` command tree. */
import * as Command from "@effect/cli/Command"
import { broker } from "./commands/broker.js"
import { demo } from "./commands/demo.js"
import { enqueue, jobs, pause, resume, stats, watch } from "./commands/jobs.js"
import { produce } from "./commands/produce.js"
import { worker } from "./commands/worker.js"

export const osqueue = Command.make("osqueue").pipe(
  Command.withDescription("A job queue on object storage with compare-and-swap"),
  Command.withSubcommands([broker, worker, demo, enqueue, jobs, stats, pause, resume, watch, produce])
)

export const run = Command.run(osqueue, { name: "osqueue", version: "0.1.0" })
