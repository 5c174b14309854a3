/**
 * The broker's own settings (the engine's are `EngineConfig`'s). `layer` takes plain values
 * (tests, embedding); `layerConfig` reads the environment.
 */
import { Json } from "@osqueue/types"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { readFileSync } from "node:fs"
import * as Access from "./Access.js"

export interface BrokerSettings {
  /** Bind address. */
  readonly host: string
  /** Bind port; 0 picks a free one. */
  readonly port: number
  /** When set, every route but /healthz, /readyz, /docs and /v1/openapi.json needs `Authorization: Bearer <token>`. */
  readonly token: Option.Option<Redacted.Redacted>
  /** More tokens, each with a role (`Access`); `token` is an admin one. With any token set, a token is needed. */
  readonly tokens: ReadonlyArray<Access.RoleToken>
  /** Largest request body, in bytes: larger ones get 413 before they are read in full. */
  readonly maxBodyBytes: number
  /** Most levels of arrays and objects in a request body, RPC line or frame: deeper ones are refused before parsing. */
  readonly maxJsonDepth: number
  /** Most bytes of RPC answers to one HTTP body, or of one WebSocket answer: past it the request fails with PayloadTooLarge. */
  readonly maxAnswerBytes: number
  /** The built dashboard (the `osqueue` package's `dashboard/`, built from `apps/web`) served at `/`; none: `/` says there is no dashboard. */
  readonly dashboardDir: Option.Option<string>
  /** Time for a request's headers to arrive (from its first byte, or the connection's): past it, 408 and the connection closes. */
  readonly headersTimeoutMs: number
  /** Time for a whole request, headers and body, to arrive: past it, 408 and the connection closes. An answer may take longer (long-poll claims, Watch). */
  readonly requestTimeoutMs: number
  /** How long a kept-alive connection may sit idle between requests before the broker closes it. */
  readonly keepAliveTimeoutMs: number
  /**
   * Browser origins (`scheme://host[:port]`) besides those of the broker's host that may send
   * mutations and open WebSockets, and get CORS answers; `*` allows any. Requests without an
   * `Origin` header (non-browser clients) are not concerned (`CrossSite`).
   */
  readonly allowedOrigins: ReadonlyArray<string>
}

export const defaults: BrokerSettings = {
  host: "0.0.0.0",
  port: 8080,
  token: Option.none(),
  tokens: [],
  maxBodyBytes: 8 * 1024 * 1024,
  maxJsonDepth: Json.defaultMaxJsonDepth,
  maxAnswerBytes: 64 * 1024 * 1024,
  dashboardDir: Option.none(),
  headersTimeoutMs: 5_000,
  // An 8 MiB body (the default limit) at 10 Mbit/s takes about 7 s.
  requestTimeoutMs: 8_000,
  keepAliveTimeoutMs: 5_000,
  allowedOrigins: []
}

/** A reference with defaults, so `Broker.layer` runs without it (no auth, 8 MiB bodies). */
export class BrokerConfig extends Context.Reference<BrokerConfig>()("@osqueue/broker/BrokerConfig", {
  defaultValue: (): BrokerSettings => defaults
}) {}

export const make = (settings: Partial<BrokerSettings> = {}): BrokerSettings => ({ ...defaults, ...settings })

export const layer = (settings: Partial<BrokerSettings> = {}): Layer.Layer<BrokerConfig> =>
  Layer.succeed(BrokerConfig, make(settings))

/** A positive number of milliseconds, `fallback` when unset (the error names the variable). */
const milliseconds = (fallback: number) => (config: Config.Config<number>) =>
  config.pipe(
    Config.validate({ message: "must be a positive number of milliseconds", validation: (n) => n > 0 }),
    Config.withDefault(fallback)
  )

/**
 * `OSQUEUE_ALLOWED_ORIGINS`: comma-separated origins, each as a browser sends it in `Origin`
 * (`https://app.example.com`, `http://localhost:5173`), or `*`; the problem when one is not.
 */
export const parseOrigins = (text: string): ReadonlyArray<string> | string => {
  const origins: Array<string> = []
  for (const entry of text.split(",").map((part) => part.trim()).filter((part) => part !== "")) {
    if (entry === "*") {
      origins.push(entry)
      continue
    }
    let url: URL | undefined
    try {
      url = new URL(entry)
    } catch {
      url = undefined
    }
    const bare = url !== undefined && (url.protocol === "http:" || url.protocol === "https:") &&
      url.pathname === "/" && url.search === "" && url.hash === "" && url.username === "" && url.password === ""
    if (url === undefined || !bare) {
      return `${
        JSON.stringify(entry)
      } is not an origin: write http(s)://host[:port] with nothing after it, or * for any`
    }
    origins.push(url.origin)
  }
  return origins
}

const invalid = (name: string, message: string) => Either.left(ConfigError.InvalidData([name], message))

/** `OSQUEUE_TOKENS` (`role:token,…`) and the lines of `OSQUEUE_TOKENS_FILE` (`role token`), together. */
const roleTokens: Config.Config<ReadonlyArray<Access.RoleToken>> = Config.all({
  list: Config.string("OSQUEUE_TOKENS").pipe(
    Config.withDefault(""),
    Config.mapOrFail((text) => {
      const tokens = Access.parseTokens(text, "list", "OSQUEUE_TOKENS")
      return typeof tokens === "string" ? invalid("OSQUEUE_TOKENS", tokens) : Either.right(tokens)
    })
  ),
  file: Config.option(Config.nonEmptyString("OSQUEUE_TOKENS_FILE")).pipe(
    Config.mapOrFail((path) => {
      if (Option.isNone(path)) return Either.right([])
      let text: string
      try {
        text = readFileSync(path.value, "utf8")
      } catch (error) {
        return invalid(
          "OSQUEUE_TOKENS_FILE",
          `cannot read ${path.value}: ${error instanceof Error ? error.message : String(error)}`
        )
      }
      const tokens = Access.parseTokens(text, "file", "OSQUEUE_TOKENS_FILE")
      return typeof tokens === "string" ? invalid("OSQUEUE_TOKENS_FILE", tokens) : Either.right(tokens)
    })
  )
}).pipe(Config.map(({ file, list }) => [...list, ...file]))

export const config: Config.Config<BrokerSettings> = Config.all({
  host: Config.string("BROKER_HOST").pipe(Config.withDefault(defaults.host)),
  port: Config.port("BROKER_PORT").pipe(Config.withDefault(defaults.port)),
  // An empty OSQUEUE_TOKEN means no auth, as an unset one does.
  token: Config.option(Config.redacted("OSQUEUE_TOKEN")).pipe(
    Config.map(Option.filter((token) => Redacted.value(token).length > 0))
  ),
  tokens: roleTokens,
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
  headersTimeoutMs: Config.integer("OSQUEUE_HEADERS_TIMEOUT_MS").pipe(milliseconds(defaults.headersTimeoutMs)),
  requestTimeoutMs: Config.integer("OSQUEUE_REQUEST_TIMEOUT_MS").pipe(milliseconds(defaults.requestTimeoutMs)),
  keepAliveTimeoutMs: Config.integer("OSQUEUE_KEEP_ALIVE_TIMEOUT_MS").pipe(milliseconds(defaults.keepAliveTimeoutMs)),
  allowedOrigins: Config.string("OSQUEUE_ALLOWED_ORIGINS").pipe(
    Config.withDefault(""),
    Config.mapOrFail((text) => {
      const origins = parseOrigins(text)
      return typeof origins === "string"
        ? Either.left(ConfigError.InvalidData(["OSQUEUE_ALLOWED_ORIGINS"], origins))
        : Either.right(origins)
    })
  )
}).pipe(
  Config.mapOrFail((settings) => {
    const problem = Access.conflict(Access.tokensOf(settings))
    return problem === undefined
      ? Either.right(settings)
      : invalid("OSQUEUE_TOKENS", `${problem} (OSQUEUE_TOKEN is admin)`)
  }),
  Config.validate({
    message:
      "OSQUEUE_HEADERS_TIMEOUT_MS must not be longer than OSQUEUE_REQUEST_TIMEOUT_MS (the headers are part of the request)",
    validation: (settings) => settings.headersTimeoutMs <= settings.requestTimeoutMs
  })
)

export const layerConfig: Layer.Layer<BrokerConfig, ConfigError.ConfigError> = Layer.effect(BrokerConfig, config)
