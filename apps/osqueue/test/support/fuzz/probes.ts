/**
 * A probe is one request of the fuzz suite, as data: what to send (templates, see `templates.ts`)
 * and what the broker may answer (`Expect`). Generated probes and hand-written hostile cases are
 * both sent and judged through this one shape.
 */
import type { Encoding } from "./templates.js"

export type Transport = "rest" | "rpc-http" | "rpc-ws"

/** What kind of target the request hit, which decides what answers are acceptable. */
export type RouteKind =
  /** An operation (`/v1/…` with its method, `/rpc`, `/rpc/ws`): 2xx, or 4xx with a tagged JSON error. */
  | "operation"
  /** Operator and public routes (`/healthz`, `/metrics`, `/docs`, the dashboard …): anything but 5xx. */
  | "ops"
  /** A known path with a method it does not serve: 405 with `Allow` naming the ones it does. */
  | "wrong-method"
  /** A path nothing serves: any 4xx. */
  | "unknown"

export interface Expect {
  readonly route: RouteKind
  /** For `wrong-method`: the methods the path serves. */
  readonly allow?: ReadonlyArray<string>
  /** False when the request carries wrong or no credentials (it matters only on a broker with a token). */
  readonly credentialsRight: boolean
  /** RPC request ids that must each get one `Exit`. */
  readonly rpcIds: ReadonlyArray<string>
  /** The body has a message whose id cannot be read: it must get an `Exit` for request `-1`. */
  readonly unreadable: boolean
  /** The frames break the WebSocket protocol itself: the broker may close the connection instead of answering. */
  readonly mayClose: boolean
  /** Time the request asked the broker to wait (a claim's `waitMs`), added to the latency budget. */
  readonly waitMs: number
  /** Requests the probe interrupts itself: an Interrupt is their due answer. */
  readonly interrupted?: ReadonlyArray<string>
  /** A mutation the broker must refuse (4xx), never run. */
  readonly mustRefuse?: boolean
}

export const defaultExpect: Expect = {
  route: "operation",
  credentialsRight: true,
  rpcIds: [],
  unreadable: false,
  mayClose: false,
  waitMs: 0
}

export interface HttpProbe {
  readonly transport: "rest" | "rpc-http"
  readonly method: string
  /** A template (markers URL-encoded when rendered). */
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  /** A template; absent: no body. */
  readonly body?: string
  readonly encoding: Encoding
  readonly expect: Expect
}

export interface WsFrameSpec {
  readonly opcode: number
  /** A template. */
  readonly text: string
  readonly encoding: Encoding
  readonly fin?: boolean
  readonly rsv?: number
  readonly unmasked?: boolean
}

export interface WsProbe {
  readonly transport: "rpc-ws"
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly frames: ReadonlyArray<WsFrameSpec>
  readonly expect: Expect
}

export type Probe = HttpProbe | WsProbe

/** A probe with what it tries, for the failure report. */
export interface Named<A> {
  readonly what: string
  readonly probe: A
  /** The REST endpoints and RPC operations it names (for the coverage check). */
  readonly covers?: ReadonlyArray<string>
}
