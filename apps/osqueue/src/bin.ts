#!/usr/bin/env node
/**
 * Entry point of the `osqueue` command. Exit codes: 0 done; 1 the operation failed (the
 * broker's tagged error is printed); 2 bad usage; 3 no broker reachable. Logs go to stderr, so a
 * command's stdout is its output alone (`--json` output pipes into jq whatever the client logs,
 * "switched broker" and the like). They are pretty by default; OSQUEUE_LOG_FORMAT=json prints one
 * JSON object per line (for log shippers and scripts/chaos), logfmt one logfmt line. With OTEL_EXPORTER_OTLP_ENDPOINT set, spans are exported
 * over OTLP (docs/tracing.md).
 */
import * as ValidationError from "@effect/cli/ValidationError"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { isOsqueueError } from "@osqueue/types"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import { commandTree, run } from "./Cli.js"
import * as Help from "./Help.js"
import { colorFor, commandConsole, noColor } from "./Output.js"
import * as Tracing from "./Tracing.js"

const exitCode = (error: unknown): number => {
  if (isOsqueueError(error)) return 1
  if (ValidationError.isValidationError(error)) return 2
  if (typeof error === "object" && error !== null && "_tag" in error && error._tag === "BrokerUnreachable") return 3
  return 1
}

const logger = Layer.unwrapEffect(
  Config.literal("pretty", "json", "logfmt")("OSQUEUE_LOG_FORMAT").pipe(
    Config.withDefault("pretty" as const),
    Effect.map((format) =>
      Logger.replace(
        Logger.defaultLogger,
        format === "json"
          ? Logger.withConsoleError(Logger.jsonLogger)
          : format === "logfmt"
          ? Logger.withConsoleError(Logger.logfmtLogger)
          : Logger.prettyLogger({ stderr: true })
      )
    )
  )
)

const main = Effect.gen(function*() {
  const plain = yield* noColor
  const help = Help.requested(commandTree, process.argv.slice(2))
  const body = help === undefined
    ? run(process.argv)
    : Console.log(Help.render(help.node, help.path, {
      color: colorFor(process.stdout, plain),
      // A terminal's width, within reason; 80 for a pipe (and a terminal that reports none).
      width: Math.min(Math.max(process.stdout.columns || 80, 60), 100)
    }))
  return yield* Effect.withConsole(body, commandConsole(yield* Effect.console, plain))
})

/** `osqueue-broker`, `osqueue-worker`, ...: the service its spans are under unless OTEL_SERVICE_NAME names one. */
const serviceName = (command: string | undefined) =>
  command !== undefined && /^[a-z][a-z-]*$/.test(command) ? `osqueue-${command}` : "osqueue"

main.pipe(
  // Inside the error handling: a bad OTEL_* variable is printed as any other error.
  Effect.provide(Tracing.layer(serviceName(process.argv[2]))),
  Effect.catchAllCause((cause) => {
    if (Cause.isInterruptedOnly(cause)) return Effect.void
    const failure = Cause.failureOption(cause)
    const error = Option.getOrUndefined(failure)
    // @effect/cli has already printed its own usage errors
    const printed = ValidationError.isValidationError(error)
    const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "Error"
    const text = error instanceof Error ? `${tag}: ${error.message}` : Cause.pretty(cause)
    return (printed ? Effect.void : Console.error(`osqueue: ${text}`)).pipe(
      Effect.zipRight(Effect.sync(() => {
        process.exitCode = Option.isSome(failure) ? exitCode(error) : 1
      }))
    )
  }),
  Effect.provide(NodeContext.layer),
  Effect.provide(logger),
  // The logger above replaces the default one; runMain's own pretty logger would print every line twice.
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
