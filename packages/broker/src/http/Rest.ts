/**
 * What of REST the Effect app serves: the OpenAPI document of `OsqueueApi` at `/v1/openapi.json`
 * and a docs page at `/docs` (Swagger UI, bundled: no CDN). The API's routes themselves are the
 * edge's (`Edge`, `RestRoutes`); they are added here too, so that `RouteTable` knows their
 * methods (404, 405, OPTIONS), and answer what alone reaches the app on them: a WebSocket upgrade.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiSwagger from "@effect/platform/HttpApiSwagger"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OpenApi from "@effect/platform/OpenApi"
import { InvalidRequest, OsqueueApi, OsqueueError } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { rpcPaths } from "./Rpc.js"

export const restPaths = { openapi: "/v1/openapi.json", docs: "/docs" } as const

const notAnUpgrade = new InvalidRequest({
  message: `the REST routes take no Upgrade: send the request without it (WebSockets are at ${rpcPaths.websocket})`
})

const Routes = HttpLayerRouter.use((router) =>
  Effect.gen(function*() {
    const document = OpenApi.fromApi(OsqueueApi)
    yield* router.add("GET", restPaths.openapi, Effect.sync(() => HttpServerResponse.unsafeJson(document)))
    const refusal = HttpServerResponse.unsafeJson(Schema.encodeSync(OsqueueError)(notAnUpgrade), { status: 400 })
    const endpoints: Array<{ readonly method: Exclude<HttpLayerRouter.Route["method"], "HEAD">; readonly path: string }> = []
    HttpApi.reflect(OsqueueApi, {
      onGroup: () => {},
      onEndpoint: ({ endpoint }) => void endpoints.push({ method: endpoint.method as Exclude<HttpLayerRouter.Route["method"], "HEAD">, path: endpoint.path })
    })
    for (const { method, path } of endpoints) {
      yield* router.add(method, path as HttpLayerRouter.PathInput, Effect.succeed(refusal))
    }
  })
)

const DocsRoute = HttpApiSwagger.layerHttpLayerRouter({ api: OsqueueApi, path: restPaths.docs })

export const layer = Layer.mergeAll(Routes, DocsRoute)
