/**
 * The broker's own settings (the engine's are `EngineConfig`'s). `layer` takes plain values
 * (tests, embedding); `layerConfig` reads the environment.
 */
import { Json } from "@osqueue/types"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

export interface BrokerSettings {
  /** Bind address. */
  readonly host: string
  /** Bind port; 0 picks a free one. */
  readonly port: number
  /** When set, every route but /healthz, /readyz, /docs and /v1/openapi.json needs `Authorization: Bearer <token>`. */
  readonly token: Option.Option<Redacted.Redacted>
  /** Largest request body, in bytes: larger ones get 413 before they are read in full. */
  readonly maxBodyBytes: number
  /** Most levels of arrays and objects in a request body, RPC line or frame: deeper ones are refused before parsing. */
  readonly maxJsonDepth: number
  /** Most bytes of RPC answers to one HTTP body, or of one WebSocket answer: past it the request fails with PayloadTooLarge. */
  readonly maxAnswerBytes: number
  /** The built dashboard (`apps/web/dist`) served at `/`; none: `/` says there is no dashboard. */
  readonly dashboardDir: Option.Option<string>
  /**
   * The hot REST routes answered by a plain Node listener in front of HttpApi (`FastRest`), on a
   * server that has a `FrontDoor`; off, every request goes through HttpApi. The answers are the same.
   */
  readonly fastRest: boolean
}

export const defaults: BrokerSettings = {
  host: "0.0.0.0",
  port: 8080,
  token: Option.none(),
  maxBodyBytes: 8 * 1024 * 1024,
  maxJsonDepth: Json.defaultMaxJsonDepth,
  maxAnswerBytes: 64 * 1024 * 1024,
  dashboardDir: Option.none(),
  fastRest: true
}

/** A reference with defaults, so `Broker.layer` runs without it (no auth, 8 MiB bodies). */
export class BrokerConfig extends Context.Reference<BrokerConfig>()("@osqueue/broker/BrokerConfig", {
  defaultValue: (): BrokerSettings => defaults
}) {}

export const make = (settings: Partial<BrokerSettings> = {}): BrokerSettings => ({ ...defaults, ...settings })

export const layer = (settings: Partial<BrokerSettings> = {}): Layer.Layer<BrokerConfig> =>
  Layer.succeed(BrokerConfig, make(settings))

export const config: Config.Config<BrokerSettings> = Config.all({
  host: Config.string("BROKER_HOST").pipe(Config.withDefault(defaults.host)),
  port: Config.port("BROKER_PORT").pipe(Config.withDefault(defaults.port)),
  // An empty OSQUEUE_TOKEN means no auth, as an unset one does.
  token: Config.option(Config.redacted("OSQUEUE_TOKEN")).pipe(
    Config.map(Option.filter((token) => Redacted.value(token).length > 0))
  ),
  maxBodyBytes: Config.integer("OSQUEUE_MAX_BODY_BYTES").pipe(
    Config.withDefault(defaults.maxBodyBytes),
    Config.validate({ message: "OSQUEUE_MAX_BODY_BYTES must be positive", validation: (n) => n > 0 })
  ),
  maxJsonDepth: Config.integer("OSQUEUE_MAX_JSON_DEPTH").pipe(
    Config.withDefault(defaults.maxJsonDepth),
    Config.validate({
      message: `OSQUEUE_MAX_JSON_DEPTH must be between 1 and ${Json.maxJsonDepthLimit}`,
      validation: (n) => n >= 1 && n <= Json.maxJsonDepthLimit
    })
  ),
  maxAnswerBytes: Config.integer("OSQUEUE_MAX_ANSWER_BYTES").pipe(
    Config.withDefault(defaults.maxAnswerBytes),
    Config.validate({ message: "OSQUEUE_MAX_ANSWER_BYTES must be positive", validation: (n) => n > 0 })
  ),
  dashboardDir: Config.option(Config.nonEmptyString("OSQUEUE_DASHBOARD_DIR")),
  fastRest: Config.boolean("OSQUEUE_FAST_REST").pipe(Config.withDefault(defaults.fastRest))
})

export const layerConfig: Layer.Layer<BrokerConfig, ConfigError.ConfigError> = Layer.effect(BrokerConfig, config)
