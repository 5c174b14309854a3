/**
 * Generated probes: valid requests drawn from the request schemas themselves (`Arbitrary.make`
 * over `OsqueueRpcs` payloads and `OsqueueApi` endpoints), then broken on purpose — a field of the
 * wrong type, extreme numbers, huge strings, deep nesting, fields nobody knows, bad encodings and
 * syntax, bad credentials, bad lease tokens, odd methods, paths and headers — and sent over REST,
 * RPC over HTTP (ndjson) and RPC over WebSocket. Probe `i` of seed `s` is a pure function of
 * `(s, i)` and the ids the setup created, so any one can be sent again alone.
 */
import { OsqueueApi, OsqueueRpcs } from "@osqueue/types"
import { Arbitrary, FastCheck as fc, Option, Schema, SchemaAST } from "effect"
import * as http from "node:http"
import type { Expect, HttpProbe, Named, Probe, WsFrameSpec, WsProbe } from "./probes.js"
import { defaultExpect } from "./probes.js"
import { type Encoding, marker, utf8 } from "./templates.js"
import { opcodes } from "./wire.js"

// ---------------------------------------------------------------------------------------------
// Schemas → arbitraries

/**
 * `ast` with every declaration that has a surrogate (`EnqueueOptionsOnWire`, a hand-written guard
 * over `EnqueueOptions`) replaced by it: `Arbitrary.make` cannot draw from a declaration.
 */
const withSurrogates = (ast: SchemaAST.AST): SchemaAST.AST => {
  switch (ast._tag) {
    case "Declaration":
      return Option.match(SchemaAST.getSurrogateAnnotation(ast), { onNone: () => ast, onSome: withSurrogates })
    case "Refinement":
      return new SchemaAST.Refinement(withSurrogates(ast.from), ast.filter, ast.annotations)
    case "Transformation":
      return new SchemaAST.Transformation(
        withSurrogates(ast.from),
        withSurrogates(ast.to),
        ast.transformation,
        ast.annotations
      )
    case "Union":
      return SchemaAST.Union.make(ast.types.map(withSurrogates), ast.annotations)
    case "TupleType":
      return new SchemaAST.TupleType(
        ast.elements.map((e) => new SchemaAST.OptionalType(withSurrogates(e.type), e.isOptional, e.annotations)),
        ast.rest.map((r) => new SchemaAST.Type(withSurrogates(r.type), r.annotations)),
        ast.isReadonly,
        ast.annotations
      )
    case "TypeLiteral":
      return new SchemaAST.TypeLiteral(
        ast.propertySignatures.map((p) =>
          new SchemaAST.PropertySignature(p.name, withSurrogates(p.type), p.isOptional, p.isReadonly, p.annotations)
        ),
        ast.indexSignatures,
        ast.annotations
      )
    default:
      return ast
  }
}

const drawn = new Map<Schema.Schema.Any, fc.Arbitrary<unknown>>()

/** Values of `schema`, encoded as they travel (the JSON a client sends); made once per schema (it is slow). */
const encodedValues = (schema: Schema.Schema.Any): fc.Arbitrary<unknown> => {
  let values = drawn.get(schema)
  if (values === undefined) {
    const drawable = Schema.make<unknown, unknown, never>(withSurrogates(schema.ast))
    const encode = Schema.encodeSync(drawable)
    values = Arbitrary.make(drawable).map((value) => JSON.parse(JSON.stringify(encode(value) ?? null)) as unknown)
    drawn.set(schema, values)
  }
  return values
}

// ---------------------------------------------------------------------------------------------
// What the setup made: ids the probes may name, and those they must not touch.

export interface Pools {
  /** Jobs made for the fuzz to act on. */
  readonly fuzzIds: ReadonlyArray<string>
  /** Jobs that must come out of the fuzz unchanged: never named by a probe. */
  readonly isSentinel: (id: string) => boolean
  /** The broker's token, when it has one. */
  readonly token: string | undefined
  /** Tokens with roles (`OSQUEUE_TOKENS`), by role: they are let in, and may be refused an operation (403). */
  readonly roleTokens?: Readonly<Record<string, string>>
}

// ---------------------------------------------------------------------------------------------
// The operations, over each transport

interface Route {
  readonly name: string
  readonly method: string
  /** `/v1/jobs/:id/complete` */
  readonly path: string
  readonly payload: Schema.Schema.Any | undefined
  readonly urlParams: Schema.Schema.Any | undefined
}

/** Every endpoint of `OsqueueApi`, read from the API itself. */
const routes: ReadonlyArray<Route> = Object.values(OsqueueApi.groups).flatMap((group) =>
  Object.values(group.endpoints).map((endpoint) => ({
    name: endpoint.name,
    method: endpoint.method,
    path: endpoint.path,
    payload: Option.getOrUndefined(endpoint.payloadSchema) as Schema.Schema.Any | undefined,
    urlParams: Option.getOrUndefined(endpoint.urlParamsSchema) as Schema.Schema.Any | undefined
  }))
)

/** The methods each REST path serves. */
/** Whether a route's path (`/v1/jobs/:id`) names a concrete one (`/v1/jobs/claim` is also a job id). */
const pathMatches = (template: string, path: string): boolean => {
  const want = template.split("/")
  const got = path.split("/")
  return want.length === got.length && want.every((segment, i) => segment.startsWith(":") || segment === got[i])
}
const methodsByPath = new Map<string, Array<string>>()
for (const route of routes) {
  const served = routes.filter((other) => pathMatches(other.path, route.path)).map((other) => other.method)
  methodsByPath.set(route.path, [...new Set(served)])
}

/** Routes outside the API: operators', public ones and the dashboard. */
const opsPaths: ReadonlyArray<string> = [
  "/healthz",
  "/readyz",
  "/metrics",
  "/state",
  "/docs",
  "/v1/openapi.json",
  "/",
  "/assets/index.js",
  "/assets/../../../../etc/passwd",
  "/favicon.ico"
]

/** Paths served without a token. */
const publicPaths: ReadonlySet<string> = new Set(["/healthz", "/readyz", "/docs", "/v1/openapi.json"])

/** RPC operations a probe may name (`Watch` streams forever; the hostile cases cover it). */
const rpcs = Array.from(OsqueueRpcs.requests.values()).filter((rpc) => rpc._tag !== "Watch")

// ---------------------------------------------------------------------------------------------
// Valid requests, with ids and tokens that reach real jobs

const nat = fc.nat()

/** A job id: mostly one of the fuzz's jobs, sometimes one that does not exist; never a sentinel. */
const jobIdOf = (pools: Pools): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...pools.fuzzIds) },
    { weight: 1, arbitrary: fc.constantFrom("job-999999999", "job-0", "job--1", "JOB-1", "job-1 ", "💥") },
    { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 128 }) }
  ).map((id) => (pools.isSentinel(id) ? "job-999999999" : id))

/** A lease token: a live one (from claims), one forged for a real job, or any that fits the pattern. */
const leaseTokenOf = (pools: Pools): fc.Arbitrary<{ token: string; jobId: string }> =>
  fc.oneof(
    { weight: 5, arbitrary: nat.map((n) => ({ token: marker("lease", n), jobId: marker("leaseJob", n) })) },
    {
      weight: 2,
      arbitrary: fc.tuple(
        fc.constantFrom(...pools.fuzzIds),
        fc.nat(9),
        fc.nat(9),
        fc.stringMatching(/^[A-Za-z0-9_-]{22}$/),
        fc.boolean()
      )
        .map(([id, claims, epoch, secret, legacy]) => ({
          token: legacy ? `${id}/${claims}/${epoch}` : `${id}/${claims}/${epoch}/${secret}`,
          jobId: id
        }))
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 80 }).map((token) => ({ token, jobId: "job-1" })) }
  ).map((lease) => (pools.isSentinel(lease.jobId) ? { token: "job-999999999/1/1", jobId: "job-999999999" } : lease))

/** A job type: mostly the fuzz's own, so claims find work. */
const jobType = fc.oneof(
  { weight: 4, arbitrary: fc.constant("fuzz") },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "fuzz ", "FUZZ", "🙂", "a".repeat(200)) }
)

type Fields = Record<string, unknown>
const isFields = (u: unknown): u is Fields => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * A drawn payload made to reach real state: ids, tokens and types from the pools (a claim's, and
 * a completion's that claims next); a claim's long poll kept short (its wait counts in its latency budget, and the run must end).
 */
const aimed = (pools: Pools) =>
  fc.record({
    id: jobIdOf(pools),
    lease: leaseTokenOf(pools),
    types: fc.array(jobType, { maxLength: 3 }),
    type: jobType,
    waitMs: fc.nat(300),
    items: fc.array(leaseTokenOf(pools), { minLength: 1, maxLength: 4 })
  })

type Aim = typeof aimed extends (p: Pools) => fc.Arbitrary<infer A> ? A : never

const aim = (tag: string, payload: unknown, a: Aim): { payload: unknown; pathId: string } => {
  if (!isFields(payload)) return { payload, pathId: a.id }
  const p: Fields = { ...payload }
  let pathId = a.id
  if ("id" in p) p.id = a.id
  if ("token" in p) {
    p.token = a.lease.token
    pathId = a.lease.jobId
  }
  if (tag === "Claim" || tag === "claim" || tag === "CompleteAndClaim" || tag === "completeAndClaim") {
    if ("waitMs" in p) p.waitMs = a.waitMs
    if ("types" in p) p.types = a.types
  }
  if ((tag === "Enqueue" || tag === "enqueue") && "type" in p) p.type = a.type
  // A purge empties a state of every type unless it names one: aimed at the states no sentinel
  // is in, whatever a mutation then drops (a breakage cannot name another state).
  if (tag === "Purge" || tag === "purge") {
    p.state = a.type.length % 2 === 0 ? "queued" : "dead"
    p.type = a.type
  }
  if (Array.isArray(p.items)) p.items = a.items.map((lease) => ({ token: lease.token }))
  if (Array.isArray(p.jobs)) p.jobs = p.jobs.map((job: unknown) => (isFields(job) ? { ...job, type: a.type } : job))
  return { payload: p, pathId }
}

// ---------------------------------------------------------------------------------------------
// Breaking a valid request

/** Every node of a JSON value, by path (the root is `[]`). */
const nodes = (value: unknown): Array<ReadonlyArray<string | number>> => {
  const out: Array<ReadonlyArray<string | number>> = []
  const walk = (u: unknown, path: ReadonlyArray<string | number>, depth: number) => {
    out.push(path)
    if (depth > 8) return
    if (Array.isArray(u)) u.forEach((v, i) => walk(v, [...path, i], depth + 1))
    else if (isFields(u)) { for (const [k, v] of Object.entries(u)) walk(v, [...path, k], depth + 1) }
  }
  walk(value, [], 0)
  return out
}

/** `value` with the node at `path` replaced (`undefined` deletes it); the root replaced is `replacement`. */
const replaceAt = (value: unknown, path: ReadonlyArray<string | number>, replacement: unknown): unknown => {
  if (path.length === 0) return replacement
  const [head, ...rest] = path
  if (Array.isArray(value)) {
    const copy = [...value]
    if (rest.length === 0 && replacement === undefined) copy.splice(head as number, 1)
    else copy[head as number] = replaceAt(copy[head as number], rest, replacement)
    return copy
  }
  if (isFields(value)) {
    const copy: Fields = {}
    for (const [k, v] of Object.entries(value)) {
      if (k !== head) copy[k] = v
      else if (!(rest.length === 0 && replacement === undefined)) copy[k] = replaceAt(v, rest, replacement)
    }
    return copy
  }
  return value
}

const wrongTypes: ReadonlyArray<unknown> = [null, true, false, 0, -1, 1.5, "", "x", "1", [], {}, [null], { a: 1 }]

/** Numbers at and past every bound; `raw` ones are written as they are (JSON.stringify cannot). */
const extremeNumbers: ReadonlyArray<unknown> = [
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
  -Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER - 2,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  Number.MIN_VALUE,
  2 ** 31,
  -(2 ** 31),
  2 ** 32,
  2 ** 63,
  -(2 ** 63),
  1e21,
  0.1,
  -1,
  -0.5,
  8_640_000_000_000_001,
  316_224_000_001,
  3_600_001,
  marker("raw", "1e400"),
  marker("raw", "-1e400"),
  marker("raw", "123456789012345678901234567890"),
  marker("raw", "-0"),
  marker("raw", "1E+2"),
  marker("raw", "0.0000000000000000000000000000001"),
  marker("raw", "1.0")
]

const hugeSizes = [1_000, 20_000, 300_000, 2_100_000]
const depths = [16, 62, 63, 64, 65, 1_000, 100_000]

const excessKeys = [
  "typ",
  "__proto__",
  "constructor",
  "prototype",
  "_tag",
  "toString",
  "hasOwnProperty",
  "",
  "type ",
  "payload\u0000"
]

/** Strings JSON allows but that trip decoders: lone surrogates, NUL, BOM, bidi, long combining runs. */
const oddStrings: ReadonlyArray<string> = [
  marker("raw", "\"\\ud800\""),
  marker("raw", "\"\\udfff\\ud800\""),
  marker("raw", "\"\\u0000\""),
  "\u0000",
  "\ufeff",
  "\u202e",
  "e\u0301".repeat(500),
  "%00",
  "../../etc/passwd",
  "<script>alert(1)</script>",
  "${jndi:ldap://x}",
  "'; DROP TABLE jobs; --"
]

/** Whole bodies that are not the JSON a route wants. */
const oddBodies: ReadonlyArray<string> = [
  "",
  " ",
  "\n",
  "null",
  "[]",
  "\"x\"",
  "1",
  "true",
  "{",
  "}",
  "{}}",
  "{\"type\":\"x\",}",
  "{'type':'x'}",
  "{\"type\":\"x\"} // comment",
  "NaN",
  "\u0000",
  "{\"type\":\"x\"}{\"type\":\"y\"}",
  "{\"type\":\"x\"}\n{\"type\":\"y\"}",
  "type=x&payload=1",
  "{\"type\":\"\\x41\"}",
  "{\"type\":\"\\u12\"}",
  "{\"type\":\"a\tb\nc\"}"
]

const badBytes: ReadonlyArray<ReadonlyArray<number>> = [
  [0xff],
  [0xc3, 0x28],
  [0xc0, 0xaf],
  [0x80],
  [0xed, 0xa0, 0x80],
  [0x00],
  [0xf4, 0x90, 0x80, 0x80],
  [0xfe, 0xff]
]

export type Mutation = { readonly what: string; readonly body: string; readonly encoding: Encoding }

const mutationKinds = [
  "wrongType",
  "extremeNumber",
  "hugeString",
  "deep",
  "excessField",
  "dropField",
  "oddString",
  "oddBody",
  "truncate",
  "encoding",
  "duplicateKey"
] as const

const mutation = fc.record({
  kind: fc.constantFrom(...mutationKinds),
  pick: nat,
  variant: nat,
  at: fc.double({ min: 0, max: 1, noNaN: true })
})

/** `value` broken one way; the result is a body template with its encoding and what was done. */
const mutate = (value: unknown, m: typeof mutation extends fc.Arbitrary<infer A> ? A : never): Mutation => {
  const all = nodes(value)
  const path = all[m.pick % all.length]!
  const at = path.length === 0 ? "the body" : path.join(".")
  const pickOf = <A>(list: ReadonlyArray<A>): A => list[m.variant % list.length]!
  const replaced = (replacement: unknown, what: string): Mutation => ({
    what,
    body: JSON.stringify(replaceAt(value, path, replacement)),
    encoding: utf8
  })
  switch (m.kind) {
    case "wrongType": {
      const replacement = pickOf(wrongTypes)
      return replaced(replacement, `${at} replaced by ${JSON.stringify(replacement)}`)
    }
    case "extremeNumber": {
      const replacement = pickOf(extremeNumbers)
      return replaced(replacement, `${at} replaced by the number ${String(replacement)}`)
    }
    case "hugeString": {
      const size = pickOf(hugeSizes)
      return replaced(marker("huge", size), `${at} replaced by a string of ${size} characters`)
    }
    case "deep": {
      const depth = pickOf(depths)
      const kind = m.variant % 2 === 0 ? "deepArray" : "deepObject"
      return replaced(
        marker(kind, depth),
        `${at} replaced by ${depth} nested ${kind === "deepArray" ? "arrays" : "objects"}`
      )
    }
    case "excessField": {
      const objects = all.filter((p) => {
        let u: unknown = value
        for (const k of p) u = (u as Fields)[k as string]
        return isFields(u)
      })
      const target = objects.length === 0 ? undefined : objects[m.pick % objects.length]!
      const key = pickOf(excessKeys)
      const extra = pickOf(wrongTypes)
      if (target === undefined) {
        return {
          what: `an extra field ${JSON.stringify(key)} around a non-object body`,
          body: JSON.stringify({ [key]: extra, value }),
          encoding: utf8
        }
      }
      let parent: unknown = value
      for (const k of target) parent = (parent as Fields)[k as string]
      const copy: Fields = { ...(parent as Fields) }
      // defineProperty: `copy["__proto__"] = …` would set the prototype, not a field
      Object.defineProperty(copy, key, { value: extra, enumerable: true, writable: true, configurable: true })
      return {
        what: `an unknown field ${JSON.stringify(key)} at ${target.length === 0 ? "the top" : target.join(".")}`,
        body: JSON.stringify(replaceAt(value, target, copy)),
        encoding: utf8
      }
    }
    case "dropField":
      return path.length === 0
        ? { what: "no body", body: "", encoding: utf8 }
        : { what: `${at} left out`, body: JSON.stringify(replaceAt(value, path, undefined)), encoding: utf8 }
    case "oddString": {
      const replacement = pickOf(oddStrings)
      return replaced(replacement, `${at} replaced by the string ${JSON.stringify(replacement)}`)
    }
    case "oddBody": {
      const body = pickOf(oddBodies)
      return { what: `the body ${JSON.stringify(body)}`, body, encoding: utf8 }
    }
    case "truncate": {
      const text = JSON.stringify(value)
      const cut = Math.floor(text.length * m.at)
      return {
        what: `the body cut after ${cut} of ${text.length} characters`,
        body: text.slice(0, cut),
        encoding: utf8
      }
    }
    case "encoding": {
      const choice = m.variant % (badBytes.length + 2)
      const encoding: Encoding = choice === 0
        ? { _tag: "utf16le" }
        : choice === 1
        ? { _tag: "bom" }
        : { _tag: "splice", at: m.at, bytes: badBytes[choice - 2]! }
      const what = encoding._tag === "splice"
        ? `bytes ${encoding.bytes.map((b) => b.toString(16)).join(" ")} spliced in`
        : `the body in ${encoding._tag}`
      return { what, body: JSON.stringify(value), encoding }
    }
    case "duplicateKey": {
      const text = JSON.stringify(value)
      const first = isFields(value) ? Object.keys(value)[0] : undefined
      return first === undefined || !text.startsWith("{")
        ? { what: "a second body after the first", body: `${text}${text}`, encoding: utf8 }
        : {
          what: `the field ${JSON.stringify(first)} twice`,
          body: `{${JSON.stringify(first)}:${JSON.stringify(pickOf(wrongTypes))},${text.slice(1)}`,
          encoding: utf8
        }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Credentials and headers

/** Authorization as sent: `right` says whether it should let the request in on a broker with a token. */
interface Credentials {
  readonly headers: Record<string, string>
  readonly query: string
  readonly right: boolean
  readonly what: string
}

const credentialsOf = (
  token: string | undefined,
  roleTokens: Readonly<Record<string, string>> = {}
): fc.Arbitrary<Credentials> => {
  if (token === undefined) {
    return fc.constantFrom<Credentials>(
      { headers: {}, query: "", right: true, what: "" },
      { headers: {}, query: "", right: true, what: "" },
      {
        headers: { authorization: "Bearer anything" },
        query: "",
        right: true,
        what: "a token the broker does not ask for"
      }
    )
  }
  const right = (headers: Record<string, string>, query: string, what: string): Credentials => ({
    headers,
    query,
    right: true,
    what
  })
  const wrong = (headers: Record<string, string>, query: string, what: string): Credentials => ({
    headers,
    query,
    right: false,
    what
  })
  const roles = Object.entries(roleTokens).map(([role, roleToken]) =>
    right({ authorization: `Bearer ${roleToken}` }, "", `the ${role} token`)
  )
  return fc.oneof(
    { weight: 12, arbitrary: fc.constant(right({ authorization: `Bearer ${token}` }, "", "")) },
    ...(roles.length > 0 ? [{ weight: 4, arbitrary: fc.constantFrom(...roles) }] : []),
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        right({ authorization: `bearer ${token}` }, "", "lower-case scheme"),
        right({ authorization: `  Bearer   ${token}  ` }, "", "spaces around"),
        right({}, `token=${encodeURIComponent(token)}`, "the token in the query"),
        right({ authorization: `Bearer ${token}` }, "token=wrong", "the right header and a wrong query token")
      )
    },
    {
      weight: 5,
      arbitrary: fc.constantFrom(
        wrong({}, "", "no credentials"),
        wrong({ authorization: "Bearer" }, "", "a scheme without a token"),
        wrong({ authorization: "Bearer " }, "", "an empty token"),
        wrong({ authorization: "Bearer wrong" }, "", "a wrong token"),
        wrong({ authorization: `Bearer ${token}x` }, "", "the token with a character more"),
        wrong({ authorization: `Bearer ${token.slice(0, -1)}` }, "", "the token less its last character"),
        wrong({ authorization: `Bearer ${token.toUpperCase()}` }, "", "the token in upper case"),
        wrong({ authorization: `Basic ${Buffer.from(`admin:${token}`).toString("base64")}` }, "", "basic auth"),
        wrong({ authorization: `Token ${token}` }, "", "another scheme"),
        wrong({ authorization: `Bearer ${token}, Bearer ${token}` }, "", "the token twice"),
        wrong({ authorization: `Bearer ${"x".repeat(8_000)}` }, "", "an 8 KB token"),
        wrong(
          { authorization: `Bearer ${Buffer.from("tökén€", "utf8").toString("latin1")}` },
          "",
          "a token of UTF-8 bytes"
        ),
        wrong({}, "token=wrong", "a wrong query token"),
        wrong({}, "token=", "an empty query token"),
        wrong({ authorization: "" }, `token=${encodeURIComponent(token)}x`, "an empty header and a wrong query token")
      )
    }
  )
}

const contentTypes = fc.oneof(
  { weight: 16, arbitrary: fc.constant<string | undefined>("application/json") },
  {
    weight: 3,
    arbitrary: fc.constantFrom<string | undefined>(
      undefined,
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/json; charset=utf-16",
      "application/json; charset=latin1",
      "APPLICATION/JSON",
      "application/json, text/plain",
      "application/jsonx",
      "application/ndjson",
      `application/json; ${"x=y; ".repeat(500)}`
    )
  }
)

/** Headers a browser on another site, a proxy or an attacker adds. */
const extraHeaders = fc.oneof(
  { weight: 12, arbitrary: fc.constant<Record<string, string>>({}) },
  {
    weight: 3,
    arbitrary: fc.constantFrom<Record<string, string>>(
      { origin: "http://evil.example" },
      { origin: "null" },
      { "content-encoding": "gzip" },
      { "content-encoding": "br, gzip, identity" },
      { "x-forwarded-for": "127.0.0.1, 10.0.0.1" },
      { "x-forwarded-host": "evil.example", "x-forwarded-proto": "https" },
      { accept: "text/html" },
      { accept: "application/msgpack" },
      { cookie: `a=${"b".repeat(4_000)}` },
      { "x-http-method-override": "DELETE" },
      { "content-language": "\u00ff" },
      { connection: "close" },
      Object.fromEntries(Array.from({ length: 90 }, (_, i) => [`x-h${i}`, String(i)]))
    )
  }
)

const withCredentials = (path: string, credentials: Credentials): string =>
  credentials.query === "" ? path : `${path}${path.includes("?") ? "&" : "?"}${credentials.query}`

// ---------------------------------------------------------------------------------------------
// REST

const oddMethods = ["PUT", "PATCH", "DELETE", "TRACE", "FOO", "OPTIONS", "HEAD", "PROPFIND", "CONNECTX"]

/** What a generated REST request's path and method turn into, beyond the route's own. */
const pathTricks: ReadonlyArray<(path: string) => string> = [
  (p) => `${p}/`,
  (p) => `/${p}`,
  // markers stay as they are: they are filled in when the request is sent
  (p) => p.replace(/[^\u27e6\u27e7]+(?=\u27e6|$)/g, (part) => part.toUpperCase()),
  (p) => `${p}?x=${marker("huge", 1_000)}`,
  (p) => `${p}%00`,
  (p) => `${p}/..`,
  (p) => p.replace("/v1/", "/v1/./"),
  (p) => p.replace("/v1/", "/v1/%2e%2e/v1/"),
  (p) => `${p}/extra`,
  (p) => `${p};x=1`,
  (p) => `${p}%zz`,
  (p) => `${p}#fragment`
]

const jobIdPathTricks = [
  "..%2f..%2fstate",
  "%2e%2e",
  "%00",
  "a%2Fb",
  "job-1%20",
  "x".repeat(129),
  "%F0%9F%92%A5",
  "%ff%fe",
  "",
  "job-1/../job-2"
]

const restProbe = (pools: Pools): fc.Arbitrary<Named<HttpProbe>> =>
  fc
    .record({
      route: fc.constantFrom(...routes),
      aim: aimed(pools),
      credentials: credentialsOf(pools.token, pools.roleTokens),
      contentType: contentTypes,
      extra: extraHeaders,
      style: fc.oneof(
        { weight: 9, arbitrary: fc.constant("valid" as const) },
        { weight: 9, arbitrary: fc.constant("broken" as const) },
        { weight: 1, arbitrary: fc.constant("method" as const) },
        { weight: 1, arbitrary: fc.constant("path" as const) },
        { weight: 1, arbitrary: fc.constant("id" as const) }
      ),
      mutation,
      pick: nat
    })
    .chain((r) =>
      fc.record({
        payload: r.route.payload ? encodedValues(r.route.payload) : fc.constant(undefined),
        params: r.route.urlParams ? encodedValues(r.route.urlParams) : fc.constant(undefined)
      }).map(({ params, payload }): Named<HttpProbe> | undefined => {
        const { pathId, payload: aimedPayload } = aim(r.route.name, payload, r.aim)
        // a marker stays as it is: it is URL-encoded when rendered
        let path = r.route.path.replace(":id", pathId.startsWith("\u27e6") ? pathId : encodeURIComponent(pathId))
        if (isFields(params)) {
          const query = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString()
          if (query !== "") path = `${path}?${query}`
        }
        let method = r.route.method
        let body = r.route.payload ? JSON.stringify(aimedPayload ?? null) : undefined
        let encoding: Encoding = utf8
        let what = `${r.route.name}`
        let expect: Expect = {
          ...defaultExpect,
          credentialsRight: r.credentials.right,
          waitMs: r.route.name === "claim" ? r.aim.waitMs : 0
        }
        switch (r.style) {
          case "valid":
            what += " (valid)"
            break
          case "broken": {
            const broken = mutate(aimedPayload ?? {}, r.mutation)
            body = broken.body
            encoding = broken.encoding
            what += `: ${broken.what}`
            expect = { ...expect, waitMs: 0 }
            break
          }
          case "method": {
            method = oddMethods[r.pick % oddMethods.length]!
            const allow = methodsByPath.get(r.route.path) ?? []
            what += `: method ${method}`
            // Node's parser refuses a method it does not know (400) before any route sees it; a
            // method the path serves is another route (DELETE /v1/jobs/:id), judged by the generic rules
            expect = method === "HEAD" || method === "OPTIONS" || allow.includes(method)
              ? { ...expect, route: "ops" }
              : http.METHODS.includes(method)
              ? { ...expect, route: "wrong-method", allow }
              : { ...expect, route: "unknown" }
            break
          }
          case "path": {
            path = pathTricks[r.pick % pathTricks.length]!(path)
            what += `: path ${path}`
            // some tricks still name the route (a query, `./`): any non-5xx answer is judged by the generic rules
            expect = { ...expect, route: "ops" }
            break
          }
          case "id": {
            if (!r.route.path.includes(":id")) return undefined
            path = r.route.path.replace(":id", jobIdPathTricks[r.pick % jobIdPathTricks.length]!)
            what += `: id ${path}`
            expect = { ...expect, route: "ops" }
            break
          }
        }
        const headers: Record<string, string> = { ...r.extra, ...r.credentials.headers }
        if (body !== undefined && r.contentType !== undefined) headers["content-type"] = r.contentType
        if (r.contentType !== "application/json" && body !== undefined) {
          what += ` as ${r.contentType ?? "no content type"}`
        }
        if (Object.keys(r.extra).length > 0) what += ` with ${Object.keys(r.extra).slice(0, 3).join(", ")}`
        if (r.credentials.what !== "") what += ` (${r.credentials.what})`
        return {
          what: `REST ${what}`,
          covers: [`REST ${r.route.name}`],
          probe: {
            transport: "rest" as const,
            method,
            path: withCredentials(path, r.credentials),
            headers,
            ...(body !== undefined ? { body } : {}),
            encoding,
            expect
          }
        }
      })
    )
    .filter((named): named is Named<HttpProbe> => named !== undefined) as fc.Arbitrary<Named<HttpProbe>>

/** GETs (and odd methods) on the routes outside the API. */
const opsProbe = (pools: Pools): fc.Arbitrary<Named<HttpProbe>> =>
  fc.record({
    path: fc.constantFrom(...opsPaths),
    credentials: credentialsOf(pools.token, pools.roleTokens),
    extra: extraHeaders,
    method: fc.constantFrom("GET", "GET", "GET", "HEAD", "POST", "DELETE", "TRACE", "OPTIONS")
  })
    .map(({ credentials, extra, method, path }) => ({
      what: `ops ${method} ${path}${credentials.what ? ` (${credentials.what})` : ""}`,
      probe: {
        transport: "rest" as const,
        method,
        path: withCredentials(path, credentials),
        headers: { ...extra, ...credentials.headers },
        ...(method === "POST" ? { body: "{}" } : {}),
        encoding: utf8,
        expect: {
          ...defaultExpect,
          route: "ops" as const,
          credentialsRight: credentials.right || publicPaths.has(path)
        }
      }
    }))

/** Paths nothing serves. */
const unknownProbe = (pools: Pools): fc.Arbitrary<Named<HttpProbe>> =>
  fc.record({
    path: fc.oneof(
      fc.constantFrom(
        "/v1",
        "/v1/",
        "/v2/jobs",
        "/v1/jobs/batch/complete/x",
        "/v1/dead",
        "/rpcx",
        "/.env",
        "/v1/jobs/job-1/complete/again",
        "/%2e%2e/%2e%2e/etc/passwd"
      ),
      fc.webPath().map((p) => (p.startsWith("/") ? p : `/${p}`))
    ),
    method: fc.constantFrom("GET", "POST", "PUT", "DELETE"),
    credentials: credentialsOf(pools.token, pools.roleTokens)
  }).filter(({ path }) => !isServed(path))
    .map(({ credentials, method, path }) => ({
      what: `unknown ${method} ${path}`,
      probe: {
        transport: "rest" as const,
        method,
        path: withCredentials(path, credentials),
        headers: { "content-type": "application/json", ...credentials.headers },
        ...(method === "GET" ? {} : { body: "{}" }),
        encoding: utf8,
        expect: { ...defaultExpect, route: "unknown" as const, credentialsRight: credentials.right }
      }
    }))

const servedPatterns = [...routes.map((r) => r.path), ...opsPaths, "/rpc", "/rpc/ws"].map((p) =>
  new RegExp(`^${p.replace(/:id/g, "[^/]+")}/?(\\?.*)?$`)
)

/**
 * Whether `path` might be served: the dashboard answers any path under `/assets/`, and the router
 * reads `;…` in a segment as parameters of it (`/;x` is `/`).
 */
const isServed = (path: string) => {
  const plain = path.replace(/;[^/?]*/g, "")
  return plain === "" || plain.startsWith("/assets") || servedPatterns.some((re) => re.test(plain))
}

// ---------------------------------------------------------------------------------------------
// RPC messages, for HTTP bodies and WebSocket frames

interface Message {
  /** The message as text (a template). */
  readonly text: string
  /** The id whose `Exit` must come, if the message is a request with a readable, unique id. */
  readonly id?: string
  /** A message whose id cannot be read (answered for request -1). */
  readonly unreadable: boolean
  readonly waitMs: number
  readonly what: string
}

const envelopeBreaks = [
  "no id",
  "id as a number",
  "id not decimal",
  "negative id",
  "id of 30 digits",
  "tag unknown",
  "tag of the server's refusal",
  "tag __proto__",
  "no tag",
  "_tag Ack",
  "_tag Interrupt",
  "_tag Ping",
  "_tag Eof",
  "_tag unknown",
  "headers not an array",
  "headers [[1,2]]",
  "headers [[\"a\"]]",
  "a forged authorization header",
  "a traceId of junk",
  "not an object",
  "not JSON"
] as const

/** A message, given its request id (made once: building arbitraries per message is slow). */
const rpcMessage = (pools: Pools): fc.Arbitrary<(id: string) => Message> =>
  fc.record({
    rpc: fc.constantFrom(...rpcs),
    aim: aimed(pools),
    style: fc.constantFrom("valid", "valid", "broken", "broken", "envelope"),
    mutation,
    pick: nat
  })
    .chain((r) =>
      encodedValues(r.rpc.payloadSchema).map((payload) => (id: string): Message => {
        const aimedPayload = aim(r.rpc._tag, payload, r.aim).payload
        const base = {
          _tag: "Request",
          id,
          tag: r.rpc._tag,
          payload: aimedPayload ?? {},
          headers: [] as Array<unknown>
        }
        const waitMs = r.rpc._tag === "Claim" ? r.aim.waitMs : 0
        if (r.style === "valid") {
          return { text: JSON.stringify(base), id, unreadable: false, waitMs, what: `${r.rpc._tag} (valid)` }
        }
        if (r.style === "broken") {
          const broken = mutate(aimedPayload ?? {}, r.mutation)
          // the payload's own text spliced into the envelope: the break stays textual (raw numbers, bad
          // JSON); a function, so that `$'` in the payload is not read as a replacement pattern
          const text = JSON.stringify({ ...base, payload: "\u0000PAYLOAD\u0000" }).replace(
            "\"\\u0000PAYLOAD\\u0000\"",
            () => (broken.body === "" ? "\"\"" : broken.body)
          )
          return { ...expectationOf(text, id), waitMs: 0, what: `${r.rpc._tag}: payload ${broken.what}` }
        }
        const how = envelopeBreaks[r.pick % envelopeBreaks.length]!
        const message: Record<string, unknown> = { ...base }
        let expected: string | undefined = id
        let unreadable = false
        switch (how) {
          case "no id":
            delete message.id
            expected = undefined
            unreadable = true
            break
          case "id as a number":
            message.id = Number(id)
            expected = undefined
            unreadable = true
            break
          case "id not decimal":
            message.id = `0x${id}`
            expected = undefined
            unreadable = true
            break
          case "negative id":
            message.id = `-${id}`
            expected = undefined
            unreadable = true
            break
          case "id of 30 digits":
            message.id = "9".repeat(30)
            expected = undefined
            unreadable = true
            break
          case "tag unknown":
            message.tag = "DropEverything"
            break
          case "tag of the server's refusal":
            message.tag = "osqueue.Refused"
            message.payload = { error: { _tag: "InvalidRequest", message: "x" } }
            break
          case "tag __proto__":
            message.tag = "__proto__"
            break
          case "no tag":
            delete message.tag
            break
          case "_tag Ack":
            message._tag = "Ack"
            message.requestId = id
            expected = undefined
            break
          case "_tag Interrupt":
            message._tag = "Interrupt"
            message.requestId = "424242"
            expected = undefined
            break
          case "_tag Ping":
            return { text: "{\"_tag\":\"Ping\"}", unreadable: false, waitMs: 0, what: "Ping" }
          case "_tag Eof":
            return { text: "{\"_tag\":\"Eof\"}", unreadable: false, waitMs: 0, what: "Eof" }
          case "_tag unknown":
            message._tag = "Exit"
            expected = undefined
            break
          case "headers not an array":
            message.headers = { authorization: "x" }
            break
          case "headers [[1,2]]":
            message.headers = [[1, 2]]
            break
          case "headers [[\"a\"]]":
            message.headers = [["a"]]
            break
          case "a forged authorization header":
            message.headers = [["authorization", "Bearer forged"]]
            break
          case "a traceId of junk":
            Object.assign(message, { traceId: { a: [1] }, spanId: 7, sampled: "yes" })
            break
          case "not an object":
            return { text: JSON.stringify([base]), unreadable: true, waitMs: 0, what: "a message in an array" }
          case "not JSON":
            return { text: JSON.stringify(base).slice(0, -3), unreadable: true, waitMs: 0, what: "a message cut short" }
        }
        return {
          text: JSON.stringify(message),
          ...(expected !== undefined ? { id: expected } : {}),
          unreadable,
          waitMs,
          what: `${r.rpc._tag}: ${how}`
        }
      })
    )

/**
 * What a message's text lets the broker read: its id when it parses as an object (answered under
 * that id), none when it does not parse (answered for -1). A line break splits an ndjson line, so
 * then nothing is promised for the id.
 */
const expectationOf = (text: string, id: string): { text: string; id?: string; unreadable: boolean } => {
  if (/[\r\n]/.test(text)) return { text, unreadable: true }
  try {
    const parsed = JSON.parse(text) as unknown
    return isFields(parsed) && parsed.id === id
      ? { text, id, unreadable: false }
      : { text, unreadable: !isFields(parsed) }
  } catch {
    return { text, unreadable: true }
  }
}

/** After an `Eof` the client has said it sends nothing more: what follows it is promised no answer. */
const untilEof = (messages: ReadonlyArray<Message>): Array<Message> => {
  const eof = messages.findIndex((m) => m.what === "Eof")
  return eof < 0
    ? [...messages]
    : messages.map((m, i) => (i > eof ? { text: m.text, unreadable: false, waitMs: m.waitMs, what: m.what } : m))
}

/** A body of ndjson lines for `POST /rpc`. */
const rpcHttpProbe = (messages: fc.Arbitrary<(id: string) => Message>, pools: Pools): fc.Arbitrary<Named<HttpProbe>> =>
  fc.record({
    count: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 3 }) }, {
      weight: 1,
      arbitrary: fc.integer({ min: 4, max: 40 })
    }),
    credentials: credentialsOf(pools.token, pools.roleTokens),
    contentType: fc.constantFrom(
      "application/ndjson",
      "application/ndjson",
      "application/ndjson",
      "application/json",
      "text/plain",
      undefined
    ),
    ending: fc.constantFrom("\n", "\n", "\n", "\r\n", "", "\n\n"),
    extra: extraHeaders
  })
    .chain((r) =>
      fc.array(messages, { minLength: r.count, maxLength: r.count }).map((makers) => {
        const messages = untilEof(makers.map((make, i) => make(String(i + 1))))
        const body = messages.map((m) => m.text).join(r.ending === "" ? "\n" : r.ending) + r.ending
        const headers: Record<string, string> = { ...r.extra, ...r.credentials.headers }
        if (r.contentType !== undefined) headers["content-type"] = r.contentType
        return {
          covers: messages.map((m) => `RPC-HTTP ${m.what.split(":")[0]!.split(" ")[0]}`),
          what: `RPC-HTTP ${messages.map((m) => m.what).join(" | ")}${
            r.contentType === "application/ndjson" ? "" : ` as ${r.contentType ?? "no content type"}`
          }${r.credentials.what ? ` (${r.credentials.what})` : ""}`,
          probe: {
            transport: "rpc-http" as const,
            method: "POST",
            path: withCredentials("/rpc", r.credentials),
            headers,
            body,
            encoding: utf8,
            expect: {
              ...defaultExpect,
              credentialsRight: r.credentials.right,
              rpcIds: messages.flatMap((m) => (m.id === undefined ? [] : [m.id])),
              unreadable: messages.some((m) => m.unreadable),
              waitMs: Math.max(0, ...messages.map((m) => m.waitMs))
            }
          }
        }
      })
    )

/** What is done to the frames themselves, beyond their messages. */
const frameBreaks = [
  "none",
  "none",
  "none",
  "none",
  "none",
  "binary",
  "fragmented",
  "rsv",
  "unmasked",
  "invalid utf-8",
  "ping",
  "oversized ping",
  "reserved opcode",
  "empty",
  "close 1000 then more"
] as const

/** A WebSocket session on `/rpc/ws`: one to four messages, as frames. */
const rpcWsProbe = (messages: fc.Arbitrary<(id: string) => Message>, pools: Pools): fc.Arbitrary<Named<WsProbe>> =>
  fc.record({
    count: fc.integer({ min: 1, max: 4 }),
    credentials: credentialsOf(pools.token, pools.roleTokens),
    how: fc.constantFrom(...frameBreaks),
    origin: fc.constantFrom(undefined, undefined, undefined, "http://evil.example")
  })
    .chain((r) =>
      fc.array(messages, { minLength: r.count, maxLength: r.count }).map((makers) => {
        const messages = untilEof(makers.map((make, i) => make(String(i + 1))))
        const text = (m: Message): WsFrameSpec => ({ opcode: opcodes.text, text: m.text, encoding: utf8 })
        let frames: Array<WsFrameSpec> = messages.map(text)
        let mayClose = true
        switch (r.how) {
          case "none":
            mayClose = false
            break
          case "binary":
            frames = frames.map((f) => ({ ...f, opcode: opcodes.binary }))
            break
          case "fragmented": {
            const first = messages[0]!.text
            const half = Math.floor(first.length / 2)
            frames = [{ opcode: opcodes.text, text: first.slice(0, half), encoding: utf8, fin: false }, {
              opcode: opcodes.continuation,
              text: first.slice(half),
              encoding: utf8
            }, ...frames.slice(1)]
            mayClose = false
            break
          }
          case "rsv":
            frames = frames.map((f) => ({ ...f, rsv: 4 }))
            break
          case "unmasked":
            frames = frames.map((f) => ({ ...f, unmasked: true }))
            break
          case "invalid utf-8":
            frames = frames.map((f) => ({ ...f, encoding: { _tag: "splice", at: 0.5, bytes: [0xff, 0xfe] } }))
            break
          case "ping":
            frames = [{ opcode: opcodes.ping, text: "hello", encoding: utf8 }, ...frames]
            mayClose = false
            break
          case "oversized ping":
            frames = [{ opcode: opcodes.ping, text: "p".repeat(200), encoding: utf8 }, ...frames]
            break
          case "reserved opcode":
            frames = [{ opcode: 0x3, text: "?", encoding: utf8 }, ...frames]
            break
          case "empty":
            frames = [{ opcode: opcodes.text, text: "", encoding: utf8 }, ...frames]
            mayClose = false
            break
          case "close 1000 then more":
            frames = [{ opcode: opcodes.close, text: "\u0003\u00e8", encoding: { _tag: "latin1" } }, ...frames]
            break
        }
        const headers: Record<string, string> = { ...r.credentials.headers }
        if (r.origin !== undefined) headers.origin = r.origin
        return {
          covers: messages.map((m) => `RPC-WS ${m.what.split(":")[0]!.split(" ")[0]}`),
          what: `RPC-WS ${messages.map((m) => m.what).join(" | ")}${r.how === "none" ? "" : ` [frames: ${r.how}]`}${
            r.origin ? ` from ${r.origin}` : ""
          }${r.credentials.what ? ` (${r.credentials.what})` : ""}`,
          probe: {
            transport: "rpc-ws" as const,
            path: withCredentials("/rpc/ws", r.credentials),
            headers,
            frames,
            expect: {
              ...defaultExpect,
              credentialsRight: r.credentials.right,
              rpcIds: messages.flatMap((m) => (m.id === undefined ? [] : [m.id])),
              unreadable: messages.some((m) => m.unreadable) && r.how === "none",
              mayClose: mayClose || r.origin !== undefined,
              waitMs: Math.max(0, ...messages.map((m) => m.waitMs))
            }
          }
        }
      })
    )

/** What the probes must cover between them: every REST endpoint, every RPC operation on both transports. */
export const coverage: ReadonlyArray<string> = [
  ...routes.map((route) => `REST ${route.name}`),
  ...rpcs.flatMap((rpc) => [`RPC-HTTP ${rpc._tag}`, `RPC-WS ${rpc._tag}`])
]

/** Any probe, in the suite's mix: REST most, both RPC transports, the other routes now and then. */
export const probes = (pools: Pools): fc.Arbitrary<Named<Probe>> => {
  const messages = rpcMessage(pools)
  return fc.oneof(
    { weight: 40, arbitrary: restProbe(pools) },
    { weight: 25, arbitrary: rpcHttpProbe(messages, pools) },
    { weight: 25, arbitrary: rpcWsProbe(messages, pools) },
    { weight: 6, arbitrary: opsProbe(pools) },
    { weight: 4, arbitrary: unknownProbe(pools) }
  )
}

/** Probe `index` of `seed`: the same every time, whatever else runs. */
export const probeAt = (arbitrary: fc.Arbitrary<Named<Probe>>, seed: number, index: number): Named<Probe> =>
  fc.sample(arbitrary, { seed: (seed + Math.imul(index, 0x9e3779b1)) | 0, numRuns: 1 })[0]!
