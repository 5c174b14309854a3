/** `osqueue broker`: one broker on the chosen store; it leads or stands by through queue.json. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Broker, BrokerConfig, Queues } from "@osqueue/broker"
import { EngineConfig } from "@osqueue/core"
import { FaultyStore } from "@osqueue/storage"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { fileURLToPath } from "node:url"
import { boundHeapGrowth } from "../HeapGrowth.js"
import { withDefault } from "../Help.js"
import { jsonOption, oneLine } from "../JsonOption.js"
import { type Backend, layerStorage, storeOptions, withFaults } from "../Storage.js"

export const brokerOptions = {
  ...storeOptions,
  host: Options.text("host").pipe(
    Options.withDescription("The address to listen on. Env BROKER_HOST."),
    Options.withFallbackConfig(Config.string("BROKER_HOST")),
    withDefault("0.0.0.0")
  ),
  port: Options.integer("port").pipe(
    Options.withAlias("p"),
    Options.withDescription("The port to listen on. Env BROKER_PORT."),
    Options.withFallbackConfig(Config.integer("BROKER_PORT")),
    withDefault(8080)
  ),
  url: Options.text("url").pipe(
    Options.withDescription(
      "The URL clients reach this broker at when it leads, never the bind address. Env BROKER_URL. Default: http://localhost:<port>."
    ),
    Options.withFallbackConfig(Config.string("BROKER_URL")),
    Options.optional
  ),
  // The environment's setting is the engine's OSQUEUE_ELECTION_TTL (a duration, read with the
  // other engine settings): one variable, whether or not the flag exists.
  electionTtl: Options.integer("election-ttl-ms").pipe(
    Options.withDescription(
      "A standby takes over after this many milliseconds without a commit. Env OSQUEUE_ELECTION_TTL, a duration (\"10 seconds\"). Default: 10 seconds."
    ),
    Options.optional
  ),
  queues: Options.text("queue").pipe(
    Options.withPseudoName("name"),
    Options.withDescription(
      "A queue to serve; repeat it for several (each its own queue.json and log under queues/<name>/, with its own leader; \"default\" is the unprefixed one). Env OSQUEUE_QUEUES, comma-separated. Default: default."
    ),
    Options.repeated
  ),
  storeFaults: jsonOption("store-faults", FaultyStore.FaultOptionsFromJson).pipe(
    Options.withDescription(
      "TEST FACILITY, never for production: inject storage faults, as FaultyStore options in JSON, e.g. " +
        `'{"seed":7,"readFailureRate":0.05,"writeFailureRate":0.05,"ambiguousWriteRate":0.02,"spikeRate":0.01,"spikeMs":3000}'. ` +
        "Env OSQUEUE_STORE_FAULTS (scripts/chaos sets it). Default: none."
    ),
    Options.withFallbackConfig(
      Config.string("OSQUEUE_STORE_FAULTS").pipe(
        Config.mapOrFail((text) =>
          Schema.decodeEither(FaultyStore.FaultOptionsFromJson)(text).pipe(
            Either.mapLeft((error) => ConfigError.InvalidData(["OSQUEUE_STORE_FAULTS"], oneLine(error)))
          )
        )
      )
    ),
    Options.optional
  )
}

export interface BrokerArgs {
  readonly storage: Backend
  readonly dir: string
  readonly host: string
  readonly port: number
  readonly url: Option.Option<string>
  readonly electionTtl: Option.Option<number>
  readonly queues: ReadonlyArray<string>
  readonly storeFaults: Option.Option<FaultyStore.FaultOptions>
}

/**
 * The dashboard the broker serves at `/`: OSQUEUE_DASHBOARD_DIR, else the one this package ships
 * in `dashboard/` (built from `apps/web`; from `src/commands/` and `dist/commands/` alike, it is
 * two levels up). The broker says so at `/` when it is not built.
 */
const defaultDashboardDir = (): Option.Option<string> =>
  Option.some(fileURLToPath(new URL("../../dashboard", import.meta.url)))

/** The broker with its engine and store, as a layer that runs until interrupted. */
export const layerBroker = (args: BrokerArgs) =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const engineSettings = yield* EngineConfig.config
      const brokerSettings = yield* BrokerConfig.config
      const advertisedUrl = Option.getOrElse(args.url, () => `http://localhost:${args.port}`)
      const electionTtlMs = Option.getOrElse(args.electionTtl, () => Duration.toMillis(engineSettings.electionTtl))
      const queues = args.queues.length > 0 ? args.queues : yield* Queues.namesConfig
      const problem = Queues.namesProblem(queues)
      if (problem !== undefined) return yield* Effect.fail(ConfigError.InvalidData(["--queue"], problem))
      const engine = EngineConfig.layer({
        ...engineSettings,
        advertisedUrl,
        electionTtl: Duration.millis(electionTtlMs),
        pollInterval: Duration.millis(Math.max(100, Math.floor(electionTtlMs / 5)))
      })
      yield* Effect.logInfo("starting broker").pipe(
        Effect.annotateLogs({
          storage: args.storage,
          url: advertisedUrl,
          bind: `${args.host}:${args.port}`,
          queues: queues.join(",")
        })
      )
      return Broker.serveQueues({ port: args.port, host: args.host }).pipe(
        Layer.provide(Layer.succeed(BrokerConfig.BrokerConfig, {
          ...brokerSettings,
          host: args.host,
          port: args.port,
          dashboardDir: Option.orElse(brokerSettings.dashboardDir, defaultDashboardDir)
        })),
        Layer.provide(Queues.layer(queues)),
        Layer.provide(engine),
        Layer.provide(Option.match(args.storeFaults, {
          onNone: () => layerStorage(args.storage, args.dir),
          onSome: (faults) => withFaults(layerStorage(args.storage, args.dir), faults)
        }))
      )
    })
  )

export const broker = Command.make(
  "broker",
  brokerOptions,
  (args) => Effect.zipRight(Effect.sync(boundHeapGrowth), Layer.launch(layerBroker(args)))
).pipe(
  Command.withDescription("Run a broker: it leads, or stands by and takes over when the leader goes")
)
