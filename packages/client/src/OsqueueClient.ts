/**
 * The `OsqueueClient` service tag and its layers, one per transport. Each layer only picks how
 * one broker URL is reached; leader discovery, retries and validation are shared.
 */
import * as RpcClient from "@effect/rpc/RpcClient"
import { InvalidRequest, QueueNames } from "@osqueue/types"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { OsqueueClientShape } from "./ClientShape.js"
import type { ClientError } from "./Errors.js"
import { make } from "./Operations.js"
import {
  type Connect,
  httpProtocol,
  makeRpcClient,
  rpcConnect,
  type Serialization,
  webSocketConnect
} from "./Protocols.js"
import { restConnect } from "./Rest.js"
import * as Router from "./Router.js"
import { fromRpcClient } from "./Transport.js"

/** Where and how to reach the brokers. */
export interface ConnectionOptions {
  /** Every broker's base URL (e.g. `http://localhost:8080`); the client finds the leader. */
  readonly urls: ReadonlyArray<string> | string
  /**
   * Finds the leader from outside the brokers, when none of them can say: typically
   * `Election.leaderFromStore` of `@osqueue/core` over the queue's store (a HEAD of queue.json,
   * whose metadata names the leader). With it, `urls` may be empty.
   */
  readonly discover?: Effect.Effect<string | null, unknown> | undefined
  /** Sent as `Authorization: Bearer <token>` (on WebSockets, as a subprotocol: `WebSocketAuth`). */
  readonly token?: string | undefined
  /** Waits between attempts of one call (default: exponential from 100 ms, capped at 2 s, jittered, 30 s in all). */
  readonly retry?: Schedule.Schedule<unknown, ClientError> | undefined
  /** One attempt's deadline (default 30 s; a long-poll claim adds its `waitMs`). */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /**
   * The queue to use, one of those the brokers serve (`OSQUEUE_QUEUES`); default: the default
   * queue. Each queue may have another leader: the client follows this one's. `forQueue` gives
   * a client of another queue.
   */
  readonly queue?: string | undefined
}

export interface WebSocketOptions extends ConnectionOptions {
  /** Must match the broker's WebSocket serialization (default json). */
  readonly serialization?: Serialization | undefined
}

export interface ProtocolOptions {
  /** Names the broker in logs and errors. */
  readonly label?: string | undefined
  /** The queue to use (`ConnectionOptions.queue`). */
  readonly queue?: string | undefined
  readonly retry?: Schedule.Schedule<unknown, ClientError> | undefined
  readonly requestTimeout?: Duration.DurationInput | undefined
}

const urlList = (urls: ReadonlyArray<string> | string): ReadonlyArray<string> =>
  typeof urls === "string" ? urls.split(",").map((u) => u.trim()).filter((u) => u.length > 0) : urls

/** A queue name as the client takes it: refused here, before any broker is asked, when it cannot be one. */
const checkQueue = (queue: string | undefined): Effect.Effect<string | undefined, InvalidRequest> => {
  const problem = queue === undefined ? undefined : QueueNames.queueNameProblem(queue)
  return problem === undefined ? Effect.succeed(queue) : Effect.fail(new InvalidRequest({ message: problem }))
}

/** The client of one queue over `connectTo(queue)`; `forQueue` builds another queue's the same way. */
const fromConnect = (
  options: ConnectionOptions,
  connectTo: (queue: string | undefined) => Connect
): Effect.Effect<OsqueueClientShape, InvalidRequest, Scope.Scope> => {
  const build = (queue: string | undefined): Effect.Effect<OsqueueClientShape, InvalidRequest, Scope.Scope> =>
    checkQueue(queue).pipe(
      Effect.flatMap(() =>
        Router.make({
          urls: urlList(options.urls),
          connect: connectTo(queue),
          discover: options.discover,
          retry: options.retry,
          requestTimeout: options.requestTimeout
        })
      ),
      Effect.flatMap(make),
      Effect.map((operations): OsqueueClientShape => ({
        ...operations,
        queue: queue ?? QueueNames.defaultQueue,
        forQueue: build
      }))
    )
  return build(options.queue)
}

export class OsqueueClient extends Context.Tag("@osqueue/client/OsqueueClient")<OsqueueClient, OsqueueClientShape>() {
  /** RPC over HTTP (`POST <url>/rpc`, ndjson). */
  static layerHttp = (options: ConnectionOptions): Layer.Layer<OsqueueClient> =>
    Layer.scoped(
      OsqueueClient,
      fromConnect(options, (queue) => rpcConnect((url) => httpProtocol(url, { token: options.token }), queue)).pipe(
        Effect.orDie
      )
    )

  /** RPC over one WebSocket per broker (`<url>/rpc/ws`). */
  static layerWebSocket = (options: WebSocketOptions): Layer.Layer<OsqueueClient> =>
    Layer.scoped(
      OsqueueClient,
      fromConnect(
        options,
        (queue) => webSocketConnect({ token: options.token, serialization: options.serialization }, queue)
      ).pipe(Effect.orDie)
    )

  /** REST (`/v1/…`) through `HttpApiClient`; `watch` is not available over REST. */
  static layerRest = (options: ConnectionOptions): Layer.Layer<OsqueueClient> =>
    Layer.scoped(
      OsqueueClient,
      fromConnect(options, (queue) => restConnect({ token: options.token, queue })).pipe(Effect.orDie)
    )

  /**
   * From the environment: `OSQUEUE_BROKERS` (comma-separated, default `http://localhost:8080`),
   * `OSQUEUE_TOKEN` (optional), `OSQUEUE_TRANSPORT` (`http` | `ws` | `rest`, default `http`),
   * `OSQUEUE_QUEUE` (optional: the queue to use).
   */
  static layerConfig: Layer.Layer<OsqueueClient, ConfigError.ConfigError> = Layer.unwrapEffect(
    Effect.map(
      Config.all({
        urls: Config.string("OSQUEUE_BROKERS").pipe(Config.withDefault("http://localhost:8080")),
        token: Config.option(Config.redacted("OSQUEUE_TOKEN")),
        transport: Config.literal("http", "ws", "rest")("OSQUEUE_TRANSPORT").pipe(Config.withDefault("http" as const)),
        queue: Config.option(Config.string("OSQUEUE_QUEUE"))
      }),
      ({ queue, transport, token, urls }) => {
        const options = {
          urls,
          token: Option.getOrUndefined(Option.map(token, Redacted.value)),
          queue: Option.getOrUndefined(queue)
        }
        return transport === "ws"
          ? OsqueueClient.layerWebSocket(options)
          : transport === "rest"
          ? OsqueueClient.layerRest(options)
          : OsqueueClient.layerHttp(options)
      }
    )
  )

  /**
   * A custom transport: any RPC client protocol layer. It reaches one broker, so `NotLeader`
   * and other retryable errors are retried there on the schedule.
   */
  static layerProtocol = <E, R>(
    protocol: Layer.Layer<RpcClient.Protocol, E, R>,
    options: ProtocolOptions = {}
  ): Layer.Layer<OsqueueClient, E, Exclude<R, Scope.Scope>> =>
    Layer.scoped(
      OsqueueClient,
      Effect.gen(function*() {
        const label = options.label ?? "custom"
        const context = yield* Layer.build(protocol)
        const rpc = yield* Effect.provide(makeRpcClient, context)
        return yield* fromConnect(
          { urls: [label], retry: options.retry, requestTimeout: options.requestTimeout, queue: options.queue },
          (queue) => () => Effect.succeed(fromRpcClient(label, rpc, queue))
        ).pipe(Effect.orDie)
      })
    )
}
