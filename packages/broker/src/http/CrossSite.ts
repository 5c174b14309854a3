/**
 * Requests from web pages of other sites. A page anywhere can make its visitor's browser open a
 * WebSocket to the broker, or send it a POST that needs no CORS preflight (a form's content
 * types); the browser adds an `Origin` header naming the page's site. The broker lets through
 * requests without `Origin` (non-browser clients), from its own origin (the dashboard it serves,
 * or a dev server proxying to it under the same `Host`), from its host's other ports (another
 * broker on the same machine: a dashboard opened on a follower sends its mutations and its watch
 * to the leader) and from the origins of `BrokerConfig.allowedOrigins` (`*`: any; brokers on other
 * machines list each other there for the same reason). All but its own origin get CORS answers,
 * so their pages may read them. Mutations and WebSocket upgrades from any other origin are
 * refused (403 `Forbidden`). Bodies must also be sent as JSON (`HttpChecks.bodyTypeProblem`),
 * which no form can do.
 */
import { Forbidden } from "@osqueue/types"

export type Verdict =
  /** No `Origin`, or the broker's own. */
  | { readonly _tag: "Own" }
  /** Another origin of the broker's host, or one the settings allow: the answer carries CORS headers for it. */
  | { readonly _tag: "Allowed"; readonly origin: string }
  | { readonly _tag: "Refused"; readonly error: Forbidden }

const own: Verdict = { _tag: "Own" }

/** An http(s) URL, or undefined when `text` is not one. */
const httpUrl = (text: string): URL | undefined => {
  try {
    const url = new URL(text)
    return url.protocol === "http:" || url.protocol === "https:" ? url : undefined
  } catch {
    return undefined
  }
}

/** How requests from `origin` (the request's `Origin` header) to a broker reached at `host` (its `Host` header) are treated. */
export const judge = (allowedOrigins: ReadonlyArray<string>) => {
  const any = allowedOrigins.includes("*")
  const listed = new Set(allowedOrigins)
  return (origin: string | undefined, host: string | undefined): Verdict => {
    if (origin === undefined) return own
    const from = httpUrl(origin)
    const to = host === undefined ? undefined : httpUrl(`http://${host}`)
    if (from !== undefined && to !== undefined && from.host === to.host) return own
    // Another port of the broker's host is another origin to the browser: it gets CORS answers.
    if (any || listed.has(origin) || (from !== undefined && from.hostname === to?.hostname)) {
      return { _tag: "Allowed", origin }
    }
    return {
      _tag: "Refused",
      error: new Forbidden({
        reason: `requests from the web origin ${origin.slice(0, 200)} are not allowed; ` +
          "list it in OSQUEUE_ALLOWED_ORIGINS (comma-separated, * for any) to allow them"
      })
    }
  }
}

/** The headers that let a page of an allowed origin read an answer. */
export const corsHeaders = (origin: string): Record<string, string> => ({
  "access-control-allow-origin": origin,
  "access-control-expose-headers": "allow, retry-after, www-authenticate",
  vary: "origin"
})

/**
 * The answer to a CORS preflight from an allowed origin: the path's methods, and the headers the
 * page asked to send (the origin is trusted: what it sends is checked like any client's).
 */
export const preflightHeaders = (
  origin: string,
  methods: ReadonlyArray<string>,
  requestedHeaders: string | undefined
): Record<string, string> => ({
  ...corsHeaders(origin),
  "access-control-allow-methods": methods.join(", "),
  "access-control-allow-headers": requestedHeaders ?? "authorization, content-type",
  "access-control-max-age": "600"
})
