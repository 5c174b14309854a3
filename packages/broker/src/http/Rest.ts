/**
 * What of REST the Effect app serves: the OpenAPI document of `OsqueueApi` at `/v1/openapi.json`
 * and a docs page at `/docs` (Swagger UI, bundled: no CDN). The API's routes themselves are the
 * edge's (`Edge`, `RestRoutes`); they are added here too, so that `RouteTable` knows their
 * methods (404, 405, OPTIONS), and answer what alone reaches the app on them: a WebSocket upgrade.
 * Every route is also served under `/queues/{queue}` for a named queue, and so described.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiSwagger from "@effect/platform/HttpApiSwagger"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OpenApi from "@effect/platform/OpenApi"
import { InvalidRequest, OsqueueApi, OsqueueError, QueueNames } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { rpcPaths } from "./Rpc.js"

export const restPaths = { openapi: "/v1/openapi.json", docs: "/docs" } as const

const notAnUpgrade = new InvalidRequest({
  message: `the REST routes take no Upgrade: send the request without it (WebSockets are at ${rpcPaths.websocket})`
})

const methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const

/**
 * The document with each path also under `/queues/{queue}` (the route of a named queue): the
 * same operations, each with the `queue` path parameter and an operation id of its own.
 */
export const withQueuePaths = (document: OpenApi.OpenAPISpec): OpenApi.OpenAPISpec => {
  const queueParameter = {
    name: "queue",
    in: "path",
    required: true,
    description:
      `The queue (OSQUEUE_QUEUES); the same route without this prefix is the "${QueueNames.defaultQueue}" queue's`,
    schema: { type: "string", pattern: QueueNames.queueNamePattern.source }
  }
  const paths: Record<string, unknown> = { ...document.paths }
  for (const [path, item] of Object.entries(document.paths)) {
    const copy: Record<string, unknown> = JSON.parse(JSON.stringify(item))
    for (const method of methods) {
      const operation = copy[method] as { operationId?: string; parameters?: Array<unknown> } | undefined
      if (operation === undefined) continue
      operation.parameters = [queueParameter, ...(operation.parameters ?? [])]
      if (operation.operationId !== undefined) operation.operationId = `queues.${operation.operationId}`
    }
    paths[`/queues/{queue}${path}`] = copy
  }
  return { ...document, paths } as OpenApi.OpenAPISpec
}

const Routes = HttpLayerRouter.use((router) =>
  Effect.gen(function*() {
    const document = withQueuePaths(OpenApi.fromApi(OsqueueApi))
    yield* router.add("GET", restPaths.openapi, Effect.sync(() => HttpServerResponse.unsafeJson(document)))
    const refusal = HttpServerResponse.unsafeJson(Schema.encodeSync(OsqueueError)(notAnUpgrade), { status: 400 })
    const endpoints: Array<
      { readonly method: Exclude<HttpLayerRouter.Route["method"], "HEAD">; readonly path: string }
    > = []
    HttpApi.reflect(OsqueueApi, {
      onGroup: () => {},
      onEndpoint: ({ endpoint }) =>
        void endpoints.push({
          method: endpoint.method as Exclude<HttpLayerRouter.Route["method"], "HEAD">,
          path: endpoint.path
        })
    })
    for (const { method, path } of endpoints) {
      yield* router.add(method, path as HttpLayerRouter.PathInput, Effect.succeed(refusal))
      yield* router.add(
        method,
        `${QueueNames.restPrefixPattern}${path}` as HttpLayerRouter.PathInput,
        Effect.succeed(refusal)
      )
    }
  })
)

const DocsRoute = HttpApiSwagger.layerHttpLayerRouter({ api: OsqueueApi, path: restPaths.docs })

export const layer = Layer.mergeAll(Routes, DocsRoute)
