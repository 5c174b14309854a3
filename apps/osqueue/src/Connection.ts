/**
 * How the client commands reach the brokers: `--brokers` (a comma-separated list; the client
 * finds the leader), `--token`, `--transport`, `--queue`; with `--leader-from-store`, the leader
 * is also found in the queue's queue.json metadata in the store `--storage`/`--dir` name. Each
 * falls back to an environment variable.
 */
import * as Options from "@effect/cli/Options"
import { OsqueueClient } from "@osqueue/client"
import { Election } from "@osqueue/core"
import { QueueNames } from "@osqueue/types"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { withDefault } from "./Help.js"
import { type Backend, layerStorage, storeOptions } from "./Storage.js"

export const brokers = Options.text("brokers").pipe(
  Options.withAlias("b"),
  Options.withPseudoName("urls"),
  Options.withDescription("The brokers' URLs, comma-separated; the leader is found among them. Env OSQUEUE_BROKERS."),
  Options.withFallbackConfig(Config.string("OSQUEUE_BROKERS")),
  withDefault("http://localhost:8080")
)

export const token = Options.redacted("token").pipe(
  // Kept redacted in memory; on the command line it is text like any other.
  Options.withPseudoName("text"),
  Options.withDescription("The bearer token, when the broker requires one. Env OSQUEUE_TOKEN. Default: none."),
  Options.withFallbackConfig(Config.redacted("OSQUEUE_TOKEN")),
  Options.optional
)

export const transport = Options.choice("transport", ["http", "ws"]).pipe(
  Options.withDescription("RPC over HTTP requests, or over one WebSocket. Env OSQUEUE_TRANSPORT."),
  Options.withFallbackConfig(Config.literal("http", "ws")("OSQUEUE_TRANSPORT")),
  withDefault("http" as const)
)

export const queue = Options.text("queue").pipe(
  Options.withAlias("q"),
  Options.withPseudoName("name"),
  Options.withDescription(
    "The queue, one of those the brokers serve (OSQUEUE_QUEUES). Env OSQUEUE_QUEUE. Default: the default queue."
  ),
  Options.withFallbackConfig(Config.string("OSQUEUE_QUEUE")),
  Options.optional
)

export const json = Options.boolean("json").pipe(Options.withDescription("Print JSON, for scripts."))

export const leaderFromStore = Options.boolean("leader-from-store").pipe(
  Options.withDescription(
    "Also find the leader in queue.json's metadata (one HEAD), in the store that --storage and --dir name: needs read access to it."
  )
)

export const connection = { brokers, token, transport, queue, leaderFromStore, ...storeOptions }

export interface Connection {
  readonly brokers: string
  readonly token: Option.Option<Redacted.Redacted>
  readonly transport: "http" | "ws"
  readonly queue: Option.Option<string>
  readonly leaderFromStore: boolean
  readonly storage: Backend
  readonly dir: string
}

export const layerClient = (connection: Connection): Layer.Layer<OsqueueClient, unknown> => {
  const layer = (discover: Effect.Effect<string | null, unknown> | undefined) => {
    const options = {
      urls: connection.brokers,
      token: Option.getOrUndefined(Option.map(connection.token, Redacted.value)),
      queue: Option.getOrUndefined(connection.queue),
      discover
    }
    return connection.transport === "ws" ? OsqueueClient.layerWebSocket(options) : OsqueueClient.layerHttp(options)
  }
  if (!connection.leaderFromStore) return layer(undefined)
  // The store is opened once, for the client's life.
  return Layer.unwrapScoped(
    Effect.map(
      Layer.build(layerStorage(connection.storage, connection.dir)),
      (store) =>
        layer(
          Election.leaderFromStore(
            `${QueueNames.keyPrefix(Option.getOrElse(connection.queue, () => QueueNames.defaultQueue))}queue.json`
          ).pipe(Effect.provide(store))
        )
    )
  )
}
