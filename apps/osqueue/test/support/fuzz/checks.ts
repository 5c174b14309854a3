/**
 * What every answer must be, whatever was asked: no 5xx, no Defect, no answer slower than the
 * budget, a 4xx that says what was wrong as a tagged JSON error, every RPC request answered, a
 * protected route closed to wrong credentials. A probe's `Expect` says which rules apply.
 */
import { isOsqueueError } from "@osqueue/types"
import type { HttpProbe, WsProbe } from "./probes.js"
import type { HttpAnswer, WsAnswer } from "./wire.js"

/** Most milliseconds an answer may take, beyond the wait the request asked for. */
export const budgetMs = 2_000

/** Errors that say the broker failed, not the client: as bad as a 5xx. */
const serverSideErrors: ReadonlySet<string> = new Set(["CommitFailed", "StateCorrupt", "QueueFull"])

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** A JSON error with a `_tag`: what a client's mistake is answered with. */
const isTagged = (body: Buffer): boolean => {
  const value = parse(body.toString("utf8"))
  return isRecord(value) && typeof value._tag === "string"
}

/** Problems in a cause: a Die (Defect) or an Interrupt nobody asked for, or an error that is not ours. */
const causeProblems = (cause: unknown, out: Array<string>) => {
  if (!isRecord(cause)) return out.push(`a failure without a cause: ${JSON.stringify(cause)}`)
  switch (cause._tag) {
    case "Fail":
      if (!isOsqueueError(cause.error)) {
        out.push(`a failure that is not an OsqueueError: ${JSON.stringify(cause.error).slice(0, 300)}`)
      } else if (serverSideErrors.has(cause.error._tag)) out.push(`a server-side error ${cause.error._tag}`)
      return
    case "Die":
      return out.push(`a Defect: ${JSON.stringify(cause.defect).slice(0, 300)}`)
    case "Interrupt":
      return out.push("an Interrupt")
    case "Sequential":
    case "Parallel":
      causeProblems(cause.left, out)
      causeProblems(cause.right, out)
      return
    default:
      return out.push(`an unexpected cause ${String(cause._tag)}`)
  }
}

/**
 * Problems in a stream of RPC messages from the broker: anything that is not JSON, a Defect
 * message, an Exit that is not a success or an OsqueueError, and the ids that got no Exit.
 */
export const rpcProblems = (
  messages: ReadonlyArray<string>,
  expectIds: ReadonlyArray<string>,
  unreadable: boolean,
  excuseMissing: boolean,
  interrupted: ReadonlyArray<string> = []
): Array<string> => {
  const problems: Array<string> = []
  const answered = new Map<string, number>()
  for (const text of messages) {
    if (text.trim() === "") continue
    const parsed = parse(text)
    if (parsed === undefined) {
      problems.push(`an answer that is not JSON: ${text.slice(0, 200)}`)
      continue
    }
    for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
      if (!isRecord(message)) {
        problems.push(`an answer that is not a message: ${JSON.stringify(message).slice(0, 200)}`)
        continue
      }
      if (message._tag === "Defect") problems.push(`a Defect message: ${JSON.stringify(message.defect).slice(0, 300)}`)
      if (message._tag === "ClientProtocolError") {
        problems.push(`a protocol error: ${JSON.stringify(message).slice(0, 300)}`)
      }
      if (message._tag !== "Exit") continue
      const id = String(message.requestId)
      answered.set(id, (answered.get(id) ?? 0) + 1)
      const exit = message.exit
      if (!isRecord(exit)) problems.push(`request ${id}: an Exit without an exit`)
      else if (exit._tag === "Failure" && interrupted.includes(id)) continue
      else if (exit._tag === "Failure") {
        const found: Array<string> = []
        causeProblems(exit.cause, found)
        for (const problem of found) problems.push(`request ${id}: ${problem}`)
      } else if (exit._tag !== "Success") problems.push(`request ${id}: an exit ${String(exit._tag)}`)
    }
  }
  if (!excuseMissing) {
    const missing = expectIds.filter((id) => !answered.has(id))
    if (missing.length > 0) problems.push(`no Exit for request${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`)
    if (unreadable && !answered.has("-1")) problems.push("no Exit for request -1 (a message whose id cannot be read)")
  }
  for (const id of expectIds) {
    if ((answered.get(id) ?? 0) > 1) problems.push(`request ${id} answered ${answered.get(id)} times`)
  }
  return problems
}

export interface Judge {
  /** Whether the broker asks for a token. */
  readonly tokenSet: boolean
}

/** A body this large may be cut off by the broker's hang-up after it answered (a refusal). */
const largeBodyBytes = 1024 * 1024

/**
 * A refusal that says what was wrong: a tagged JSON error, or on `/rpc` each request of the body
 * failed with one (the ids it could read, every one answered, nothing else in the answer).
 */
const isTaggedRefusal = (probe: HttpProbe, answer: HttpAnswer): boolean =>
  isTagged(answer.body) ||
  (probe.transport === "rpc-http" && answer.body.length > 0 &&
    rpcProblems(answer.body.toString("utf8").split("\n"), probe.expect.rpcIds, false, false, probe.expect.interrupted)
        .length === 0)

const isPublic = (path: string) => {
  const pathname = path.split("?")[0]!
  return ["/healthz", "/readyz", "/docs", "/v1/openapi.json", "/"].includes(pathname) || pathname.startsWith("/assets/")
}

/** Problems with the answer to an HTTP probe (REST or RPC over HTTP); `bodyBytes` is what was sent. */
export const httpProblems = (judge: Judge, probe: HttpProbe, answer: HttpAnswer, bodyBytes: number): Array<string> => {
  const { expect } = probe
  const problems: Array<string> = []
  if (answer.error?.startsWith("client:")) return problems // Node would not send it: nothing reached the broker
  if (answer.status === undefined) {
    // a broker may answer a large body it refuses and hang up before the client has written it
    // all: the client then sees the hang-up, not the answer
    const cutOff = bodyBytes > largeBodyBytes && /ECONNRESET|EPIPE|socket hang up/.test(answer.error ?? "")
    if (!cutOff) problems.push(`no answer: ${answer.error}`)
    return problems
  }
  if (answer.error !== undefined) problems.push(answer.error)
  const status = answer.status
  if (status >= 500) problems.push(`status ${status}`)
  if (answer.ms > budgetMs + expect.waitMs) {
    problems.push(`answered after ${Math.round(answer.ms)} ms (budget ${budgetMs + expect.waitMs} ms)`)
  }
  if (status === 431 || status === 408) return problems // Node's own refusals, before any route: no body
  // a CORS preflight carries no credentials (browsers send none): it may answer, as long as it runs nothing
  const locked = judge.tokenSet && !expect.credentialsRight && !isPublic(probe.path) && probe.method !== "OPTIONS"
  if (locked) {
    if (status < 400) problems.push(`status ${status} without the right credentials`)
    else if (status === 401 && probe.method !== "HEAD" && !isTaggedRefusal(probe, answer)) {
      problems.push("a 401 without a tagged JSON error")
    }
    return problems
  }
  if (expect.mustRefuse && (status < 400 || status >= 500)) {
    problems.push(`status ${status}: this request must be refused with a 4xx`)
  }
  switch (expect.route) {
    case "operation": {
      if (status >= 400 && status < 500 && probe.method !== "HEAD" && !isTaggedRefusal(probe, answer)) {
        problems.push(`a ${status} without a tagged JSON error`)
      }
      if (status >= 200 && status < 300) {
        if (
          probe.transport === "rest" && probe.method !== "HEAD" && answer.body.length > 0 &&
          parse(answer.body.toString("utf8")) === undefined
        ) {
          problems.push("a success whose body is not JSON")
        }
        if (probe.transport === "rpc-http") {
          problems.push(
            ...rpcProblems(
              answer.body.toString("utf8").split("\n"),
              expect.rpcIds,
              expect.unreadable,
              false,
              expect.interrupted
            )
          )
        }
      }
      if (probe.transport === "rpc-http" && status >= 300 && status < 400) problems.push(`status ${status}`)
      break
    }
    case "wrong-method": {
      if (status !== 405) problems.push(`status ${status} for a method the path does not serve (want 405 with Allow)`)
      else {
        const allow = String(answer.headers.allow ?? "").toUpperCase()
        const missing = (expect.allow ?? []).filter((m) => !allow.includes(m))
        if (allow === "" || missing.length > 0) {
          problems.push(`a 405 whose Allow (${allow || "absent"}) does not name ${missing.join(", ") || "the methods"}`)
        }
      }
      break
    }
    case "unknown":
      if (status < 400) problems.push(`status ${status} for a path nothing serves`)
      break
    case "ops":
      break
  }
  return problems
}

/** Problems with the answer to a WebSocket probe. */
export const wsProblems = (judge: Judge, probe: WsProbe, answer: WsAnswer): Array<string> => {
  const { expect } = probe
  const problems: Array<string> = []
  if (answer.status === undefined) {
    problems.push(`no answer to the upgrade: ${answer.error ?? "closed"}`)
    return problems
  }
  if (answer.status >= 500) problems.push(`status ${answer.status} to the upgrade`)
  const locked = judge.tokenSet && !expect.credentialsRight
  if (answer.status !== 101) {
    const refusalAllowed = locked || probe.headers.origin !== undefined
    if (!refusalAllowed) problems.push(`the upgrade refused: ${(answer.refusal ?? "").slice(0, 300)}`)
    else if (answer.status < 400 || answer.status >= 500) problems.push(`the upgrade answered ${answer.status}`)
    return problems
  }
  if (locked) problems.push("upgraded without the right credentials")
  if (answer.error !== undefined && !(expect.mayClose && answer.closedByBroker)) problems.push(answer.error)
  if (answer.ms > budgetMs + expect.waitMs) {
    problems.push(`answered after ${Math.round(answer.ms)} ms (budget ${budgetMs + expect.waitMs} ms)`)
  }
  if (answer.closedByBroker && !expect.mayClose) {
    problems.push(
      `the broker closed the connection${answer.close ? ` (${answer.close.code} ${answer.close.reason})` : ""}`
    )
  }
  problems.push(
    ...rpcProblems(
      answer.messages,
      expect.rpcIds,
      expect.unreadable,
      answer.closedByBroker && expect.mayClose,
      expect.interrupted
    )
  )
  return problems
}
