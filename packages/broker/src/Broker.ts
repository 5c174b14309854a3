/**
 * The broker: RPC over HTTP and WebSocket, REST, docs, operator routes and the dashboard on one port, over one
 * handler set. `layer` needs the engine (GroupCommit + Election) and an HttpServer; `serve` adds
 * a Node HTTP server; `engine` composes the engine over any ObjectStore.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import type * as HttpServer from "@effect/platform/HttpServer"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Cas, Election, EngineConfig, GroupCommit } from "@osqueue/core"
import type { ObjectStore } from "@osqueue/storage"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Http from "node:http"
import { createServer } from "node:http"
import { BrokerConfig, config as brokerConfig } from "./BrokerConfig.js"
import * as Dashboard from "./Dashboard.js"
import * as FastRest from "./FastRest.js"
import * as FrontDoor from "./FrontDoor.js"
import * as Handlers from "./Handlers.js"
import * as HttpGate from "./HttpGate.js"
import * as Ops from "./Ops.js"
import * as Rest from "./Rest.js"
import * as Rpc from "./Rpc.js"
import * as StoreMetrics from "./StoreMetrics.js"

const routesOverHandlers = Layer.mergeAll(Rpc.layer, Rest.layer, Ops.layer, Dashboard.layer, HttpGate.layer).pipe(
  // The platform's file, path and etag services: the dashboard's files, and HttpApi wants them too.
  Layer.provide(NodeHttpServer.layerContext)
)

/** Every route, sharing one `Handlers`. */
export const routes: Layer.Layer<never, never, HttpLayerRouter.HttpRouter | GroupCommit.GroupCommit | Election.Election> =
  routesOverHandlers.pipe(Layer.provide(Handlers.layer))

/**
 * The routes served on an `HttpServer`, and the REST fast path in front of them when the server
 * has a `FrontDoor` (`nodeServer`), all over one `Handlers`. Settings come from `BrokerConfig`
 * (defaults when absent).
 */
export const layer: Layer.Layer<never, never, GroupCommit.GroupCommit | Election.Election | HttpServer.HttpServer> =
  Layer.merge(
    HttpLayerRouter.serve(routesOverHandlers, { disableLogger: true, disableListenLog: true }),
    FastRest.layer
  ).pipe(Layer.provide(Handlers.layer))

/**
 * A Node HTTP server that always answers and whose `close` ends. The routes' request handler is
 * registered after the server listens and removed before it closes; a request that comes in
 * outside that window (on a kept-alive connection, typically) would wait forever, and Node's
 * `close` waits for every connection to end: a broker told to stop would never exit. Such a
 * request is answered 503 (clients retry elsewhere); once closing, every response closes its
 * connection and idle connections are closed as they appear.
 */
export const createClosableServer = (): Http.Server => {
  const server = createServer()
  let closing = false
  const own = (request: Http.IncomingMessage, response: Http.ServerResponse) => {
    if (closing) response.setHeader("connection", "close")
    if (server.listenerCount("request") > 1) return
    request.resume()
    response.writeHead(503, { "content-type": "application/json", "retry-after": "1", connection: "close" })
    response.end(JSON.stringify({ error: "the broker is starting or stopping: retry, or ask another broker" }))
  }
  server.on("request", own)
  const close = server.close.bind(server)
  server.close = (callback) => {
    closing = true
    server.closeIdleConnections()
    const sweep = setInterval(() => server.closeIdleConnections(), 50)
    return close((error) => {
      clearInterval(sweep)
      callback?.(error)
    })
  }
  return server
}

export interface ListenOptions {
  readonly port: number
  readonly host?: string
}

/**
 * A `createClosableServer` bound to `port` (0 picks one) and `host`, with a `FrontDoor` so that
 * `layer` puts the REST fast path in front of its routes.
 */
export const nodeServer = (options: ListenOptions): Layer.Layer<
  HttpServer.HttpServer | FrontDoor.FrontDoor,
  ServeError
> =>
  Layer.unwrapEffect(Effect.sync(() => {
    const server = createClosableServer()
    return Layer.merge(
      NodeHttpServer.layer(() => server, {
        port: options.port,
        ...(options.host !== undefined ? { host: options.host } : {})
      }),
      Layer.succeed(FrontDoor.FrontDoor, FrontDoor.attach(server))
    )
  }))

/** `layer` on a `nodeServer`. */
export const serve = (options: ListenOptions): Layer.Layer<never, ServeError, GroupCommit.GroupCommit | Election.Election> =>
  layer.pipe(Layer.provide(nodeServer(options)))

/** `serve` with the bind address, token and limits read from the environment (BROKER_HOST, BROKER_PORT, OSQUEUE_TOKEN, OSQUEUE_MAX_BODY_BYTES). */
export const layerConfig: Layer.Layer<never, ServeError | ConfigError.ConfigError, GroupCommit.GroupCommit | Election.Election> =
  Layer.unwrapEffect(
    Effect.map(brokerConfig, (settings) =>
      serve(settings).pipe(
        Layer.provide(Layer.succeed(BrokerConfig, settings)),
        Layer.tap(() => Effect.logInfo("broker listening").pipe(Effect.annotateLogs({ host: settings.host, port: settings.port })))
      ))
  )

/**
 * The engine over whatever ObjectStore and EngineConfig are provided: GroupCommit and Election
 * (both exposed, as `layer` needs them), with Cas and storage metrics inside.
 */
export const engineLayer: Layer.Layer<
  GroupCommit.GroupCommit | Election.Election,
  Layer.Layer.Error<typeof Election.layer>,
  ObjectStore | EngineConfig.EngineConfig
> = GroupCommit.layer.pipe(
  Layer.provideMerge(Election.layer),
  Layer.provide(Cas.layer()),
  Layer.provide(StoreMetrics.layer)
)

/** `engineLayer` with these settings (the rest default; `EngineConfig.layerConfig` reads the environment). */
export const engine = (
  settings: Partial<EngineConfig.EngineSettings> = {}
): Layer.Layer<GroupCommit.GroupCommit | Election.Election, Layer.Layer.Error<typeof Election.layer>, ObjectStore> =>
  engineLayer.pipe(Layer.provide(EngineConfig.layer(settings)))
