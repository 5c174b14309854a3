/** `osqueue schedule set|remove|list`: jobs enqueued at each slot of a cron expression or every N ms (docs/architecture.md, "Schedules"). */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { MissedSlots, type Schedule } from "@osqueue/types"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { connection, json } from "../Connection.js"
import { printJson } from "../Output.js"
import { payload, withClient } from "./jobs.js"

const scheduleId = Args.text({ name: "id" }).pipe(
  Args.withDescription("The schedule's id, e.g. nightly-report: setting one that exists replaces it.")
)

const time = (ms: number | undefined) => (ms === undefined ? "-" : new Date(ms).toISOString())

/** When it runs, as set: `cron "0 3 * * *" Europe/Paris` or `every 60000 ms`. */
export const ruleOf = (schedule: Schedule): string =>
  schedule.cron === undefined ? `every ${schedule.everyMs} ms` : `cron "${schedule.cron}" ${schedule.timezone ?? "UTC"}`

const scheduleLine = (schedule: Schedule): string =>
  [
    schedule.id.padEnd(20),
    schedule.job.type.padEnd(16),
    ruleOf(schedule).padEnd(36),
    `next ${time(schedule.nextAt)}`,
    `last ${schedule.lastRun === undefined ? "-" : `${time(schedule.lastRun.slot)} (${schedule.lastRun.jobId})`}`
  ].join(" ")

const printSchedule = (
  schedule: Schedule,
  asJson: boolean
) => (asJson ? printJson(schedule) : Console.log(scheduleLine(schedule)))

const set = Command.make(
  "set",
  {
    ...connection,
    json,
    id: scheduleId,
    type: Args.text({ name: "type" }).pipe(Args.withDescription("The type of the job each run enqueues, e.g. report.")),
    cron: Options.text("cron").pipe(
      Options.withDescription(
        `A cron expression: five fields (minute hour day-of-month month day-of-week), or six with seconds first: --cron "0 3 * * *". Give --cron or --every-ms.`
      ),
      Options.optional
    ),
    timezone: Options.text("tz").pipe(
      Options.withDescription("The IANA time zone the cron expression reads in, e.g. Europe/Paris. Default: UTC."),
      Options.optional
    ),
    everyMs: Options.integer("every-ms").pipe(
      Options.withDescription(
        "Run at every multiple of this many milliseconds since 1970 (1000 to ten years). Give --cron or --every-ms."
      ),
      Options.optional
    ),
    payload,
    priority: Options.integer("priority").pipe(
      Options.withDescription("Each run's priority: lower runs first. Default: 0."),
      Options.optional
    ),
    maxAttempts: Options.integer("max-attempts").pipe(
      Options.withDescription(
        "Each run's attempts before the dead-letter list (1 to 1,000). Default: the broker's, 3."
      ),
      Options.optional
    ),
    missed: Options.choice("missed", MissedSlots.literals).pipe(
      Options.withDescription(
        "Slots missed while no broker led: catch-up runs them once, together; skip runs none. Default: catch-up."
      ),
      Options.optional
    )
  },
  (args) =>
    withClient(args, (client) =>
      client.upsertSchedule({
        id: args.id,
        ...Option.match(args.cron, { onNone: () => ({}), onSome: (cron) => ({ cron }) }),
        ...Option.match(args.timezone, { onNone: () => ({}), onSome: (timezone) => ({ timezone }) }),
        ...Option.match(args.everyMs, { onNone: () => ({}), onSome: (everyMs) => ({ everyMs }) }),
        ...Option.match(args.missed, { onNone: () => ({}), onSome: (missed) => ({ missed }) }),
        job: {
          type: args.type,
          ...Option.match(args.payload, { onNone: () => ({}), onSome: (payload) => ({ payload }) }),
          ...Option.match(args.priority, { onNone: () => ({}), onSome: (priority) => ({ priority }) }),
          ...Option.match(args.maxAttempts, { onNone: () => ({}), onSome: (maxAttempts) => ({ maxAttempts }) })
        }
      }).pipe(Effect.flatMap((schedule) => printSchedule(schedule, args.json))))
).pipe(
  Command.withDescription(
    "Set a schedule: a job enqueued at each slot of a cron expression, or every N ms; an id that exists is replaced"
  )
)

const remove = Command.make(
  "remove",
  { ...connection, json, id: scheduleId },
  (args) =>
    withClient(
      args,
      (client) => client.removeSchedule(args.id).pipe(Effect.flatMap((schedule) => printSchedule(schedule, args.json)))
    )
).pipe(Command.withDescription("Remove a schedule (runs already enqueued stay); prints it as it was"))

const list = Command.make(
  "list",
  { ...connection, json },
  (args) =>
    withClient(args, (client) =>
      client.listSchedules.pipe(
        Effect.flatMap((schedules) =>
          args.json
            ? printJson(schedules)
            : Effect.gen(function*() {
              if (schedules.length === 0) yield* Console.log("no schedules")
              for (const schedule of schedules) yield* Console.log(scheduleLine(schedule))
            })
        )
      ))
).pipe(Command.withDescription("List the schedules: id, job type, rule, next run, last run"))

export const scheduleSubcommands = [set, remove, list] as const

export const schedule = Command.make("schedule").pipe(
  Command.withDescription("Set, remove and list schedules (cron or every N ms)"),
  Command.withSubcommands(scheduleSubcommands)
)
