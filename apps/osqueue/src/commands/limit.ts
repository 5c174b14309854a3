/**
 * `osqueue limit set|clear|list`: the limits on claims (docs/architecture.md, "Limits on
 * claims"), per job type or for the whole queue, changed at run time like a pause.
 */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import type { ClaimLimit, LimitStatus, RateLimit } from "@osqueue/types"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { connection, json } from "../Connection.js"
import { printJson } from "../Output.js"
import { withClient } from "./jobs.js"

const type = (description: string) => Options.text("type").pipe(Options.withDescription(description), Options.optional)

const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

/** `M/<window>`: `100/60s`, `5/500ms`, `1000/1h`, `10/250` (milliseconds); undefined when it is not one. */
export const parseRate = (text: string): RateLimit | undefined => {
  const match = /^(\d+)\/(\d+)(ms|s|m|h)?$/.exec(text.trim())
  if (match === null) return undefined
  return { max: Number(match[1]), windowMs: Number(match[2]) * units[match[3] ?? "ms"]! }
}

const refuse = (message: string) =>
  Console.error(`osqueue: ${message}`).pipe(
    Effect.zipRight(Effect.fail(ValidationError.invalidValue(HelpDoc.p(message))))
  )

const scopeOf = (limit: { readonly type?: string }) => limit.type ?? "(whole queue)"

const windowText = (
  ms: number
) => (ms % 3_600_000 === 0
  ? `${ms / 3_600_000}h`
  : ms % 60_000 === 0
  ? `${ms / 60_000}m`
  : ms % 1_000 === 0
  ? `${ms / 1_000}s`
  : `${ms}ms`)

const limitText = (limit: ClaimLimit) =>
  [
    ...(limit.concurrency === undefined ? [] : [`concurrency ${limit.concurrency}`]),
    ...(limit.rate === undefined ? [] : [`rate ${limit.rate.max}/${windowText(limit.rate.windowMs)}`])
  ].join(", ")

const printLimits = (limits: ReadonlyArray<ClaimLimit>, asJson: boolean) =>
  asJson
    ? printJson(limits)
    : limits.length === 0
    ? Console.log("no limits on claims")
    : Effect.forEach(limits, (limit) => Console.log(`${scopeOf(limit).padEnd(24)} ${limitText(limit)}`), {
      discard: true
    })

const statusText = (status: LimitStatus) =>
  [
    ...(status.concurrency === undefined ? [] : [`running ${status.running}/${status.concurrency}`]),
    ...(status.rate === undefined
      ? []
      : [`started ${status.startsInWindow ?? 0}/${status.rate.max} in the last ${windowText(status.rate.windowMs)}`])
  ].join(", ")

const set = Command.make(
  "set",
  {
    ...connection,
    json,
    type: type("Limit the jobs of this type. Default: the whole queue (every type together)."),
    concurrency: Options.integer("concurrency").pipe(
      Options.withDescription("At most this many running at once, across every worker (1 to 1,000,000)."),
      Options.optional
    ),
    rate: Options.text("rate").pipe(
      Options.withDescription(
        "At most M claims starting in any window: M/<window>, e.g. 100/60s, 5/500ms, 1000/1h (a bare number is milliseconds)."
      ),
      Options.optional
    )
  },
  (args) => {
    const rate = Option.map(args.rate, (text) => ({ text, parsed: parseRate(text) }))
    if (Option.isSome(rate) && rate.value.parsed === undefined) {
      return refuse(
        `--rate ${JSON.stringify(rate.value.text)} is not M/<window>: give e.g. 100/60s, 5/500ms or 1000/1h`
      )
    }
    if (Option.isNone(args.concurrency) && Option.isNone(rate)) {
      return refuse("limit set needs --concurrency, --rate or both (to remove a limit: osqueue limit clear)")
    }
    const limit: ClaimLimit = {
      ...Option.match(args.type, { onNone: () => ({}), onSome: (type) => ({ type }) }),
      ...Option.match(args.concurrency, { onNone: () => ({}), onSome: (concurrency) => ({ concurrency }) }),
      ...Option.match(rate, { onNone: () => ({}), onSome: ({ parsed }) => ({ rate: parsed! }) })
    }
    return withClient(
      args,
      (client) => client.setLimit(limit).pipe(Effect.flatMap((limits) => printLimits(limits, args.json)))
    )
  }
).pipe(
  Command.withDescription("Set the limit on claims of a type (or of the whole queue): it becomes exactly what is given")
)

const clear = Command.make(
  "clear",
  { ...connection, json, type: type("Remove the limit of this type. Default: the whole queue's.") },
  (args) =>
    withClient(
      args,
      (client) =>
        client.clearLimit(Option.getOrUndefined(args.type)).pipe(
          Effect.flatMap((limits) => printLimits(limits, args.json))
        )
    )
).pipe(Command.withDescription("Remove the limit on claims of a type (or of the whole queue)"))

const list = Command.make("list", { ...connection, json }, (args) =>
  withClient(args, (client) =>
    client.limits.pipe(
      Effect.flatMap((limits) =>
        args.json
          ? printJson(limits)
          : limits.length === 0
          ? Console.log("no limits on claims")
          : Effect.forEach(limits, (status) =>
            Console.log(`${scopeOf(status).padEnd(24)} ${limitText(status).padEnd(36)} ${statusText(status)}`), {
            discard: true
          })
      )
    ))).pipe(
    Command.withDescription("The limits on claims, with the jobs running and the claims started in each window now")
  )

export const limitSubcommands = [set, clear, list] as const

export const limit = Command.make("limit").pipe(
  Command.withDescription(
    "Limits on claims: at most N running at once, at most M starts per window, per type or for the whole queue"
  ),
  Command.withSubcommands(limitSubcommands)
)
