/**
 * `floor.ts` with the engine behind it: the same bare Node HTTP handling, each request's command
 * submitted to `Engine.layer` over the memory store (`GroupCommit.submitAll` of the calls that
 * arrived in one event-loop turn, as the broker's edge gathers them) and answered with the job as
 * JSON. No routes, admission, schema checks, metrics, `Operations` or stats history: what a
 * broker with no edge of its own would spend per call. `ops.ts --transport engine` measures it
 * beside the broker, whose CPU above it is the edge's (docs/performance.md).
 *
 * With `--http-thread` (`ops.ts --transport engine-threads`) Node's HTTP runs in a worker thread:
 * it reads and answers the requests, and sends each turn's requests (id, URL, body text) to the
 * main thread in one message, which parses them, runs the engine and sends the turn's answers
 * back in one message. What the main thread is spared when a broker's HTTP is in a thread of
 * its own (docs/performance.md, "The HTTP in a thread of its own").
 *
 *   node --import tsx floor-engine.ts PORT [--http-thread]
 */
import { type Command, Engine, EngineConfig, GroupCommit } from "@osqueue/core"
import { MemoryStore } from "@osqueue/storage"
import { type Job, type LeaseToken, publicJob } from "@osqueue/types"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { createServer, type ServerResponse } from "node:http"
import { Worker } from "node:worker_threads"

const port = Number(process.argv[2])
const httpThread = process.argv.includes("--http-thread")

/** An answer: its status and its body's JSON. */
type Answer = readonly [status: number, body: string]

/** The command of a request to `url` with body `body`, and how its outcome is answered. */
const commandOf = (url: string, body: Record<string, unknown>): readonly [Command, (value: unknown) => Answer] => {
  if (url === "/v1/jobs") {
    return [
      { _tag: "Enqueue", jobs: [body as { readonly type: string }] },
      (jobs) => [201, JSON.stringify(publicJob((jobs as ReadonlyArray<Job>)[0]!))]
    ]
  }
  if (url === "/v1/jobs/claim") {
    return [
      { _tag: "Claim", workerId: String(body.workerId), max: 1 },
      (claimed) => [
        200,
        JSON.stringify(
          (claimed as ReadonlyArray<{ readonly job: Job; readonly token: LeaseToken }>).map(({ job, token }) => ({
            job: publicJob(job),
            token
          }))
        )
      ]
    ]
  }
  return [{ _tag: "Complete", token: body.token as LeaseToken }, (job) => [200, JSON.stringify(publicJob(job as Job))]]
}

const send = (response: ServerResponse, [status, body]: Answer) => {
  response.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) })
  response.end(body)
}

/**
 * The worker thread's HTTP (plain JavaScript: a worker does not inherit `tsx`): each turn's
 * requests as one message of `[id, url, body, id, url, body, …]`, answered by one of
 * `[id, status, body, …]`.
 */
const httpInThread = `
const { parentPort, workerData } = require("node:worker_threads")
const { createServer } = require("node:http")
const waiting = new Map()
let next = 0
let turn = []
const flush = () => {
  const requests = turn
  turn = []
  parentPort.postMessage(requests)
}
parentPort.on("message", (answers) => {
  for (let i = 0; i < answers.length; i += 3) {
    const response = waiting.get(answers[i])
    waiting.delete(answers[i])
    const body = answers[i + 2]
    response.writeHead(answers[i + 1], { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) })
    response.end(body)
  }
})
createServer((request, response) => {
  if (request.method === "GET") return void response.end("{}")
  const chunks = []
  request.on("data", (chunk) => chunks.push(chunk))
  request.on("end", () => {
    const id = next++
    waiting.set(id, response)
    if (turn.length === 0) setImmediate(flush)
    turn.push(id, request.url, Buffer.concat(chunks).toString("utf8"))
  })
}).listen(workerData.port, "127.0.0.1")
`

const serve = Effect.gen(function*() {
  const scope = yield* Scope.make()
  const layer = Engine.layer.pipe(
    Layer.provide(MemoryStore.layer),
    Layer.provide(EngineConfig.layer({ advertisedUrl: `http://127.0.0.1:${port}` }))
  )
  const commit = Context.get(yield* Layer.buildWithScope(layer, scope), GroupCommit.GroupCommit)
  // Lead first: a submit before the takeover is refused.
  while ((yield* Effect.either(commit.submit({ _tag: "Pause", type: "floor-warm-up" })))._tag === "Left") {
    yield* Effect.sleep(10)
  }

  /** Runs one turn's commands together and answers each. */
  const submitAll = (commands: Array<Command>, answer: (i: number, value: unknown) => void, done?: () => void) =>
    Effect.runCallback(commit.submitAll(commands), {
      onExit: (exit) => {
        if (exit._tag === "Failure") throw new Error(`the engine failed a batch: ${String(exit.cause)}`)
        exit.value.forEach((outcome, i) => {
          if (outcome._tag === "Left") throw new Error(`the engine refused a call: ${outcome.left.message}`)
          answer(i, outcome.right)
        })
        done?.()
      }
    })

  if (httpThread) {
    const worker = new Worker(httpInThread, { eval: true, workerData: { port }, execArgv: [] })
    worker.on("message", (requests: Array<number | string>) => {
      const commands: Array<Command> = []
      const answerers: Array<(value: unknown) => Answer> = []
      for (let i = 0; i < requests.length; i += 3) {
        const [command, answerOf] = commandOf(requests[i + 1] as string, JSON.parse(requests[i + 2] as string))
        commands.push(command)
        answerers.push(answerOf)
      }
      const answers: Array<number | string> = []
      submitAll(
        commands,
        (i, value) => answers.push(requests[3 * i]!, ...answerers[i]!(value)),
        () => worker.postMessage(answers)
      )
    })
    return yield* Effect.never
  }

  let commands: Array<Command> = []
  let answers: Array<(value: unknown) => void> = []
  const flush = () => {
    const respond = answers
    const batch = commands
    commands = []
    answers = []
    submitAll(batch, (i, value) => respond[i]!(value))
  }
  createServer((request, response) => {
    // Ready once it answers: `ops.ts` polls `GET /v1/stats` as it does a broker's.
    if (request.method === "GET") return void response.end("{}")
    const url = request.url ?? ""
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const [command, answerOf] = commandOf(url, JSON.parse(Buffer.concat(chunks).toString("utf8")))
      if (commands.length === 0) setImmediate(flush)
      commands.push(command)
      answers.push((value) => send(response, answerOf(value)))
    })
  }).listen(port, "127.0.0.1")
  return yield* Effect.never
})

// A profiled run (`ops.ts --profile`) stops it with SIGTERM: exiting writes the profile.
process.on("SIGTERM", () => process.exit(0))
Effect.runPromise(serve.pipe(Effect.withTracerEnabled(false)))
