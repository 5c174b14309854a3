/**
 * The fuzz run around the probes: a real `osqueue broker` process on the file store, a monitor
 * that asks `/healthz` and `/readyz` twice a second and watches the process, a bounded pool that
 * sends probes concurrently, judges every answer (`checks.ts`) and keeps the failures with the
 * request and the answer to print.
 */
import { parseLeaseToken } from "@osqueue/types"
import { readFileSync } from "node:fs"
import { mkdir, mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { eventually, freePort, osqueue, type Running } from "../processes.js"
import { httpProblems, type Judge, wsProblems } from "./checks.js"
import type { HttpProbe, Named, Probe, WsProbe } from "./probes.js"
import { encode, LeasePool, render, truncate } from "./templates.js"
import {
  type HttpAnswer,
  type HttpRequest,
  sendHttp,
  sendWs,
  type Target,
  type WsAnswer,
  type WsFrame,
  type WsRequest
} from "./wire.js"

export interface Broker {
  readonly url: string
  readonly target: Target
  readonly proc: Running
  readonly dir: string
  readonly token: string | undefined
}

/** The broker's settings the suite relies on (defaults otherwise, so that the defaults are what is fuzzed). */
export const brokerEnv = {
  // the sentinels include finished jobs: the fuzz finishes many more, and must not push them out
  OSQUEUE_KEEP_FINISHED: "1000000",
  // a client that sends too little is cut off after these (defaults 5 and 8 s): shorter, so the run
  // is; not under 3 s, as a request that waited out a busy event loop would count as slow
  OSQUEUE_HEADERS_TIMEOUT_MS: "3000",
  OSQUEUE_REQUEST_TIMEOUT_MS: "4000"
}

/**
 * A dashboard build of two files: the real one may not be built when the tests run, and without
 * one `/` answers that there is none (a 503 that says nothing about hostile input).
 */
const dashboard = async (): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), "osqueue-fuzz-dashboard-"))
  await mkdir(join(dir, "assets"))
  await writeFile(
    join(dir, "index.html"),
    "<!doctype html><title>osqueue</title><script src=\"/assets/index.js\"></script>"
  )
  await writeFile(join(dir, "assets", "index.js"), "document.title = 'osqueue'")
  return dir
}

/** `osqueue broker` on `dir`, resolved once it leads. */
export const startBroker = async (
  dir: string,
  token: string | undefined,
  roleTokens: Readonly<Record<string, string>> = {}
): Promise<Broker> => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const proc = osqueue(["broker", "--port", String(port), "--host", "127.0.0.1", "--url", url, "--dir", dir], {
    ...brokerEnv,
    OSQUEUE_DASHBOARD_DIR: await dashboard(),
    OSQUEUE_TOKEN: token ?? "",
    OSQUEUE_TOKENS: Object.entries(roleTokens).map(([role, roleToken]) => `${role}:${roleToken}`).join(",")
  })
  const broker = { url, target: { host: "127.0.0.1", port }, proc, dir, token }
  await eventually(`${url} to lead`, async () => {
    if (proc.child.exitCode !== null) throw new Error(`the broker exited: ${proc.output()}`)
    const answer = await sendHttp(
      broker.target,
      { method: "GET", path: "/v1/leader", headers: authHeaders(broker) },
      2_000
    )
    return answer.status === 200 && JSON.parse(answer.body.toString()).role === "leader" ? true : undefined
  }, 60_000).catch((error) => {
    throw new Error(`${String(error)}\n${proc.output().slice(-3_000)}`)
  })
  return broker
}

export const authHeaders = (broker: { readonly token: string | undefined }): Record<string, string> =>
  broker.token === undefined ? {} : { authorization: `Bearer ${broker.token}` }

/** A JSON request with the broker's token; the answer's body parsed. */
export const call = async (broker: Broker, method: string, path: string, body?: unknown) => {
  const answer = await sendHttp(broker.target, {
    method,
    path,
    headers: { "content-type": "application/json", ...authHeaders(broker) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {})
  })
  const text = answer.body.toString("utf8")
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: answer.status, json, text, ms: answer.ms, error: answer.error }
}

/** Like `call`, but fails unless the answer is a 2xx. */
export const must = async <A = unknown>(broker: Broker, method: string, path: string, body?: unknown): Promise<A> => {
  const answer = await call(broker, method, path, body)
  if (answer.status === undefined || answer.status >= 300) {
    throw new Error(`${method} ${path}: ${answer.status ?? answer.error} ${answer.text.slice(0, 500)}`)
  }
  return answer.json as A
}

// ---------------------------------------------------------------------------------------------
// The monitor

export interface Monitor {
  readonly stop: () => Promise<void>
  readonly problems: Array<string>
  readonly peakRssBytes: () => number
}

const rssOf = (pid: number | undefined): number => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8")
    const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1]
    return kb === undefined ? 0 : Number(kb) * 1024
  } catch {
    return 0
  }
}

/**
 * Asks `/healthz` and `/readyz` every `everyMs` (each must answer 200 within the budget) and
 * notes the process's resident memory, until stopped.
 */
export const monitor = (broker: Broker, startedAt: number, everyMs = 500, budget = 2_000): Monitor => {
  const problems: Array<string> = []
  let peak = 0
  let running = true
  const loop = (async () => {
    while (running) {
      const at = ((performance.now() - startedAt) / 1000).toFixed(1)
      if (broker.proc.child.exitCode !== null || broker.proc.child.signalCode !== null) {
        problems.push(`+${at} s: the broker exited (${broker.proc.child.exitCode ?? broker.proc.child.signalCode})`)
        return
      }
      peak = Math.max(peak, rssOf(broker.proc.child.pid))
      for (const path of ["/healthz", "/readyz"]) {
        const answer = await sendHttp(broker.target, { method: "GET", path, headers: {} }, budget + 1_000)
        if (answer.status !== 200 || answer.ms > budget) {
          problems.push(
            `+${at} s: GET ${path} answered ${answer.status ?? answer.error} in ${Math.round(answer.ms)} ms ${
              truncate(answer.body.toString(), 200)
            }`
          )
        }
      }
      await new Promise((r) => setTimeout(r, everyMs))
    }
  })()
  return {
    problems,
    peakRssBytes: () => peak,
    stop: async () => {
      running = false
      await loop
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Sending probes, judging answers, keeping failures

export interface Failure {
  readonly label: string
  readonly what: string
  readonly problems: ReadonlyArray<string>
  readonly request: string
  readonly answer: string
}

const printHeaders = (headers: Readonly<Record<string, unknown>>) =>
  Object.entries(headers).map(([k, v]) => `  ${k}: ${truncate(String(v), 200)}`)

const printBody = (bytes: Buffer, encoding: string) =>
  bytes.length === 0
    ? []
    : [
      `  body (${bytes.length} bytes${encoding === "utf8" ? "" : `, ${encoding}`}): ${truncate(bytes.toString("utf8"))}`
    ]

export const printHttpRequest = (request: HttpRequest, encoding = "utf8"): string =>
  [
    `${request.method} ${truncate(request.path, 300)}`,
    ...printHeaders(request.headers),
    ...printBody(Buffer.from(request.body ?? ""), encoding)
  ].join("\n")

export const printHttpAnswer = (answer: HttpAnswer): string =>
  [
    `${answer.status ?? "no answer"} in ${Math.round(answer.ms)} ms${answer.error ? ` (${answer.error})` : ""}`,
    ...printHeaders(Object.fromEntries(
      Object.entries(answer.headers).filter(([k]) =>
        ["content-type", "allow", "www-authenticate", "connection"].includes(k)
      )
    )),
    ...printBody(answer.body, "utf8")
  ].join("\n")

export const printWsRequest = (request: WsRequest): string =>
  [
    `WebSocket GET ${truncate(request.path, 300)}`,
    ...printHeaders(request.headers),
    ...request.frames.map((frame, i) => {
      if (Buffer.isBuffer(frame)) return `  frame ${i + 1}: ${frame.length} raw bytes`
      const flags = [
        frame.fin === false ? "not final" : "",
        frame.rsv ? `rsv ${frame.rsv}` : "",
        frame.unmasked ? "unmasked" : ""
      ].filter(Boolean).join(", ")
      return `  frame ${i + 1}: opcode ${frame.opcode}${flags ? ` (${flags})` : ""}, ${frame.payload.length} bytes: ${
        truncate(frame.payload.toString("utf8"), 400)
      }`
    })
  ].join("\n")

export const printWsAnswer = (answer: WsAnswer): string =>
  [
    `${answer.status ?? "no answer"}${answer.refusal ? `: ${truncate(answer.refusal, 400)}` : ""}, last answer ${
      Math.round(answer.ms)
    } ms after the last frame${answer.error ? ` (${answer.error})` : ""}`,
    ...answer.messages.slice(0, 6).map((m) => `  message: ${truncate(m, 400)}`),
    ...(answer.messages.length > 6 ? [`  … ${answer.messages.length - 6} more messages`] : []),
    answer.close
      ? `  closed by the broker: ${answer.close.code} ${answer.close.reason}`
      : answer.closedByBroker
      ? "  the broker hung up"
      : "",
    answer.sentAll ? "" : "  (the broker hung up before every frame was sent)"
  ].filter(Boolean).join("\n")

/** Every token a claim answered with, into the pool (generated probes use them to reach real leases). */
const harvest = (text: string, leases: LeasePool) => {
  if (!text.includes("\"token\":\"")) return
  for (const match of text.matchAll(/"token":"([^"]{1,200})"/g)) {
    const parts = parseLeaseToken(match[1]!)
    if (parts !== undefined) leases.add({ jobId: parts.jobId, token: match[1]! })
  }
}

export interface HttpOutcome {
  readonly request: HttpRequest
  readonly answer: HttpAnswer
  readonly problems: ReadonlyArray<string>
}

export interface WsOutcome {
  readonly request: WsRequest
  readonly answer: WsAnswer
  readonly problems: ReadonlyArray<string>
}

/**
 * One broker's run: sends probes, judges them, counts them by transport and keeps the failures.
 * `label` names a probe so that it can be found and sent again.
 */
export class Run {
  readonly failures: Array<Failure> = []
  readonly counts = { rest: 0, "rpc-http": 0, "rpc-ws": 0, raw: 0 }
  /** Answer times by transport, for the summary. */
  readonly times: Record<"rest" | "rpc-http" | "rpc-ws", Array<number>> = { rest: [], "rpc-http": [], "rpc-ws": [] }
  readonly leases = new LeasePool()
  readonly judge: Judge
  /** Probes and cases being sent now: when the broker dies, one of them killed it. */
  readonly inFlight = new Set<string>()

  constructor(readonly broker: Broker) {
    this.judge = { tokenSet: broker.token !== undefined }
  }

  get total() {
    return this.counts.rest + this.counts["rpc-http"] + this.counts["rpc-ws"] + this.counts.raw
  }

  /** Answer times as `transport p50/p99/max`, for the summary. */
  timing(): string {
    return Object.entries(this.times).map(([transport, times]) => {
      const sorted = [...times].sort((a, b) => a - b)
      const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0)
      return `${transport} ${at(0.5)}/${at(0.99)}/${at(1)} ms`
    }).join(", ")
  }

  fail(label: string, what: string, problems: ReadonlyArray<string>, request = "", answer = "") {
    this.failures.push({ label, what, problems, request, answer })
  }

  /** Sends an HTTP probe and judges it; extra checks may add problems. */
  async http(
    label: string,
    named: Named<HttpProbe>,
    extra?: (answer: HttpAnswer) => ReadonlyArray<string>
  ): Promise<HttpOutcome> {
    const { probe } = named
    const body = probe.body === undefined ? undefined : encode(render(probe.body, this.leases), probe.encoding)
    const request: HttpRequest = {
      method: probe.method,
      path: render(probe.path, this.leases),
      headers: probe.headers,
      ...(body !== undefined ? { body } : {})
    }
    const answer = await sendHttp(this.broker.target, request)
    this.counts[probe.transport]++
    this.times[probe.transport].push(answer.ms)
    harvest(answer.body.toString("utf8"), this.leases)
    const problems = [...httpProblems(this.judge, probe, answer, body?.length ?? 0), ...(extra?.(answer) ?? [])]
    if (problems.length > 0) {
      this.fail(label, named.what, problems, printHttpRequest(request, probe.encoding._tag), printHttpAnswer(answer))
    }
    return { request, answer, problems }
  }

  /** Sends a WebSocket probe and judges it; extra checks may add problems. */
  async ws(
    label: string,
    named: Named<WsProbe>,
    extra?: (answer: WsAnswer) => ReadonlyArray<string>
  ): Promise<WsOutcome> {
    const { probe } = named
    const frames: Array<WsFrame> = probe.frames.map((f) => ({
      opcode: f.opcode,
      payload: encode(render(f.text, this.leases), f.encoding),
      ...(f.fin !== undefined ? { fin: f.fin } : {}),
      ...(f.rsv !== undefined ? { rsv: f.rsv } : {}),
      ...(f.unmasked !== undefined ? { unmasked: f.unmasked } : {})
    }))
    // a message whose id cannot be read is answered for -1: wait for that answer too
    const expectIds = probe.expect.unreadable ? [...probe.expect.rpcIds, "-1"] : probe.expect.rpcIds
    const request: WsRequest = { path: render(probe.path, this.leases), headers: probe.headers, frames, expectIds }
    const answer = await sendWs(this.broker.target, request)
    this.counts["rpc-ws"]++
    this.times["rpc-ws"].push(answer.ms)
    for (const message of answer.messages) harvest(message, this.leases)
    const problems = [...wsProblems(this.judge, probe, answer), ...(extra?.(answer) ?? [])]
    if (problems.length > 0) this.fail(label, named.what, problems, printWsRequest(request), printWsAnswer(answer))
    return { request, answer, problems }
  }

  /** Runs `task` as `label`, known to be in flight meanwhile; a case that throws is a failure. */
  async track(label: string, what: string, task: () => Promise<unknown>): Promise<void> {
    this.inFlight.add(label)
    try {
      await task()
    } catch (error) {
      this.fail(label, what, [`the case threw: ${String(error)}`])
    } finally {
      this.inFlight.delete(label)
    }
  }

  /** What the probes sent covered (`Named.covers`). */
  readonly covered = new Set<string>()

  async probe(label: string, named: Named<Probe>): Promise<void> {
    for (const what of named.covers ?? []) this.covered.add(what)
    if (named.probe.transport === "rpc-ws") await this.ws(label, named as Named<WsProbe>)
    else await this.http(label, named as Named<HttpProbe>)
  }
}

/**
 * Runs `tasks` at most `concurrency` at a time, in order of index; stops taking new ones once
 * `stop()` says so (the broker died: nothing after would say anything new).
 */
export const pool = async (
  tasks: ReadonlyArray<() => Promise<void>>,
  concurrency: number,
  stop: () => boolean
): Promise<void> => {
  let next = 0
  const worker = async () => {
    while (next < tasks.length && !stop()) {
      const task = tasks[next++]!
      await task()
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker))
}

/** The failures, grouped by their first problem, for the test's message: each group with its first example. */
export const report = (failures: ReadonlyArray<Failure>, replay: (label: string) => string, limit = 25): string => {
  const groups = new Map<string, Array<Failure>>()
  for (const failure of failures) {
    // a kind: the transport or route family, and the first problem with its numbers left out
    const key = `${failure.what.split(" ")[0]} :: ${failure.problems[0]!.replace(/\d+/g, "N").slice(0, 80)}`
    groups.set(key, [...(groups.get(key) ?? []), failure])
  }
  const sorted = [...groups.values()].sort((a, b) => a[0]!.request.length - b[0]!.request.length)
  const lines = [`${failures.length} failing probes in ${groups.size} kinds (the shortest request of each kind first):`]
  for (const group of sorted.slice(0, limit)) {
    const shortest = group.reduce((a, b) => (b.request.length < a.request.length ? b : a))
    lines.push(
      "",
      `✗ ${shortest.label}: ${shortest.what}${
        group.length > 1
          ? ` (and ${group.length - 1} more like it: ${
            group.slice(0, 8).filter((f) => f !== shortest).map((f) => f.label).join(", ")
          })`
          : ""
      }`,
      ...shortest.problems.map((p) => `  problem: ${p}`),
      `  replay: ${replay(shortest.label)}`,
      ...(shortest.request ? ["  request:", ...shortest.request.split("\n").map((l) => `    ${l}`)] : []),
      ...(shortest.answer ? ["  answer:", ...shortest.answer.split("\n").map((l) => `    ${l}`)] : [])
    )
  }
  if (sorted.length > limit) lines.push("", `… and ${sorted.length - limit} more kinds`)
  return lines.join("\n")
}
