/**
 * Which methods each path of the broker answers, so that a request the router would not match is
 * answered 404 (`NoSuchRoute`) or 405 (`MethodNotAllowed` with `Allow`) by `HttpGate`, not with
 * the platform's empty 404. The router keeps its table to itself, so the routes are recorded as
 * they are added: `layer` provides an `HttpRouter` that notes each route and passes it on to the
 * real one. Every route the broker serves is added through it, so the table cannot drift from the
 * routes.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export interface RouteTableShape {
  /** The methods `url` (path and query, as in the request line) is served by; empty when none. HEAD goes with GET. */
  readonly allowed: (url: string) => ReadonlyArray<string>
}

export class RouteTable extends Context.Tag("@osqueue/broker/RouteTable")<RouteTable, RouteTableShape>() {}

/** The methods a route may be added for (`HttpRouter.add`'s), in the order `Allow` lists them. */
const routeMethods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const

const recording = (
  router: HttpLayerRouter.HttpRouter,
  note: (method: string, path: HttpLayerRouter.PathInput) => void,
  prefix: string | undefined
): HttpLayerRouter.HttpRouter => {
  const at = (path: HttpLayerRouter.PathInput) =>
    (prefix === undefined ? path : HttpLayerRouter.prefixPath(path, prefix)) as HttpLayerRouter.PathInput
  return HttpLayerRouter.HttpRouter.of({
    ...router,
    prefixed: (more) =>
      recording(router.prefixed(more), note, prefix === undefined ? more : HttpLayerRouter.prefixPath(more, prefix)),
    add: (method, path, handler, options) =>
      Effect.zipRight(Effect.sync(() => note(method, at(path))), router.add(method, path, handler, options)),
    addAll: (routes) =>
      Effect.zipRight(
        Effect.sync(() => routes.forEach((route) => note(route.method, at(route.path)))),
        router.addAll(routes)
      )
  })
}

/** An `HttpRouter` over the one provided, with the `RouteTable` of the routes added through it. */
export const layer: Layer.Layer<HttpLayerRouter.HttpRouter | RouteTable, never, HttpLayerRouter.HttpRouter> = Layer
  .effectContext(
    Effect.gen(function*() {
      const router = yield* HttpLayerRouter.HttpRouter
      // The same matching rules as the router's own (find-my-way, same configuration).
      const table = HttpLayerRouter.FindMyWay.make<true>(yield* HttpLayerRouter.RouterConfig)
      const noted = new Set<string>()
      const note = (method: string, path: HttpLayerRouter.PathInput) => {
        for (const one of method === "*" ? routeMethods : [method]) {
          if (noted.has(`${one} ${path}`)) continue
          noted.add(`${one} ${path}`)
          table.on(one, path, true)
        }
      }
      // The router answers HEAD with the GET route when there is no HEAD one.
      const serves = (method: string, url: string) =>
        table.find(method, url) !== undefined || (method === "HEAD" && table.find("GET", url) !== undefined)
      const allowed = (url: string) => routeMethods.filter((method) => serves(method, url))
      return Context.make(HttpLayerRouter.HttpRouter, recording(router, note, undefined)).pipe(
        Context.add(RouteTable, { allowed })
      )
    })
  )
