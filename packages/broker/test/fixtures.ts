/**
 * A real broker on an ephemeral port over a MemoryStore, and clients for it: plain fetch (REST),
 * RPC over HTTP (ndjson) and RPC over WebSocket (JSON), as the README tells clients to connect.
 */
import { FetchHttpClient, HttpClient, HttpClientRequest, HttpServer } from "@effect/platform"
import { NodeSocket } from "@effect/platform-node"
import { RpcClient, RpcSerialization } from "@effect/rpc"
import { Broker, BrokerConfig, Queues, rpcPaths } from "@osqueue/broker"
import { defaultLimits, EngineConfig } from "@osqueue/core"
import { MemoryStore, ObjectStore, type ObjectStoreShape } from "@osqueue/storage"
import { type Job, type JobId, OsqueueRpcs } from "@osqueue/types"
import { Context, Duration, Effect, Layer, Logger, LogLevel, Option, Redacted, Schedule, Scope } from "effect"

export const electionTtl = Duration.seconds(1)

export interface StartOptions {
  readonly store?: ObjectStoreShape
  readonly url?: string
  readonly token?: string
  readonly maxBodyBytes?: number
  readonly maxPayloadBytes?: number
  readonly engine?: Partial<EngineConfig.EngineSettings>
  /** Any other broker settings. */
  readonly config?: Partial<BrokerConfig.BrokerSettings>
  /** Serve these queues (`Queues.layer`, as `osqueue broker` does) instead of the default queue over one engine. */
  readonly queues?: ReadonlyArray<string>
}

/** Starts a broker in its own scope (so a test can stop one and keep another). */
export const startBroker = (options: StartOptions = {}) =>
  Effect.gen(function*() {
    const store = options.store ?? (yield* MemoryStore.make)
    const scope = yield* Scope.make()
    const settings = EngineConfig.layer({
      advertisedUrl: options.url ?? "http://broker.test",
      electionTtl,
      ...options.engine,
      ...(options.maxPayloadBytes === undefined ? {} : {
        limits: { ...defaultLimits, maxPayloadBytes: options.maxPayloadBytes }
      })
    })
    const served = options.queues === undefined
      ? Broker.layerQueues.pipe(Layer.provideMerge(Queues.single), Layer.provideMerge(Broker.layerEngine))
      : Broker.layerQueues.pipe(Layer.provideMerge(Queues.layer(options.queues)))
    const layer = served.pipe(
      Layer.provide(settings),
      Layer.provideMerge(Broker.nodeServer({ port: 0, host: "127.0.0.1" })),
      Layer.provide(Layer.succeed(ObjectStore, store)),
      // the engine's info logs (takeover, handoff) would drown the test output
      Layer.provide(Logger.minimumLogLevel(LogLevel.Warning)),
      Layer.provide(BrokerConfig.layer({
        token: options.token === undefined ? Option.none() : Option.some(Redacted.make(options.token)),
        ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
        ...options.config
      }))
    )
    const context = yield* Layer.buildWithScope(layer, scope)
    const server = Context.get(context, HttpServer.HttpServer)
    const address = server.address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    const base = `http://127.0.0.1:${address.port}`
    yield* Effect.addFinalizer(() => Scope.close(scope, Effect.void as never).pipe(Effect.ignore))
    const queues = Context.get(context, Queues.Queues)
    return {
      base,
      store,
      scope,
      queues,
      /** The first queue's engine. */
      commit: queues.all[0]!.commit,
      election: queues.all[0]!.election
    }
  })

export type Started = Effect.Effect.Success<ReturnType<typeof startBroker>>

/** Waits until the broker leads (a fresh store: the first poll takes over). */
export const awaitLeader = (broker: Started) =>
  broker.election.role.pipe(
    Effect.filterOrFail((role) => role._tag === "Leader"),
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("5 seconds"))),
    Effect.orDieWith(() => new Error("the broker never became leader"))
  )

/** An RPC client over HTTP (ndjson), living in the caller's scope. */
export const rpcHttp = (base: string, token?: string) =>
  Effect.gen(function*() {
    const protocol = yield* Layer.build(
      RpcClient.layerProtocolHttp({
        url: `${base}${rpcPaths.http}`,
        ...(token === undefined ? {} : {
          transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(token))
        })
      }).pipe(Layer.provide([RpcSerialization.layerNdjson, FetchHttpClient.layer]))
    )
    return yield* RpcClient.make(OsqueueRpcs).pipe(Effect.provide(protocol))
  })

/** An `EnqueueMany` answer asked for whole jobs (no `prefer: return=minimal`): each item must be one. */
export const wholeJobs = (answer: ReadonlyArray<Job | JobId>): ReadonlyArray<Job> =>
  answer.map((job) => {
    if (typeof job === "string") throw new Error(`EnqueueMany answered the id ${job} where a whole job was asked for`)
    return job
  })

/** An RPC client over WebSocket (JSON frames), living in the caller's scope. */
export const rpcWs = (base: string, query = "") =>
  Effect.gen(function*() {
    const protocol = yield* Layer.build(
      RpcClient.layerProtocolSocket().pipe(
        Layer.provide([
          NodeSocket.layerWebSocket(`${base.replace(/^http/, "ws")}${rpcPaths.websocket}${query}`),
          RpcSerialization.layerJson
        ])
      )
    )
    return yield* RpcClient.make(OsqueueRpcs).pipe(Effect.provide(protocol))
  })

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: unknown
}

/** Plain fetch, as any HTTP client would do it. */
export const rest = (
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {}
) =>
  Effect.promise(async (): Promise<Reply> => {
    const init: RequestInit = { method, headers: { ...headers } }
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body)
      init.headers = { "content-type": "application/json", ...headers }
    }
    const response = await fetch(`${base}${path}`, init)
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = text === "" ? null : JSON.parse(text)
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, headers: response.headers, body: parsed }
  })
