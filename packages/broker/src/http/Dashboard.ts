/**
 * The dashboard's static files (the build of `apps/web`) at `/`, from the directory in
 * `BrokerConfig.dashboardDir`. They hold no data (the page asks for everything over RPC with
 * the token it is given), so they are served without the token. Asset names carry a content
 * hash, so they are cached for good; `index.html` is revalidated on every load. An asset the
 * build also wrote compressed (`<name>.br`, `<name>.gz`) is sent so to a browser that accepts it;
 * source maps are never served (they would publish the sources).
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpPlatform from "@effect/platform/HttpPlatform"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { NoSuchRoute } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { existsSync } from "node:fs"
import { extname, join } from "node:path"
import { BrokerConfig } from "../BrokerConfig.js"

export const dashboardPaths = { index: "/", assets: "/assets/" } as const

/** The dashboard's own paths: reachable without the token. */
export const isDashboardPath = (pathname: string): boolean =>
  pathname === dashboardPaths.index || pathname.startsWith(dashboardPaths.assets)

/** A built asset's name: no separators, no dot-dot, so a request cannot leave the directory; no source map. */
const assetName = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/
const isServable = (name: string) => assetName.test(name) && !name.endsWith(".map")

/** Types of the assets a build compresses (the file's own type, not its `.br` copy's). */
const compressedTypes: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  json: "application/json"
}

/** The encodings `accept-encoding` takes, best first: brotli, then gzip (`;q=0` refuses one). */
export const acceptedEncodings = (header: string | undefined): ReadonlyArray<"br" | "gzip"> => {
  const accepted = new Set<string>()
  for (const part of (header ?? "").toLowerCase().split(",")) {
    const [coding = "", ...params] = part.split(";").map((piece) => piece.trim())
    const q = params.find((param) => param.startsWith("q="))
    if (q === undefined || Number(q.slice(2)) > 0) accepted.add(coding)
  }
  return (["br", "gzip"] as const).filter((coding) => accepted.has(coding))
}

const suffix = { br: ".br", gzip: ".gz" } as const

const page = (status: number, title: string, body: string) =>
  HttpServerResponse.text(
    `<!doctype html><meta charset="utf-8"><title>osqueue: ${title}</title>` +
      `<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;line-height:1.5">` +
      `<h1>${title}</h1>${body}<p>The API is up: <a href="/docs">/docs</a>, <a href="/v1/stats">/v1/stats</a>.</p></body>`,
    { status, contentType: "text/html; charset=utf-8", headers: { "cache-control": "no-store" } }
  )

const notConfigured = page(
  404,
  "No dashboard on this broker",
  "<p>This broker was started without a dashboard directory. <code>osqueue broker</code> and " +
    "<code>osqueue demo</code> serve the build of <code>apps/web</code>; elsewhere set " +
    "<code>OSQUEUE_DASHBOARD_DIR</code> to a built dashboard.</p>"
)

const notBuilt = (directory: string) =>
  page(
    503,
    "The dashboard is not built",
    `<p>There is no <code>index.html</code> in <code>${directory.replace(/[<>&]/g, "")}</code>. ` +
      "Build it with <code>pnpm --filter @osqueue/web build</code> (<code>npm start</code> does), then reload.</p>"
  )

/** A file the dashboard does not have: the same answer as any path nothing serves. */
const notFound = (path: string) =>
  HttpServerResponse.unsafeJson(
    Schema.encodeSync(NoSuchRoute)(new NoSuchRoute({ method: "GET", path: path.slice(0, 200) })),
    {
      status: 404
    }
  )

export const layer: Layer.Layer<never, never, HttpLayerRouter.HttpRouter | HttpPlatform.HttpPlatform> = HttpLayerRouter
  .use((router) =>
    Effect.gen(function*() {
      const config = yield* BrokerConfig
      const directory = config.dashboardDir
      const platform = yield* HttpPlatform.HttpPlatform

      const serve = (file: string, cacheControl: string, acceptEncoding?: string) =>
        Option.match(directory, {
          onNone: () => Effect.succeed(notConfigured),
          onSome: (dir) => {
            const path = join(dir, file)
            if (!existsSync(path)) return Effect.succeed(file === "index.html" ? notBuilt(dir) : notFound(`/${file}`))
            const type = compressedTypes[extname(file).slice(1)]
            const encoding = type === undefined
              ? undefined
              : acceptedEncodings(acceptEncoding).find((coding) => existsSync(`${path}${suffix[coding]}`))
            const headers = encoding === undefined
              ? { "cache-control": cacheControl, ...(type === undefined ? {} : { vary: "accept-encoding" }) }
              : {
                "cache-control": cacheControl,
                vary: "accept-encoding",
                "content-encoding": encoding,
                "content-type": type!
              }
            return HttpServerResponse.file(encoding === undefined ? path : `${path}${suffix[encoding]}`, { headers })
              .pipe(
                Effect.provideService(HttpPlatform.HttpPlatform, platform),
                Effect.orElseSucceed(() => notFound(`/${file}`))
              )
          }
        })

      yield* router.add("GET", dashboardPaths.index, serve("index.html", "no-cache"))
      yield* router.add(
        "GET",
        `${dashboardPaths.assets}*`,
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
          const name = new URL(request.url, "http://broker").pathname.slice(dashboardPaths.assets.length)
          return isServable(name)
            ? serve(join("assets", name), "public, max-age=31536000, immutable", request.headers["accept-encoding"])
            : Effect.succeed(notFound(`${dashboardPaths.assets}${name}`))
        })
      )
    })
  )
