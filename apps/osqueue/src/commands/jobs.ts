/** Commands that talk to the brokers as a client: enqueue, jobs, stats, workers, pause/resume, watch. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import { OsqueueClient } from "@osqueue/client"
import { JobState, ListOrder } from "@osqueue/types"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { type Connection, connection, json, layerClient } from "../Connection.js"
import { withDefault } from "../Help.js"
import { jsonOption } from "../JsonOption.js"
import { jobLine, printJob, printJson } from "../Output.js"

/** Runs `body` with a client for the command's connection options. */
export const withClient = <A, E>(conn: Connection, body: (client: OsqueueClient["Type"]) => Effect.Effect<A, E>) =>
  Effect.flatMap(OsqueueClient, body).pipe(Effect.provide(layerClient(conn)))

export const payload = jsonOption("payload", Schema.parseJson()).pipe(
  Options.withAlias("p"),
  Options.withDescription(`The job's payload, as JSON: -p '{"to":"a@example.com"}'. Default: none.`),
  Options.optional
)

const typeFilter = (description: string) =>
  Options.text("type").pipe(Options.withDescription(description), Options.optional)

export const enqueue = Command.make(
  "enqueue",
  {
    ...connection,
    json,
    type: Args.text({ name: "type" }).pipe(
      Args.withDescription("The job's type: what its workers' handler is for, e.g. email.")
    ),
    payload,
    priority: Options.integer("priority").pipe(
      Options.withDescription("Lower runs first; FIFO within a priority. Default: 0."),
      Options.optional
    ),
    delay: Options.integer("delay-ms").pipe(
      Options.withDescription("Claimable this many milliseconds from now. Default: at once."),
      Options.optional
    ),
    maxAttempts: Options.integer("max-attempts").pipe(
      Options.withDescription(
        "Attempts before the job goes to the dead-letter list (1 to 1,000). Default: the broker's, 3."
      ),
      Options.optional
    ),
    key: Options.text("key").pipe(
      Options.withDescription("An idempotency key: enqueueing a key that exists returns its job. Default: none."),
      Options.optional
    )
  },
  (args) =>
    withClient(args, (client) =>
      client.enqueue(args.type, Option.getOrUndefined(args.payload), {
        ...Option.match(args.priority, { onNone: () => ({}), onSome: (priority) => ({ priority }) }),
        ...Option.match(args.delay, { onNone: () => ({}), onSome: (delayMs) => ({ delayMs }) }),
        ...Option.match(args.maxAttempts, { onNone: () => ({}), onSome: (maxAttempts) => ({ maxAttempts }) }),
        ...Option.match(args.key, { onNone: () => ({}), onSome: (idempotencyKey) => ({ idempotencyKey }) })
      }).pipe(Effect.flatMap((job) => printJob(job, args.json))))
).pipe(Command.withDescription("Enqueue one job"))

const jobId = Args.text({ name: "id" }).pipe(Args.withDescription("A job id, e.g. job-42"))

const list = Command.make(
  "list",
  {
    ...connection,
    json,
    state: Options.choice("state", JobState.literals).pipe(
      Options.withDescription("Only jobs in this state. Default: any."),
      Options.optional
    ),
    type: typeFilter("Only jobs of this type. Default: any."),
    limit: Options.integer("limit").pipe(Options.withDescription("The most jobs to print."), withDefault(50)),
    after: Options.integer("after").pipe(
      Options.withDescription(
        "Jobs past this seq in the order asked: the previous page's `more: --after N`. Default: from the first."
      ),
      Options.optional
    ),
    order: Options.choice("order", ListOrder.literals).pipe(
      Options.withDescription("Enqueue order: asc (oldest first) or desc (newest first). Default: asc."),
      Options.optional
    ),
    search: Options.text("search").pipe(
      Options.withDescription(
        "Only jobs whose id, payload (as JSON) or last error contains this text. Default: every job."
      ),
      Options.optional
    )
  },
  (args) =>
    withClient(args, (client) =>
      client.list({
        limit: args.limit,
        ...Option.match(args.state, { onNone: () => ({}), onSome: (state) => ({ state }) }),
        ...Option.match(args.type, { onNone: () => ({}), onSome: (type) => ({ type }) }),
        ...Option.match(args.after, { onNone: () => ({}), onSome: (after) => ({ after }) }),
        ...Option.match(args.order, { onNone: () => ({}), onSome: (order) => ({ order }) }),
        ...Option.match(args.search, { onNone: () => ({}), onSome: (search) => ({ search }) })
      }).pipe(
        Effect.flatMap((page) =>
          args.json
            ? printJson(page)
            : Effect.gen(function*() {
              if (page.jobs.length === 0) yield* Console.log("no jobs")
              for (const job of page.jobs) yield* Console.log(jobLine(job))
              if (page.next !== undefined) yield* Console.log(`more: --after ${page.next}`)
            })
        )
      ))
).pipe(Command.withDescription("List jobs in enqueue order (oldest or newest first), by state, type or a search"))

const byId = (
  name: string,
  description: string,
  run: (client: OsqueueClient["Type"], id: string) => ReturnType<OsqueueClient["Type"]["get"]>
) =>
  Command.make(
    name,
    { ...connection, json, id: jobId },
    (args) => withClient(args, (client) => run(client, args.id).pipe(Effect.flatMap((job) => printJob(job, args.json))))
  ).pipe(Command.withDescription(description))

const retryDead = Command.make(
  "retry-dead",
  { ...connection, type: typeFilter("Only the dead jobs of this type. Default: every type.") },
  (args) =>
    withClient(args, (client) =>
      client.retryDead(Option.getOrUndefined(args.type)).pipe(
        Effect.flatMap((count) => Console.log(`${count} dead job(s) back in the queue`))
      ))
).pipe(Command.withDescription("Send dead-lettered jobs (all, or of one type) back to the queue"))

const priority = Command.make(
  "priority",
  {
    ...connection,
    json,
    id: jobId,
    priority: Args.integer({ name: "priority" }).pipe(
      Args.withDescription("The new priority: lower runs first (-1000000 to 1000000).")
    )
  },
  (args) =>
    withClient(
      args,
      (client) => client.setPriority(args.id, args.priority).pipe(Effect.flatMap((job) => printJob(job, args.json)))
    )
).pipe(
  Command.withDescription("Change the priority of a job that has not started (queued, delayed or waiting to retry)")
)

/** The states a purge may empty: all but running. */
const purgeable = JobState.literals.filter((state) => state !== "running")

const purge = Command.make(
  "purge",
  {
    ...connection,
    state: Options.choice("state", purgeable).pipe(
      Options.withDescription(
        "Remove the jobs in this state (running jobs cannot be purged: cancel them first). Required."
      )
    ),
    type: typeFilter("Only the jobs of this type. Default: every type."),
    yes: Options.boolean("yes").pipe(
      Options.withDescription("Confirm: the jobs are removed for good. Without it nothing is removed. Default: false.")
    )
  },
  (args) => {
    const what = `every ${args.state} job${
      Option.match(args.type, { onNone: () => "", onSome: (type) => ` of type ${type}` })
    }`
    if (!args.yes) {
      const message = `purge removes ${what} for good: add --yes to confirm`
      return Console.error(`osqueue: ${message}`).pipe(
        Effect.zipRight(Effect.fail(ValidationError.invalidValue(HelpDoc.p(message))))
      )
    }
    return withClient(args, (client) =>
      client.purge(args.state, Option.getOrUndefined(args.type)).pipe(
        Effect.flatMap((count) => Console.log(`${count} job(s) removed (${what})`))
      ))
  }
).pipe(Command.withDescription("Remove every job in one state (of one type, or all) for good; needs --yes"))

export const jobsSubcommands = [
  list,
  byId("get", "Show one job", (client, id) => client.get(id)),
  byId("cancel", "Cancel a queued, delayed or running job", (client, id) => client.cancel(id)),
  byId("retry", "Run a dead, cancelled or retry-waiting job again now", (client, id) => client.retry(id)),
  retryDead,
  byId("promote", "Make a delayed or retry-waiting job claimable now", (client, id) => client.promote(id)),
  priority,
  byId(
    "delete",
    "Remove a job for good, in any state but running (cancel it first); prints it as it was",
    (client, id) => client.delete(id)
  ),
  purge
] as const

export const jobs = Command.make("jobs").pipe(
  Command.withDescription("Inspect and steer jobs"),
  Command.withSubcommands(jobsSubcommands)
)

export const stats = Command.make(
  "stats",
  { ...connection, json },
  (args) =>
    withClient(args, (client) =>
      Effect.all([client.stats, client.leader]).pipe(
        Effect.flatMap(([stats, leader]) =>
          args.json
            ? printJson({ ...stats, leader })
            : Effect.gen(function*() {
              yield* Console.log(`leader   ${leader.leaderUrl ?? "none"} (epoch ${leader.epoch})`)
              for (const [state, count] of Object.entries(stats.counts)) {
                yield* Console.log(`${state.padEnd(21)}${count}`)
              }
              yield* Console.log(`paused   ${stats.paused.all ? "all" : stats.paused.types.join(", ") || "no"}`)
              yield* Console.log(
                `totals   enqueued ${stats.enqueuedTotal}, completed ${stats.completedTotal}, dead ${stats.deadTotal}`
              )
              yield* Console.log(`state    ${stats.stateBytes} bytes at seq ${stats.seq}`)
            })
        )
      ))
).pipe(Command.withDescription("Counts by state, totals and the leader"))

export const workers = Command.make(
  "workers",
  { ...connection, json },
  (args) =>
    withClient(args, (client) =>
      client.workers.pipe(
        Effect.flatMap((workers) =>
          args.json
            ? printJson(workers)
            : Effect.gen(function*() {
              if (workers.length === 0) yield* Console.log("no worker seen in the last lease TTL")
              for (const worker of workers) {
                yield* Console.log(
                  `${worker.id.padEnd(24)} ${`jobs ${worker.jobs}`.padEnd(10)} last seen ${
                    new Date(worker.lastSeenAt).toISOString()
                  }`
                )
              }
            })
        )
      ))
).pipe(Command.withDescription("Workers seen in the last lease TTL: the jobs each holds and when it was last seen"))

const pauseOrResume = (name: "pause" | "resume") =>
  Command.make(name, {
    ...connection,
    type: typeFilter(`${name === "pause" ? "Pause" : "Resume"} the claims of this type only. Default: every type.`)
  }, (args) =>
    withClient(args, (client) =>
      client[name](Option.getOrUndefined(args.type)).pipe(
        Effect.flatMap((paused) =>
          Console.log(
            paused.all
              ? "claiming is paused for all types"
              : paused.types.length > 0
              ? `paused: ${paused.types.join(", ")}`
              : "claiming is not paused"
          )
        )
      ))).pipe(Command.withDescription(name === "pause" ? "Stop claims (of one type, or all)" : "Let claims go on"))

export const pause = pauseOrResume("pause")
export const resume = pauseOrResume("resume")

export const watch = Command.make(
  "watch",
  { ...connection, json },
  (args) =>
    withClient(args, (client) =>
      client.watch({ statsEveryMs: 5_000 }).pipe(
        Stream.runForEach((event) => {
          if (args.json) return Console.log(JSON.stringify(event))
          switch (event._tag) {
            case "Job": {
              const e = event.event
              return Console.log(
                `${new Date(e.at).toISOString()} ${e.kind.padEnd(9)} ${e.jobId} ${e.type}${
                  e.error ? ` (${e.error})` : ""
                }`
              )
            }
            case "Leader":
              return Console.log(`leader ${event.leader.leaderUrl ?? "none"} (epoch ${event.leader.epoch})`)
            case "Stats":
              return Console.log(`stats ${JSON.stringify(event.stats.counts)}`)
            case "History":
              // Not asked for here.
              return Effect.void
          }
        })
      ))
).pipe(Command.withDescription("Follow queue events live"))
