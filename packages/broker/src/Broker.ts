/**
 * The broker: RPC over HTTP and WebSocket, REST, docs, operator routes and the dashboard on one port, over one
 * handler set. `layer` needs the engine (GroupCommit + Election) and an HttpServer; `serve` adds
 * a Node HTTP server; `engine` composes the engine over any ObjectStore.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import type * as HttpServer from "@effect/platform/HttpServer"
import type { ServeError } from "@effect/platform/HttpServerError"
import { type Election, EngineConfig, type GroupCommit, type Replica } from "@osqueue/core"
import type { ObjectStore } from "@osqueue/storage"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { BrokerConfig, config as brokerConfig } from "./BrokerConfig.js"
import * as Dashboard from "./http/Dashboard.js"
import * as Edge from "./http/Edge.js"
import * as FrontDoor from "./http/FrontDoor.js"
import * as HttpGate from "./http/HttpGate.js"
import * as NodeServer from "./http/NodeServer.js"
import * as OperatorRoutes from "./http/OperatorRoutes.js"
import * as Rest from "./http/Rest.js"
import * as RouteTable from "./http/RouteTable.js"
import * as Rpc from "./http/Rpc.js"
import * as Queues from "./Queues.js"

const routesOverOperations = Layer.mergeAll(
  Rpc.layer,
  Rest.layer,
  OperatorRoutes.layer,
  Dashboard.layer,
  HttpGate.layer
).pipe(
  // The platform's file, path and etag services: the dashboard's files, and HttpApi wants them too.
  Layer.provide(NodeHttpServer.layerContext),
  // Every route is added through it, so the gate knows each path's methods (404 / 405).
  Layer.provide(RouteTable.layer)
)

/**
 * The API's edge (`Edge`: REST) on the server's `FrontDoor`, and the Effect app behind it (RPC,
 * operator routes, docs, dashboard, and the gate's answers to what no route serves), all over
 * the `Queues` served (each queue's `Operations`). Settings come from `BrokerConfig` (defaults when absent).
 */
export const layerQueues: Layer.Layer<never, never, Queues.Queues | HttpServer.HttpServer | FrontDoor.FrontDoor> = Layer
  .mergeAll(
    HttpLayerRouter.serve(routesOverOperations, { disableLogger: true, disableListenLog: true }),
    Edge.layer,
    // Built after the server, so closed before it: every queue's long polls and watch streams end
    // and its leader hands over while the server still answers (a watch held the server's close).
    Layer.scopedDiscard(
      Effect.flatMap(
        Queues.Queues,
        (queues) =>
          Effect.addFinalizer(() =>
            Effect.forEach(queues.all, (queue) => queue.operations.close, { discard: true, concurrency: "unbounded" })
          )
      )
    )
  )

/** `layerQueues` serving the default queue alone, over the engine (GroupCommit + Election) in context. */
export const layer: Layer.Layer<
  never,
  never,
  GroupCommit.GroupCommit | Election.Election | HttpServer.HttpServer | FrontDoor.FrontDoor
> = layerQueues.pipe(Layer.provide(Queues.single))

export { createClosableServer } from "./http/NodeServer.js"

export interface ListenOptions {
  readonly port: number
  readonly host?: string
}

/**
 * A `createClosableServer` bound to `port` (0 picks one) and `host`, with the `FrontDoor` that
 * `layer` opens its edge on. Its timeouts and WebSocket message limit
 * are `BrokerConfig`'s.
 */
export const nodeServer = (options: ListenOptions): Layer.Layer<
  HttpServer.HttpServer | FrontDoor.FrontDoor,
  ServeError
> =>
  Layer.unwrapEffect(Effect.map(BrokerConfig, (settings) => {
    const server = NodeServer.createClosableServer(settings)
    return Layer.merge(
      NodeHttpServer.layer(() => server, {
        port: options.port,
        ...(options.host !== undefined ? { host: options.host } : {})
      }),
      Layer.succeed(FrontDoor.FrontDoor, FrontDoor.attach(server))
    )
  }))

/** `layer` on a `nodeServer`. */
export const serve = (
  options: ListenOptions
): Layer.Layer<never, ServeError, GroupCommit.GroupCommit | Election.Election> =>
  layer.pipe(Layer.provide(nodeServer(options)))

/** `layerQueues` on a `nodeServer`. */
export const serveQueues = (options: ListenOptions): Layer.Layer<never, ServeError, Queues.Queues> =>
  layerQueues.pipe(Layer.provide(nodeServer(options)))

/** `serve` with the bind address, token, limits and timeouts read from the environment (`BrokerConfig.config`). */
export const layerConfig: Layer.Layer<
  never,
  ServeError | ConfigError.ConfigError,
  GroupCommit.GroupCommit | Election.Election
> = Layer.unwrapEffect(
  Effect.map(brokerConfig, (settings) =>
    serve(settings).pipe(
      Layer.provide(Layer.succeed(BrokerConfig, settings)),
      Layer.tap(() =>
        Effect.logInfo("broker listening").pipe(Effect.annotateLogs({ host: settings.host, port: settings.port }))
      )
    ))
)

/**
 * The engine over whatever ObjectStore and EngineConfig are provided: GroupCommit and Election
 * (both exposed, as `layer` needs them), with the Replica over the checkpoint (Cas) and the Log,
 * and storage metrics, inside.
 */
export const layerEngine: Layer.Layer<
  GroupCommit.GroupCommit | Election.Election,
  Layer.Layer.Error<typeof Replica.layer>,
  ObjectStore | EngineConfig.EngineConfig
> = Queues.layerEngine

/** `layerEngine` with these settings (the rest default; `EngineConfig.layerConfig` reads the environment). */
export const engine = (
  settings: Partial<EngineConfig.EngineSettings> = {}
): Layer.Layer<GroupCommit.GroupCommit | Election.Election, Layer.Layer.Error<typeof Replica.layer>, ObjectStore> =>
  layerEngine.pipe(Layer.provide(EngineConfig.layer(settings)))
