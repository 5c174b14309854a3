/** `osqueue worker`: a worker pool running the demo handlers or a user's module. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { type Handlers, Worker } from "@osqueue/worker"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { pathToFileURL } from "node:url"
import { resolve } from "node:path"
import { clientLayer, connection } from "../Connection.js"
import { demoHandlers } from "../Demo.js"

export const workerOptions = {
  concurrency: Options.integer("concurrency").pipe(
    Options.withAlias("c"),
    Options.filterMap((n) => (n >= 1 ? Option.some(n) : Option.none()), "--concurrency must be 1 or more"),
    Options.withDefault(4)
  ),
  prefetch: Options.integer("prefetch").pipe(
    Options.withDescription("Jobs leased ahead of a free slot (default: the concurrency; 0 for long jobs)"),
    Options.filterMap((n) => (n >= 0 ? Option.some(n) : Option.none()), "--prefetch must be 0 or more"),
    Options.optional
  ),
  workMs: Options.integer("work-ms").pipe(Options.withDescription("Demo handlers: average work time"), Options.withDefault(300)),
  failRate: Options.float("fail-rate").pipe(Options.withDescription("Demo handlers: share of attempts that fail"), Options.withDefault(0.05))
}

const module = Options.file("module", { exists: "yes" }).pipe(
  Options.withDescription("A module whose default export (or `handlers` export) maps job types to handlers"),
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

export const worker = Command.make("worker", { ...connection, ...workerOptions, module }, (args) =>
  Effect.gen(function*() {
    const handlers = Option.isSome(args.module)
      ? yield* loadHandlers(args.module.value)
      : demoHandlers({ workMs: args.workMs, failRate: args.failRate })
    return yield* Worker.run({ handlers: handlers as Readonly<Record<string, (p: unknown) => Effect.Effect<unknown>>>, concurrency: args.concurrency, prefetch: Option.getOrUndefined(args.prefetch) })
  }).pipe(Effect.provide(clientLayer(args)))
).pipe(Command.withDescription("Run a worker pool (demo handlers unless --module is given)"))
