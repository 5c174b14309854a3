/**
 * How the client commands reach the brokers: `--brokers` (a comma-separated list; the client
 * finds the leader), `--token`, `--transport`. Each falls back to an environment variable.
 */
import * as Options from "@effect/cli/Options"
import { OsqueueClient } from "@osqueue/client"
import * as Config from "effect/Config"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

export const brokers = Options.text("brokers").pipe(
  Options.withAlias("b"),
  Options.withDescription("Broker URLs, comma-separated; the leader is found among them (env OSQUEUE_BROKERS)"),
  Options.withFallbackConfig(Config.string("OSQUEUE_BROKERS")),
  Options.withDefault("http://localhost:8080")
)

export const token = Options.redacted("token").pipe(
  Options.withDescription("Bearer token, when the broker requires one (env OSQUEUE_TOKEN)"),
  Options.withFallbackConfig(Config.redacted("OSQUEUE_TOKEN")),
  Options.optional
)

export const transport = Options.choice("transport", ["http", "ws"]).pipe(
  Options.withDescription("RPC over HTTP or over a WebSocket (env OSQUEUE_TRANSPORT)"),
  Options.withFallbackConfig(Config.literal("http", "ws")("OSQUEUE_TRANSPORT")),
  Options.withDefault("http" as const)
)

export const json = Options.boolean("json").pipe(Options.withDescription("Print JSON, for scripts"))

export const connection = { brokers, token, transport }

export interface Connection {
  readonly brokers: string
  readonly token: Option.Option<Redacted.Redacted>
  readonly transport: "http" | "ws"
}

export const clientLayer = (connection: Connection): Layer.Layer<OsqueueClient> => {
  const options = {
    urls: connection.brokers,
    token: Option.getOrUndefined(Option.map(connection.token, Redacted.value))
  }
  return connection.transport === "ws" ? OsqueueClient.layerWebSocket(options) : OsqueueClient.layerHttp(options)
}
