/** `osqueue worker`: a worker pool running the demo handlers or a user's module. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { type Handlers, Worker } from "@osqueue/worker"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { connection, layerClient } from "../Connection.js"
import { demoHandlers } from "../Demo.js"
import { withDefault } from "../Help.js"

export const workerOptions = {
  concurrency: Options.integer("concurrency").pipe(
    Options.withAlias("c"),
    Options.withDescription("Jobs handled at once."),
    Options.filterMap((n) => (n >= 1 ? Option.some(n) : Option.none()), "--concurrency must be 1 or more"),
    withDefault(4)
  ),
  prefetch: Options.integer("prefetch").pipe(
    Options.withDescription("Jobs leased ahead of a free slot; 0 for long jobs. Default: the concurrency."),
    Options.filterMap((n) => (n >= 0 ? Option.some(n) : Option.none()), "--prefetch must be 0 or more"),
    Options.optional
  ),
  workMs: Options.integer("work-ms").pipe(
    Options.withDescription("The demo handlers' average work time, in milliseconds."),
    withDefault(300)
  ),
  failRate: Options.float("fail-rate").pipe(
    Options.withDescription("The share of the demo handlers' attempts that fail."),
    withDefault(0.05)
  )
}

const module = Options.file("module", { exists: "yes" }).pipe(
  Options.withDescription(
    "A module whose default export (or `handlers` export) maps job types to handlers: (payload, ctx) => Effect. Default: the demo handlers."
  ),
  Options.optional
)

/** Loads a user's handler module: `export default { email: (payload, ctx) => Effect... }`. */
const loadHandlers = (path: string) =>
  Effect.tryPromise({
    try: () => import(pathToFileURL(resolve(path)).href) as Promise<{ default?: Handlers; handlers?: Handlers }>,
    catch: (cause) => new Error(`cannot load ${path}: ${String(cause)}`)
  }).pipe(
    Effect.flatMap((loaded) => {
      const handlers = loaded.handlers ?? loaded.default
      return handlers !== undefined && typeof handlers === "object"
        ? Effect.succeed(handlers)
        : Effect.fail(new Error(`${path} exports no handlers: export default { [type]: (payload, ctx) => Effect }`))
    })
  )

export const worker = Command.make(
  "worker",
  { ...connection, ...workerOptions, module },
  (args) =>
    Effect.gen(function*() {
      const handlers = Option.isSome(args.module)
        ? yield* loadHandlers(args.module.value)
        : demoHandlers({ workMs: args.workMs, failRate: args.failRate })
      return yield* Worker.run({
        handlers: handlers as Readonly<Record<string, (p: unknown) => Effect.Effect<unknown>>>,
        concurrency: args.concurrency,
        prefetch: Option.getOrUndefined(args.prefetch)
      })
    }).pipe(Effect.provide(layerClient(args)))
).pipe(Command.withDescription("Run a worker pool (demo handlers unless --module is given)"))
