/**
 * `floor.ts` with the engine behind it: the same bare Node HTTP handling, each request's command
 * submitted to `Engine.layer` over the memory store (`GroupCommit.submitAll` of the calls that
 * arrived in one event-loop turn, as the broker's edge gathers them) and answered with the job as
 * JSON. No routes, admission, schema checks, metrics, `Operations` or stats history: what a
 * broker with no edge of its own would spend per call. `ops.ts --transport engine` measures it
 * beside the broker, whose CPU above it is the edge's (docs/performance.md).
 *
 *   node --import tsx floor-engine.ts PORT
 */
import { type Command, Engine, EngineConfig, GroupCommit } from "@osqueue/core"
import { MemoryStore } from "@osqueue/storage"
import { type Job, type LeaseToken, publicJob } from "@osqueue/types"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { createServer, type ServerResponse } from "node:http"

const send = (response: ServerResponse, status: number, value: unknown) => {
  const body = JSON.stringify(value)
  response.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) })
  response.end(body)
}

const serve = Effect.gen(function*() {
  const scope = yield* Scope.make()
  const layer = Engine.layer.pipe(
    Layer.provide(MemoryStore.layer),
    Layer.provide(EngineConfig.layer({ advertisedUrl: `http://127.0.0.1:${process.argv[2]}` }))
  )
  const commit = Context.get(yield* Layer.buildWithScope(layer, scope), GroupCommit.GroupCommit)
  // Lead first: a submit before the takeover is refused.
  while ((yield* Effect.either(commit.submit({ _tag: "Pause", type: "floor-warm-up" })))._tag === "Left") {
    yield* Effect.sleep(10)
  }

  let commands: Array<Command> = []
  let answers: Array<(value: unknown) => void> = []
  const flush = () => {
    const batch = commands
    const respond = answers
    commands = []
    answers = []
    Effect.runCallback(commit.submitAll(batch), {
      onExit: (exit) => {
        if (exit._tag === "Failure") throw new Error(`the engine failed a batch: ${String(exit.cause)}`)
        exit.value.forEach((outcome, i) => {
          if (outcome._tag === "Left") throw new Error(`the engine refused a call: ${outcome.left.message}`)
          respond[i]!(outcome.right)
        })
      }
    })
  }
  const submit = (command: Command, respond: (value: unknown) => void) => {
    if (commands.length === 0) setImmediate(flush)
    commands.push(command)
    answers.push(respond)
  }

  createServer((request, response) => {
    // Ready once it answers: `ops.ts` polls `GET /v1/stats` as it does a broker's.
    if (request.method === "GET") return void response.end("{}")
    const url = request.url ?? ""
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>
      if (url === "/v1/jobs") {
        submit(
          { _tag: "Enqueue", jobs: [body as { readonly type: string }] },
          (jobs) => send(response, 201, publicJob((jobs as ReadonlyArray<Job>)[0]!))
        )
      } else if (url === "/v1/jobs/claim") {
        submit({ _tag: "Claim", workerId: String(body.workerId), max: 1 }, (claimed) =>
          send(
            response,
            200,
            (claimed as ReadonlyArray<{ readonly job: Job; readonly token: LeaseToken }>).map(({ job, token }) => ({
              job: publicJob(job),
              token
            }))
          ))
      } else {
        submit(
          { _tag: "Complete", token: body.token as LeaseToken },
          (job) => send(response, 200, publicJob(job as Job))
        )
      }
    })
  }).listen(Number(process.argv[2]), "127.0.0.1")
  return yield* Effect.never
})

// A profiled run (`ops.ts --profile`) stops it with SIGTERM: exiting writes the profile.
process.on("SIGTERM", () => process.exit(0))
Effect.runPromise(serve.pipe(Effect.withTracerEnabled(false)))
