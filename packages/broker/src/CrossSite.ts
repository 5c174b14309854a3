/**
 * Requests from web pages of other sites. A page anywhere can make its visitor's browser open a
 * WebSocket to the broker, or send it a POST that needs no CORS preflight (a form's content
 * types); the browser adds an `Origin` header naming the page's site. The broker lets through
 * requests without `Origin` (non-browser clients), from its own origin (the dashboard it serves,
 * or a dev server proxying to it under the same `Host`) and from the origins of
 * `BrokerConfig.allowedOrigins` (`*`: any), which also get CORS answers so their pages may read
 * them; mutations and WebSocket upgrades from any other origin are refused (403 `Forbidden`).
 * Bodies must also be sent as JSON (`HttpChecks.bodyTypeProblem`), which no form can do.
 */
import { Forbidden } from "@osqueue/types"

export type Verdict =
  /** No `Origin`, or the broker's own. */
  | { readonly _tag: "Own" }
  /** An origin the settings allow: the answer carries CORS headers for it. */
  | { readonly _tag: "Allowed"; readonly origin: string }
  | { readonly _tag: "Refused"; readonly error: Forbidden }

const own: Verdict = { _tag: "Own" }

/** The host (and port, when not the default) `origin` names, or undefined when it is not an http(s) origin. */
const hostOf = (origin: string): string | undefined => {
  try {
    const url = new URL(origin)
    return url.protocol === "http:" || url.protocol === "https:" ? url.host : undefined
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
    if (host !== undefined && hostOf(origin) === host.toLowerCase()) return own
    if (any || listed.has(origin)) return { _tag: "Allowed", origin }
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
