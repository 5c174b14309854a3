/**
 * Hand-written hostile requests: every case of the issue that asked for this suite ("Hostile
 * input never crashes, wedges or 500s the broker", numbered as there: `#1` … `#15`) and more of
 * our own. Each is judged by the generic rules (`checks.ts`) and by what it specifically must do.
 * They run inside the fuzz, among the generated probes, on the same broker.
 */
import { Json, maxDelayMs, maxInstant, parseLeaseToken } from "@osqueue/types"
import { budgetMs } from "./checks.js"
import { authHeaders, brokerEnv, call, must, type Run } from "./harness.js"
import { defaultExpect, type Expect, type HttpProbe, type Named, type WsFrameSpec, type WsProbe } from "./probes.js"
import type { Setup } from "./sentinels.js"
import { marker, utf8 } from "./templates.js"
import { encodeFrame, opcodes, rawStatus, sendRaw, sendWs } from "./wire.js"

export interface HostileCase {
  /** How FUZZ_ONLY names it, and how its failures are labelled. */
  readonly label: string
  readonly name: string
  readonly run: (run: Run, setup: Setup) => Promise<void>
}

/**
 * Longest a connection may be held by a client that sends too little (a short body, a chunk that
 * never comes, headers a byte at a time) before the broker answers or hangs up: the request
 * timeout the suite gives the broker (`brokerEnv`) and 2 s.
 */
/** The broker's body limit (BrokerConfig's default, which the suite keeps). */
const maxBodyBytes = 8 * 1024 * 1024

export const slowClientBudgetMs = Number(brokerEnv.OSQUEUE_REQUEST_TIMEOUT_MS) + 2_000

const json = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** A REST probe with the broker's token and a JSON content type unless `headers` says otherwise. */
const rest = (
  run: Run,
  what: string,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
  expect: Partial<Expect> = {}
): Named<HttpProbe> => ({
  what,
  probe: {
    transport: "rest",
    method,
    path,
    headers: {
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...authHeaders(run.broker),
      ...headers
    },
    ...(body !== undefined ? { body } : {}),
    encoding: utf8,
    expect: { ...defaultExpect, ...expect }
  }
})

const rpcLine = (id: string, tag: string, payload?: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ _tag: "Request", id, tag, ...(payload !== undefined ? { payload } : {}), headers: [], ...extra })

const rpcHttp = (
  run: Run,
  what: string,
  body: string,
  ids: ReadonlyArray<string>,
  headers: Record<string, string> = {},
  expect: Partial<Expect> = {}
): Named<HttpProbe> => ({
  what,
  probe: {
    transport: "rpc-http",
    method: "POST",
    path: "/rpc",
    headers: { "content-type": "application/ndjson", ...authHeaders(run.broker), ...headers },
    body,
    encoding: utf8,
    expect: { ...defaultExpect, rpcIds: ids, ...expect }
  }
})

const rpcWs = (
  run: Run,
  what: string,
  frames: ReadonlyArray<WsFrameSpec>,
  ids: ReadonlyArray<string>,
  expect: Partial<Expect> = {},
  headers: Record<string, string> = {}
): Named<WsProbe> => ({
  what,
  probe: {
    transport: "rpc-ws",
    path: run.broker.token === undefined ? "/rpc/ws" : `/rpc/ws?token=${encodeURIComponent(run.broker.token)}`,
    headers,
    frames,
    expect: { ...defaultExpect, rpcIds: ids, ...expect }
  }
})

const text = (t: string): WsFrameSpec => ({ opcode: opcodes.text, text: t, encoding: utf8 })

/** The RPC failure of request `id` in `messages` (ndjson lines or frames), if it failed with an error. */
const rpcError = (messages: ReadonlyArray<string>, id: string): { _tag?: string; message?: string } | undefined => {
  for (const m of messages) {
    const parsed = json(m) as {
      _tag?: string
      requestId?: string
      exit?: { _tag?: string; cause?: { _tag?: string; error?: { _tag?: string; message?: string } } }
    } | undefined
    if (parsed?._tag === "Exit" && parsed.requestId === id) {
      return parsed.exit?._tag === "Failure"
        ? (parsed.exit.cause?.error ?? {})
        : undefined
    }
  }
  return undefined
}

const lines = (body: Buffer) => body.toString("utf8").split("\n")

/** Problems unless `text` is a tagged `InvalidRequest` whose message mentions every one of `words`. */
const invalidNaming = (body: string, ...words: ReadonlyArray<string>): Array<string> => {
  const error = json(body) as { _tag?: string; message?: string } | undefined
  if (error?._tag !== "InvalidRequest" && error?._tag !== "HttpApiDecodeError") {
    return [`want InvalidRequest, got ${body.slice(0, 200)}`]
  }
  const said = JSON.stringify(error)
  const missing = words.filter((w) => !said.includes(w))
  return missing.length === 0 ? [] : [`the error does not name ${missing.join(", ")}: ${said.slice(0, 300)}`]
}

/** Jobs of `type` (a type no one else uses): the proof that a refused request committed nothing. */
const jobsOfType = async (
  run: Run,
  type: string
): Promise<
  number
> => ((await must<{ jobs: Array<unknown> }>(run.broker, "GET", `/v1/jobs?type=${encodeURIComponent(type)}`)).jobs
  .length)

const unique = (what: string) => `hostile-${what}-${Math.random().toString(36).slice(2, 8)}`

/** A job of its own type, claimed: its id and live token. A probe's claim (of any type) may take it first: then another. */
const claimedJob = async (run: Run, type: string) => {
  // A generated probe may have limited claims of the whole queue (or paused it): lift both first.
  await must(run.broker, "POST", "/v1/limits/clear", {})
  await must(run.broker, "POST", "/v1/resume", {})
  for (let attempt = 0; attempt < 10; attempt++) {
    await must(run.broker, "POST", "/v1/jobs", { type })
    const [claimed] = await must<Array<{ job: { id: string }; token: string }>>(run.broker, "POST", "/v1/jobs/claim", {
      workerId: "hostile",
      types: [type],
      leaseMs: 600_000
    })
    if (claimed !== undefined) return { id: claimed.job.id, token: claimed.token }
  }
  throw new Error(`no job of ${type} to claim in 10 tries`)
}

/** The answer's status to raw bytes, or a problem if it held the connection past the budget. */
const rawCase = async (
  run: Run,
  label: string,
  what: string,
  chunks: ReadonlyArray<string | Buffer>,
  budget: number,
  options: { gapMs?: number; hangUpAfterBytes?: number; complete?: (bytes: Buffer) => boolean } = {}
) => {
  const answer = await sendRaw(run.broker.target, { chunks, waitMs: budget + 2_000, ...options })
  run.counts.raw++
  const status = rawStatus(answer.bytes)
  const problems: Array<string> = []
  if (status !== undefined && status >= 500) problems.push(`status ${status}`)
  if (options.hangUpAfterBytes === undefined) {
    const done = answer.closedByBroker || (options.complete?.(answer.bytes) ?? false)
    if (status === undefined && !done) {
      problems.push(`no answer and the connection held for ${Math.round(answer.ms)} ms`)
    } else if (!done) problems.push(`the connection held for ${Math.round(answer.ms)} ms after answering ${status}`)
    else if (answer.ms > budget) {
      problems.push(`answered or closed after ${Math.round(answer.ms)} ms (budget ${budget} ms)`)
    }
  }
  if (problems.length > 0) {
    run.fail(
      label,
      what,
      problems,
      chunks.map((c) => JSON.stringify(c.toString().slice(0, 300))).join(" + "),
      `${status ?? "no status"} after ${Math.round(answer.ms)} ms: ${answer.bytes.toString("latin1").slice(0, 300)}`
    )
  }
  return { status, answer }
}

const rawRequest = (run: Run, head: string, body = "") =>
  `${head}\r\nHost: ${run.broker.target.host}\r\n${
    Object.entries(authHeaders(run.broker)).map(([k, v]) => `${k}: ${v}\r\n`).join("")
  }` + `\r\n${body}`

const deep = (n: number) => marker("deepArray", n)

export const hostileCases: ReadonlyArray<HostileCase> = [
  {
    label: "#1",
    name: "#1 a body of 100,000 nested arrays on every route that takes a body",
    run: async (run, setup) => {
      const id = setup.fuzzIds[0]!
      for (const path of ["/v1/jobs", "/v1/jobs/batch", `/v1/jobs/${id}/complete`, "/v1/jobs/batch/complete"]) {
        await run.http(
          "#1",
          rest(run, `POST ${path} with 100,000 nested arrays`, "POST", path, deep(100_000), {}, { mustRefuse: true }),
          (a) => a.status === 400 ? invalidNaming(a.body.toString(), String(Json.defaultMaxJsonDepth)) : []
        )
      }
    }
  },
  {
    label: "#2",
    name: "#2 payloads nested 2,000 and 5,000 deep, then the commit path still commits",
    run: async (run) => {
      const type = unique("deep")
      for (const depth of [2_000, 5_000]) {
        await run.http(
          "#2",
          rest(
            run,
            `enqueue with a payload nested ${depth} deep`,
            "POST",
            "/v1/jobs",
            `{"type":"${type}","payload":${deep(depth)}}`,
            {},
            { mustRefuse: true }
          )
        )
      }
      const deepest = Json.defaultMaxJsonDepth - 2
      const accepted = await run.http(
        "#2",
        rest(
          run,
          `enqueue with a payload nested ${deepest} deep (within the limit)`,
          "POST",
          "/v1/jobs",
          `{"type":"${type}","payload":${deep(deepest)}}`
        ),
        (a) =>
          a.status === 201
            ? []
            : [`a payload within the limit (${deepest} levels in a body of ${deepest + 1}) must be accepted`]
      )
      const created = json(accepted.answer.body.toString()) as { id?: string } | undefined
      if (created?.id !== undefined) {
        await run.http("#2", rest(run, "the deep job read back", "GET", `/v1/jobs/${created.id}`))
      }
      await run.http(
        "#2",
        rest(run, "an enqueue after the poison", "POST", "/v1/jobs", JSON.stringify({ type })),
        (a) => (a.status === 201 ? [] : ["the next enqueue must succeed"])
      )
    }
  },
  {
    label: "#3",
    name: "#3 RPC Enqueue with a payload nested 1,000 deep, over HTTP and WebSocket",
    run: async (run) => {
      const line = `{"_tag":"Request","id":"1","tag":"Enqueue","payload":{"type":"x","payload":${
        deep(1_000)
      }},"headers":[]}`
      await run.http(
        "#3",
        rpcHttp(run, "RPC-HTTP Enqueue nested 1,000 deep", `${line}\n`, ["1"]),
        (a) =>
          rpcError(lines(a.body), "1")?._tag === "InvalidRequest" ? [] : ["want a typed InvalidRequest for request 1"]
      )
      await run.ws(
        "#3",
        rpcWs(run, "RPC-WS Enqueue nested 1,000 deep", [text(line)], ["1"]),
        (a) => rpcError(a.messages, "1")?._tag === "InvalidRequest" ? [] : ["want a typed InvalidRequest for request 1"]
      )
    }
  },
  {
    label: "#4",
    name: "#4 TRACE; RPC frames without payload or with malformed headers; deep bodies on every other mutation",
    run: async (run, setup) => {
      for (
        const [path, allow] of [["/v1/stats", ["GET"]], ["/v1/jobs", ["GET", "POST"]], ["/rpc", ["POST"]], [
          "/healthz",
          ["GET"]
        ]] as const
      ) {
        await run.http("#4", rest(run, `TRACE ${path}`, "TRACE", path, undefined, {}, { route: "wrong-method", allow }))
      }
      await run.http(
        "#4",
        rpcHttp(run, "a Stats frame without payload", "{\"_tag\":\"Request\",\"id\":\"1\",\"tag\":\"Stats\"}\n", ["1"]),
        (a) => rpcError(lines(a.body), "1") === undefined ? [] : ["Stats without a payload must succeed"]
      )
      await run.http(
        "#4",
        rpcHttp(run, "a frame with headers [[1,2]]", `${rpcLine("1", "Stats", {}, { headers: [[1, 2]] })}\n`, ["1"]),
        (a) =>
          rpcError(lines(a.body), "1")?._tag === "InvalidRequest" ? [] : ["want a typed InvalidRequest for request 1"]
      )
      const id = setup.fuzzIds[1]!
      for (
        const path of [
          "/v1/jobs/claim",
          `/v1/jobs/${id}/heartbeat`,
          `/v1/jobs/${id}/fail`,
          `/v1/jobs/${id}/release`,
          "/v1/dead/retry",
          "/v1/pause",
          "/v1/resume"
        ]
      ) {
        await run.http(
          "#4",
          rest(run, `POST ${path} with 100,000 nested arrays`, "POST", path, deep(100_000), {}, { mustRefuse: true })
        )
      }
    }
  },
  {
    label: "#5",
    name: "#5 raw HTTP: a chunk size of 2^64-1, a Content-Length larger than the body",
    run: async (run) => {
      await rawCase(run, "#5", "chunk size FFFFFFFFFFFFFFFF", [
        rawRequest(
          run,
          "POST /v1/jobs HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked",
          "FFFFFFFFFFFFFFFF\r\n{\"type\":\"x\"}"
        )
      ], slowClientBudgetMs)
      await rawCase(run, "#5", "Content-Length 100, 12 bytes sent", [
        rawRequest(
          run,
          "POST /v1/jobs HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100",
          "{\"type\":\"x\"}"
        )
      ], slowClientBudgetMs)
      await rawCase(run, "#5", "Content-Length 100 on /rpc, 12 bytes sent", [
        rawRequest(
          run,
          "POST /rpc HTTP/1.1\r\nContent-Type: application/ndjson\r\nContent-Length: 100",
          "{\"_tag\":\"Re"
        )
      ], slowClientBudgetMs)
    }
  },
  {
    label: "#6",
    name: "#6 invalid RPC payloads are typed InvalidRequest naming the field, over HTTP and WebSocket",
    run: async (run) => {
      const cases: ReadonlyArray<[string, unknown, string]> = [
        ["Enqueue", { type: 5 }, "type"],
        ["Claim", { workerId: "" }, "workerId"],
        ["Fail", { token: "job-1/1/1", error: 7 }, "error"],
        ["List", { limit: 0 }, "limit"],
        ["Pause", { type: "" }, "type"]
      ]
      for (const [tag, payload, field] of cases) {
        const line = rpcLine("1", tag, payload)
        const named = (m: ReadonlyArray<string>) => {
          const error = rpcError(m, "1")
          return error?._tag === "InvalidRequest" && JSON.stringify(error).includes(field)
            ? []
            : [`want InvalidRequest naming ${field}, got ${JSON.stringify(error)}`]
        }
        await run.http(
          "#6",
          rpcHttp(run, `RPC-HTTP ${tag} ${JSON.stringify(payload)}`, `${line}\n`, ["1"]),
          (a) => named(lines(a.body))
        )
        await run.ws(
          "#6",
          rpcWs(run, `RPC-WS ${tag} ${JSON.stringify(payload)}`, [text(line)], ["1"]),
          (a) => named(a.messages)
        )
      }
    }
  },
  {
    label: "#7",
    name: "#7 GET /docs and /v1/openapi.json with Upgrade: websocket, hung up after a few bytes",
    run: async (run) => {
      for (const path of ["/docs", "/v1/openapi.json", "/", "/v1/stats", "/metrics"]) {
        for (let i = 0; i < 3; i++) {
          await rawCase(
            run,
            "#7",
            `GET ${path} with Upgrade, hung up after 10 bytes`,
            [
              `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`
            ],
            budgetMs,
            { hangUpAfterBytes: 10 }
          )
        }
        await run.http(
          "#7",
          rest(run, `GET /healthz after hanging up on ${path}`, "GET", "/healthz", undefined, {}, { route: "ops" }),
          (a) => (a.status === 200 ? [] : ["the broker must still answer"])
        )
      }
    }
  },
  {
    label: "#8",
    name: "#8 numbers past their bounds are refused and commit nothing; the queue still reads back",
    run: async (run) => {
      const type = unique("bounds")
      const refused: ReadonlyArray<[string, string]> = [
        ["delayMs at MAX_SAFE_INTEGER", `{"type":"${type}","delayMs":9007199254740991}`],
        ["delayMs past ten years", `{"type":"${type}","delayMs":${maxDelayMs + 1}}`],
        ["runAt past the last Date", `{"type":"${type}","runAt":${maxInstant + 1}}`],
        [
          "backoff baseMs at MAX_SAFE_INTEGER",
          `{"type":"${type}","backoff":{"_tag":"exponential","baseMs":9007199254740991,"maxMs":1000,"jitter":0}}`
        ],
        ["backoff delayMs 1e400", `{"type":"${type}","backoff":{"_tag":"fixed","delayMs":1e400}}`],
        ["priority 1e21", `{"type":"${type}","priority":1e21}`],
        ["maxAttempts 2^53+2", `{"type":"${type}","maxAttempts":9007199254740994}`]
      ]
      for (const [what, body] of refused) {
        await run.http("#8", rest(run, `enqueue with ${what}`, "POST", "/v1/jobs", body, {}, { mustRefuse: true }))
      }
      await run.http(
        "#8",
        rpcHttp(
          run,
          "RPC Enqueue with delayMs at MAX_SAFE_INTEGER",
          `${rpcLine("1", "Enqueue", { type, delayMs: Number.MAX_SAFE_INTEGER })}\n`,
          ["1"]
        ),
        (a) => rpcError(lines(a.body), "1")?._tag === "InvalidRequest" ? [] : ["want InvalidRequest"]
      )
      const left = await jobsOfType(run, type)
      if (left !== 0) {
        run.fail("#8", "refused enqueues committed nothing", [
          `${left} jobs of the refused requests' type were committed`
        ])
      }

      const job = await claimedJob(run, unique("fail-bounds"))
      await run.http(
        "#8",
        rest(
          run,
          "fail with retryDelayMs at MAX_SAFE_INTEGER",
          "POST",
          `/v1/jobs/${job.id}/fail`,
          JSON.stringify({ token: job.token, error: "x", retryDelayMs: Number.MAX_SAFE_INTEGER }),
          {},
          { mustRefuse: true }
        )
      )
      const after = await must<{ state: string }>(run.broker, "GET", `/v1/jobs/${job.id}`)
      if (after.state !== "running") {
        run.fail("#8", "a refused fail changed nothing", [`the job is ${after.state}, not running`])
      }
      await run.http(
        "#8",
        rest(
          run,
          "complete after the refused fail",
          "POST",
          `/v1/jobs/${job.id}/complete`,
          JSON.stringify({ token: job.token })
        ),
        (a) => a.status === 200 ? [] : ["the lease must still hold after a refused fail"]
      )
    }
  },
  {
    label: "#9",
    name: "#9 unbounded strings in the state; one request's answers",
    run: async (run) => {
      await run.http(
        "#9",
        rest(run, "pause a 1 MB type", "POST", "/v1/pause", JSON.stringify({ type: "t".repeat(1_000_000) }), {}, {
          mustRefuse: true
        })
      )
      const stats = Array.from({ length: 300 }, (_, i) => rpcLine(String(i + 1), "Stats")).join("\n") + "\n"
      await run.http(
        "#9",
        rpcHttp(run, "300 Stats lines in one body", stats, Array.from({ length: 300 }, (_, i) => String(i + 1))),
        (a) => a.body.length > 10_000_000 ? [`the answer to 300 Stats is ${a.body.length} bytes`] : []
      )
      const many = Array.from({ length: 20_000 }, (_, i) => rpcLine(String(i + 1), "Stats")).join("\n") + "\n"
      await run.http(
        "#9",
        rpcHttp(run, "20,000 Stats lines in one body", many, Array.from({ length: 20_000 }, (_, i) => String(i + 1))),
        (a) => a.body.length > 80 * 1024 * 1024 ? [`the answer to 20,000 Stats is ${a.body.length} bytes`] : []
      )
    }
  },
  {
    label: "#10",
    name: "#10 WebSocket frames of 20 MB and 90 MB are refused before they are read whole",
    run: async (run) => {
      for (const megabytes of [20, 90]) {
        const payload = Buffer.alloc(megabytes * 1024 * 1024, 0x20)
        payload.write(rpcLine("1", "Enqueue", { type: "x" }).slice(0, -1) + ",\"pad\":\"", 0)
        const answer = await sendWs(run.broker.target, {
          path: rpcWs(run, "", [], []).probe.path,
          headers: {},
          frames: [encodeFrame({ opcode: opcodes.text, payload })],
          expectIds: ["1"]
        })
        run.counts["rpc-ws"]++
        const problems: Array<string> = []
        if (answer.status !== 101) problems.push(`the upgrade answered ${answer.status}`)
        if (answer.sentAll) {
          problems.push(`the broker read the whole ${megabytes} MB frame (its limit is the body limit)`)
        }
        if (answer.ms > budgetMs) problems.push(`closed after ${Math.round(answer.ms)} ms`)
        if (problems.length > 0) {
          run.fail(
            "#10",
            `a ${megabytes} MB frame`,
            problems,
            `WebSocket text frame of ${payload.length} bytes`,
            `${answer.status} close ${JSON.stringify(answer.close)} messages ${
              answer.messages.map((m) => m.slice(0, 200)).join(" | ")
            }`
          )
        }
      }
      // just past the body limit: the connection is closed as too big (1009; the close frame may be
      // lost to the reset when the broker hangs up while the client still writes), the broker goes on
      const over = Buffer.alloc(maxBodyBytes + 1_024, 0x20)
      over.write(rpcLine("1", "Stats").slice(0, -1) + ",\"pad\":\"", 0)
      over.write("\"}", over.length - 2)
      const answer = await sendWs(run.broker.target, {
        path: rpcWs(run, "", [], []).probe.path,
        headers: {},
        frames: [encodeFrame({ opcode: opcodes.text, payload: over })],
        expectIds: ["1"]
      })
      run.counts["rpc-ws"]++
      const closed = answer.close === undefined ? answer.closedByBroker : answer.close.code === 1009
      if (!closed || answer.ms > budgetMs) {
        run.fail(
          "#10",
          "a frame 1 KB over the body limit",
          [`want close 1009 within ${budgetMs} ms, got ${
            JSON.stringify(answer.close) ?? (answer.closedByBroker ? "a hang-up" : "nothing")
          } after ${Math.round(answer.ms)} ms`],
          `WebSocket text frame of ${over.length} bytes`,
          answer.messages.map((m) => m.slice(0, 200)).join(" | ")
        )
      }
      // just under it, with a payload over the payload limit: a typed PayloadTooLarge for that request
      await run.ws(
        "#10",
        rpcWs(run, "an Enqueue of 300 KB in one frame", [
          text(rpcLine("1", "Enqueue", { type: "x", payload: "p".repeat(300_000) }))
        ], ["1"]),
        (a) =>
          rpcError(a.messages, "1")?._tag === "PayloadTooLarge"
            ? []
            : [`want PayloadTooLarge, got ${JSON.stringify(rpcError(a.messages, "1"))}`]
      )
    }
  },
  {
    label: "#11",
    name:
      "#11 cross-site requests: text/plain RPC from a foreign Origin, a body without content type, a foreign WebSocket",
    run: async (run) => {
      const type = unique("cross-site")
      await run.http(
        "#11",
        rpcHttp(
          run,
          "Enqueue over /rpc as text/plain from http://evil.example",
          `${rpcLine("1", "Enqueue", { type })}\n`,
          ["1"],
          { "content-type": "text/plain", origin: "http://evil.example" },
          { mustRefuse: true }
        )
      )
      const bare = rest(run, "POST /v1/jobs without a content type", "POST", "/v1/jobs", JSON.stringify({ type }), {}, {
        mustRefuse: true
      })
      await run.http("#11", { ...bare, probe: { ...bare.probe, headers: authHeaders(run.broker) } })
      await run.http(
        "#11",
        rest(run, "POST /v1/jobs from http://evil.example", "POST", "/v1/jobs", JSON.stringify({ type }), {
          origin: "http://evil.example"
        }, { mustRefuse: true })
      )
      const left = await jobsOfType(run, type)
      if (left !== 0) {
        run.fail("#11", "cross-site mutations ran nothing", [`${left} jobs were enqueued by cross-site requests`])
      }
      const ws = rpcWs(run, "a WebSocket upgrade from http://evil.example", [text(rpcLine("1", "Stats"))], [], {
        mayClose: true
      }, { origin: "http://evil.example" })
      await run.ws("#11", ws, (a) => (a.status === 101 ? ["a WebSocket from a foreign Origin must be refused"] : []))
    }
  },
  {
    label: "#12",
    name: "#12 lease tokens forged from what GET /v1/jobs/:id shows complete nothing",
    run: async (run, setup) => {
      const running = [...setup.sentinels.values()].filter((job) => job.state === "running").slice(
        0,
        3
      ) as unknown as ReadonlyArray<{ id: string; claims: number; lease: { epoch: number } }>
      for (const job of running) {
        for (
          const token of [
            `${job.id}/${job.claims}/${job.lease.epoch}`,
            `${job.id}/${job.claims}/${job.lease.epoch}/${"A".repeat(22)}`
          ]
        ) {
          for (
            const [op, body] of [["complete", { token }], ["fail", { token, error: "forged" }], ["heartbeat", {
              token
            }], ["release", { token }]] as const
          ) {
            await run.http(
              "#12",
              rest(
                run,
                `${op} ${job.id} with the forged token ${token}`,
                "POST",
                `/v1/jobs/${job.id}/${op}`,
                JSON.stringify(body),
                {},
                { mustRefuse: true }
              )
            )
          }
        }
      }
      if (parseLeaseToken("job-1/1/1/AAAAAAAAAAAAAAAAAAAAAA") === undefined) {
        run.fail("#12", "the token parser", ["a four-part token does not parse"])
      }
    }
  },
  {
    label: "#13",
    name: "#13 after poison requests the broker still commits and says it is ready",
    run: async (run) => {
      await run.http(
        "#13",
        rest(run, "a poison enqueue", "POST", "/v1/jobs", `{"type":"x","payload":${deep(5_000)}}`, {}, {
          mustRefuse: true
        })
      )
      await run.http(
        "#13",
        rest(run, "an enqueue after it", "POST", "/v1/jobs", JSON.stringify({ type: unique("after-poison") })),
        (a) => (a.status === 201 ? [] : ["must commit"])
      )
      await run.http(
        "#13",
        rest(run, "GET /readyz", "GET", "/readyz", undefined, {}, { route: "ops" }),
        (a) => (a.status === 200 ? [] : ["must be ready"])
      )
    }
  },
  {
    label: "#15",
    name: "#15 an RPC line without a trailing newline runs; unknown fields on mutations are refused",
    run: async (run) => {
      await run.http("#15", rpcHttp(run, "a Stats line without a newline", rpcLine("1", "Stats"), ["1"]))
      await run.http(
        "#15",
        rest(run, "POST /v1/pause {\"typ\":\"email\"}", "POST", "/v1/pause", "{\"typ\":\"email\"}", {}, {
          mustRefuse: true
        }),
        (a) => a.status === 400 ? invalidNaming(a.body.toString(), "typ") : []
      )
      await run.http(
        "#15",
        rpcHttp(run, "RPC Pause {\"typ\":\"email\"}", `${rpcLine("1", "Pause", { typ: "email" })}\n`, ["1"]),
        (a) => {
          const error = rpcError(lines(a.body), "1")
          return error?._tag === "InvalidRequest" && JSON.stringify(error).includes("typ")
            ? []
            : [`want InvalidRequest naming typ, got ${JSON.stringify(error)}`]
        }
      )
      await run.http(
        "#15",
        rest(run, "enqueue with an unknown field", "POST", "/v1/jobs", "{\"type\":\"x\",\"priorty\":5}", {}, {
          mustRefuse: true
        })
      )
    }
  },
  // ---- our own ----
  {
    label: "raw",
    name: "raw HTTP: headers too large, a broken request line, smuggling, HTTP/2's preface, a pipeline, a slow client",
    run: async (run) => {
      const r = (
        what: string,
        chunks: ReadonlyArray<string | Buffer>,
        budget = budgetMs,
        options: Parameters<typeof rawCase>[5] = {}
      ) => rawCase(run, "raw", what, chunks, budget, options)
      const big = await r("100 KB of headers", [
        `GET /v1/stats HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(100_000)}\r\n\r\n`
      ])
      if (big.status !== 431 && big.status !== 400 && !big.answer.closedByBroker) {
        run.fail("raw", "100 KB of headers", [`status ${big.status}`])
      }
      await r("a request line of garbage", ["\u0000\u0001\u0002 garbage\r\n\r\n"])
      await r("a request line without a version", ["GET /v1/stats\r\n\r\n"])
      await r("HTTP/2's preface", ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"])
      await r("both Content-Length and Transfer-Encoding", [
        rawRequest(
          run,
          "POST /v1/jobs HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked",
          "0\r\n\r\nGET /state HTTP/1.1\r\nHost: x\r\n\r\n"
        )
      ])
      await r("a header with a bare LF and a NUL", ["GET /v1/stats HTTP/1.1\nHost: x\nX-A: a\u0000b\n\n"])
      const pipeline = Array.from({ length: 50 }, () => rawRequest(run, "GET /healthz HTTP/1.1")).join("")
      const count = (bytes: Buffer) => (bytes.toString("latin1").match(/HTTP\/1\.1 200/g) ?? []).length
      const piped = await r("50 pipelined requests", [pipeline], budgetMs, {
        complete: (bytes) => count(bytes) === 50 && bytes.toString("latin1").endsWith("}")
      })
      const answers = count(piped.answer.bytes)
      if (answers !== 50 && !piped.answer.closedByBroker) {
        run.fail("raw", "50 pipelined requests", [`${answers} answers`])
      }
      await r(
        "headers a byte every 200 ms, never finished",
        ["GET /v1/stats HTTP/1.1\r\n", ..."Host: x\r\nX-Slow: ".split(""), ..."a".repeat(200).split("")],
        slowClientBudgetMs,
        { gapMs: 200 }
      )
    }
  },
  {
    label: "limits",
    name: "bodies and limits: over the body limit, over the payload limit, an EnqueueMany over its cap, a long id",
    run: async (run) => {
      await run.http(
        "limits",
        rest(run, "a 9 MB body", "POST", "/v1/jobs", `{"type":"x","payload":${marker("huge", 9_000_000)}}`, {}, {
          mustRefuse: true
        })
      )
      await run.http(
        "limits",
        rest(
          run,
          "a payload of 256 KiB + 1 KB",
          "POST",
          "/v1/jobs",
          `{"type":"x","payload":${marker("huge", 263_000)}}`,
          {},
          { mustRefuse: true }
        )
      )
      await run.http(
        "limits",
        rest(
          run,
          "EnqueueMany with 10,001 jobs",
          "POST",
          "/v1/jobs/batch",
          JSON.stringify({ jobs: Array.from({ length: 10_001 }, () => ({ type: "x" })) }),
          {},
          { mustRefuse: true }
        )
      )
      await run.http("limits", rest(run, "an id of 129 characters", "GET", `/v1/jobs/${"j".repeat(129)}`))
      await run.http(
        "limits",
        rest(run, "CompleteMany with no items", "POST", "/v1/jobs/batch/complete", "{\"items\":[]}", {}, {
          mustRefuse: true
        })
      )
    }
  },
  {
    label: "flows",
    name:
      "flows (docs/flows.md): too deep, too many jobs, nested past the JSON depth, a key named twice, a child's payload too large, over REST and RPC",
    run: async (run) => {
      const deep = (
        levels: number
      ): unknown => (levels === 1 ? { type: "x" } : { type: "x", children: [deep(levels - 1)] })
      const refused = { mustRefuse: true }
      const flow = (what: string, body: unknown) =>
        run.http("flows", rest(run, what, "POST", "/v1/flows", JSON.stringify(body), {}, refused))
      await flow("a flow of 11 levels", { job: deep(11) })
      await flow("a flow of 1,001 jobs", {
        job: { type: "x", children: Array.from({ length: 1_000 }, () => ({ type: "x" })) }
      })
      await flow("a flow nested 40 levels (past the JSON depth)", { job: deep(40) })
      const key = unique("flow-key")
      await flow("a flow naming one key twice", {
        job: { type: "x", children: [{ type: "x", idempotencyKey: key }, { type: "x", idempotencyKey: key }] }
      })
      await run.http(
        "flows",
        rest(
          run,
          "a flow whose child's payload is 256 KiB + 1 KB",
          "POST",
          "/v1/flows",
          `{"job":{"type":"x","children":[{"type":"x","payload":${marker("huge", 263_000)}}]}}`,
          {},
          refused
        )
      )
      await run.http(
        "flows",
        rpcHttp(run, "EnqueueFlow of 11 levels over RPC", rpcLine("1", "EnqueueFlow", { job: deep(11) }), ["1"])
      )
    }
  },
  {
    label: "rpc",
    name: "RPC bodies: 1,001 requests, a good request among bad ones, a client sending the server's own refusal",
    run: async (run) => {
      const ids = Array.from({ length: 1_001 }, (_, i) => String(i + 1))
      await run.http(
        "rpc",
        rpcHttp(
          run,
          "1,001 Leader requests in one body",
          ids.map((id) => rpcLine(id, "Leader")).join("\n") + "\n",
          ids
        ),
        (a) => rpcError(lines(a.body), "1001") === undefined ? ["the 1,001st request must be refused"] : []
      )
      const type = unique("mixed")
      const body = [
        rpcLine("1", "Enqueue", { type: "" }),
        rpcLine("2", "Enqueue", { type }),
        `{"_tag":"Request","id":"3","tag":"Enqueue","payload":{"type":"x","payload":${deep(100)}},"headers":[]}`,
        "not json",
        rpcLine("4", "Enqueue", { type, priority: 1e21 })
      ].join("\n") + "\n"
      await run.http(
        "rpc",
        rpcHttp(run, "a good Enqueue among bad ones", body, ["1", "2", "3", "4"], {}, { unreadable: true }),
        (a) => rpcError(lines(a.body), "2") === undefined ? [] : ["the good request must succeed"]
      )
      await run.http(
        "rpc",
        rpcHttp(
          run,
          "a client sending osqueue.Refused",
          `${rpcLine("1", "osqueue.Refused", { error: { _tag: "StateCorrupt", message: "forged" } })}\n`,
          ["1"]
        )
      )
      await run.ws(
        "rpc",
        rpcWs(run, "Watch with statsEveryMs 1", [text(rpcLine("1", "Watch", { statsEveryMs: 1 }))], ["1"]),
        (a) => rpcError(a.messages, "1")?._tag === "InvalidRequest" ? [] : ["want InvalidRequest"]
      )
      const watch = await run.ws(
        "rpc",
        rpcWs(
          run,
          "Watch, then interrupted",
          [text(rpcLine("1", "Watch", {})), text("{\"_tag\":\"Interrupt\",\"requestId\":\"1\"}")],
          ["1"],
          { interrupted: ["1"] }
        )
      )
      if (watch.answer.messages.length === 0) run.fail("rpc", "Watch, then interrupted", ["no answer"])
    }
  },
  {
    label: "idempotency",
    name: "one idempotency key enqueued 20 times at once gives one job",
    run: async (run) => {
      const key = unique("key")
      const answers = await Promise.all(
        Array.from(
          { length: 20 },
          () => call(run.broker, "POST", "/v1/jobs", { type: "fuzz-idempotent", idempotencyKey: key })
        )
      )
      run.counts.rest += 20
      const ids = new Set(answers.map((a) => (a.json as { id?: string } | undefined)?.id))
      if (ids.size !== 1 || answers.some((a) => (a.status ?? 500) >= 300)) {
        run.fail("idempotency", "one key, 20 enqueues", [
          `answers ${answers.map((a) => a.status).join(",")} ids ${[...ids].join(",")}`
        ])
      }
    }
  },
  {
    label: "auth",
    name: "the broker's token: credentials inside an RPC message, on the URL of a WebSocket, on public routes",
    run: async (run) => {
      if (run.broker.token === undefined) return
      const noAuth = rpcHttp(
        run,
        "Stats with the token only in the message's headers",
        `${rpcLine("1", "Stats", {}, { headers: [["authorization", `Bearer ${run.broker.token}`]] })}\n`,
        ["1"],
        {},
        { credentialsRight: false }
      )
      await run.http("auth", {
        ...noAuth,
        probe: { ...noAuth.probe, headers: { "content-type": "application/ndjson" } }
      })
      await run.ws("auth", {
        what: "a WebSocket without the token",
        probe: {
          ...rpcWs(run, "", [text(rpcLine("1", "Stats"))], [], { credentialsRight: false }).probe,
          path: "/rpc/ws"
        }
      })
      await run.ws("auth", {
        what: "a WebSocket with a wrong token",
        probe: {
          ...rpcWs(run, "", [text(rpcLine("1", "Stats"))], [], { credentialsRight: false }).probe,
          path: "/rpc/ws?token=wrong"
        }
      })
      for (const path of ["/healthz", "/readyz", "/docs", "/v1/openapi.json"]) {
        await run.http("auth", {
          what: `${path} without the token`,
          probe: { ...rest(run, "", "GET", path, undefined, {}, { route: "ops" }).probe, headers: {} }
        }, (a) => (a.status === 200 ? [] : ["a public route must answer without the token"]))
      }
      for (const path of ["/state", "/metrics", "/v1/stats"]) {
        await run.http("auth", {
          what: `${path} without the token`,
          probe: {
            ...rest(run, "", "GET", path, undefined, {}, { route: "ops", credentialsRight: false }).probe,
            headers: {}
          }
        }, (a) => (a.status === 401 ? [] : [`want 401, got ${a.status}`]))
      }
    }
  }
]

/** On a broker that just started, before anything else: `/v1/stats` answers at once (#14), on every transport. */
export const idleStats = async (run: Run): Promise<void> => {
  const fast = 1_000
  const within = (
    ms: number
  ) => (ms > fast ? [`answered after ${Math.round(ms)} ms on an idle broker (want under ${fast} ms)`] : [])
  await Promise.all([
    run.http("#14", rest(run, "GET /v1/stats on an idle broker", "GET", "/v1/stats"), (a) => within(a.ms)),
    run.http(
      "#14",
      rpcHttp(run, "RPC-HTTP Stats on an idle broker", `${rpcLine("1", "Stats")}\n`, ["1"]),
      (a) => within(a.ms)
    ),
    run.ws(
      "#14",
      rpcWs(run, "RPC-WS Stats on an idle broker", [text(rpcLine("1", "Stats"))], ["1"]),
      (a) => within(a.ms)
    )
  ])
}
