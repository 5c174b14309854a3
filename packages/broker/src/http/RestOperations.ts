/**
 * The operation (`Roles.Operation`) of a REST request, by method and path: each `OsqueueApi` endpoint is
 * the operation of its name (`POST /v1/jobs/batch` is `EnqueueMany`, and so is
 * `POST /queues/<name>/v1/jobs/batch`), and the operator routes
 * `/metrics` and `/state` are `Metrics` and `State` (`Roles`). Read from the API itself, so a new endpoint
 * cannot go unchecked: one without an operation stops the broker at startup.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import { OsqueueApi, QueueNames, Roles } from "@osqueue/types"
import { operatorPaths } from "./OperatorRoutes.js"

/** The operation of `method` on `url` (path and query, as in the request line); none for a path that is no operation. */
export type OperationOf = (method: string, url: string) => Roles.Operation | undefined

export const make = (): OperationOf => {
  const table = HttpLayerRouter.FindMyWay.make<Roles.Operation>({})
  HttpApi.reflect(OsqueueApi, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => {
      const operation = Roles.ofEndpoint(endpoint.name)
      if (operation === undefined) throw new Error(`the endpoint ${endpoint.name} is no operation Roles knows`)
      table.on(endpoint.method, endpoint.path, operation)
      table.on(endpoint.method, `${QueueNames.restPrefixPattern}${endpoint.path}`, operation)
    }
  })
  table.on("GET", operatorPaths.metrics, "Metrics")
  table.on("GET", operatorPaths.state, "State")
  // HEAD is answered by the GET route.
  return (method, url) => table.find(method === "HEAD" ? "GET" : method, url)?.handler
}
