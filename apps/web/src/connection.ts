/**
 * The dashboard's link to the broker, through `@osqueue/client` only. Connecting first asks
 * the broker who leads over plain HTTP RPC, because that is where a refused token, a dead
 * broker or a broker without a leader can be told apart (a browser reports a refused WebSocket
 * upgrade as a bare close); then it opens the chosen transport, falling back from WebSocket to
 * HTTP when the socket does not come up, and follows the broker's `watch` stream. It also asks
 * the broker the token's role (`GET /v1/whoami`, plain REST: the client has no such operation), so
 * the page offers only what the role may do. Everything it does is on one queue (`queue`); the
 * queues the broker serves are read from `/readyz`, for the header's picker.
 */
import { BrokerUnreachable, type ClientError, OsqueueClient, type OsqueueClientShape } from "@osqueue/client"
import { type LeaderInfo, type Role, type WatchEvent, WhoAmI } from "@osqueue/types"
import { Cause, Effect, Exit, Fiber, type Layer, ManagedRuntime, Option, Schedule, Schema, Stream } from "effect"
import { Signal } from "./signal.js"

export type Transport = "ws" | "http"

export type Status =
  | { readonly _tag: "Connecting" }
  | { readonly _tag: "Connected"; readonly transport: Transport; readonly fellBack: boolean }
  | { readonly _tag: "Unreachable"; readonly reason: string; readonly retryAt: number }
  | { readonly _tag: "Unauthorized"; readonly reason: string }
  | { readonly _tag: "NoLeader"; readonly retryAt: number }

/** Calls from the page retry briefly (a failover's `NotLeader` is followed at once), then report. */
const pageRetry = Schedule.exponential("100 millis").pipe(
  Schedule.union(Schedule.spaced("1 second")),
  Schedule.jittered,
  Schedule.upTo("5 seconds")
)

const noRetry = Schedule.stop

type ClientRuntime = ManagedRuntime.ManagedRuntime<OsqueueClient, never>

export interface ConnectionOptions {
  readonly url: string
  readonly transport: Transport
  readonly token: () => string | undefined
  /** The queue the page shows; undefined: the broker's default queue. */
  readonly queue: string | undefined
  readonly onEvent: (event: WatchEvent) => void
}

/** Wait before the next attempt: 1 s doubling to 15 s. */
const backoff = (failures: number) => Math.min(15_000, 1_000 * 2 ** Math.max(0, failures - 1))

export class Connection {
  readonly status = new Signal<Status>({ _tag: "Connecting" })
  /** The broker that serves the page, as it answered when the page connected (its role may be follower). */
  readonly broker = new Signal<LeaderInfo | undefined>(undefined)
  /** The leader, kept current by the `watch` stream (which always streams from the leader). */
  readonly leader = new Signal<LeaderInfo | undefined>(undefined)
  /** The role of the page's token; undefined while unknown (the broker refuses what it may not do anyway). */
  readonly role = new Signal<Role | undefined>(undefined)
  /** The queues the broker serves (empty while unknown, or from a broker without named queues). */
  readonly queues = new Signal<ReadonlyArray<string>>([])
  private runtime: ClientRuntime | undefined
  private watcher: Fiber.RuntimeFiber<void, ClientError> | undefined
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private failures = 0
  private generation = 0

  constructor(private readonly options: ConnectionOptions) {}

  /**
   * A client layer of its own over the transport in use, with the client's default retries
   * (the in-page worker's: it should ride out a failover, not give up after the page's 5 s).
   */
  layer(): Layer.Layer<OsqueueClient> {
    const status = this.status.value
    return this.layerClient(status._tag === "Connected" ? status.transport : this.options.transport)
  }

  /** (Re)connects from scratch: after a token change, or when the broker went away. */
  async connect(): Promise<void> {
    const generation = ++this.generation
    clearTimeout(this.retryTimer)
    await this.close()
    this.status.set({ _tag: "Connecting" })
    // Read first: a page on a queue the broker does not serve offers the ones it does.
    const queues = await servedQueues(this.options.url)
    if (generation !== this.generation) return
    this.queues.set(queues)
    const probe = ManagedRuntime.make(this.layerClient("http", noRetry))
    const leader = await probe.runPromiseExit(Effect.flatMap(OsqueueClient, (client) => client.leader))
    await probe.dispose()
    if (generation !== this.generation) return
    if (Exit.isFailure(leader)) return this.failed(failureOf(leader.cause))
    const role = await whoami(this.options.url, this.options.token())
    if (generation !== this.generation) return
    this.role.set(role)
    this.broker.set(leader.value)
    this.leader.set(leader.value)
    if (leader.value.role === "follower" && leader.value.leaderUrl === null) {
      return this.retryLater({ _tag: "NoLeader", retryAt: 0 })
    }

    let transport = this.options.transport
    let runtime = this.makeRuntime(transport)
    if (transport === "ws") {
      const socket = await runtime.runPromiseExit(
        Effect.flatMap(OsqueueClient, (client) => client.leader).pipe(Effect.timeout("3 seconds"))
      )
      if (Exit.isFailure(socket)) {
        await runtime.dispose()
        transport = "http"
        runtime = this.makeRuntime(transport)
      }
    }
    if (generation !== this.generation) return void runtime.dispose()
    this.runtime = runtime
    this.failures = 0
    this.status.set({ _tag: "Connected", transport, fellBack: transport !== this.options.transport })
    this.watch(runtime, generation)
  }

  /** Runs one client operation; rejects with the tagged error (`_tag`, `message`). */
  async run<A>(f: (client: OsqueueClientShape) => Effect.Effect<A, ClientError>): Promise<A> {
    const runtime = this.runtime
    if (runtime === undefined) throw new BrokerUnreachable({ url: this.options.url, reason: "not connected" })
    const exit = await runtime.runPromiseExit(Effect.flatMap(OsqueueClient, f))
    if (Exit.isSuccess(exit)) return exit.value
    const error = failureOf(exit.cause)
    if (error._tag === "Unauthorized") this.status.set({ _tag: "Unauthorized", reason: error.reason })
    throw error
  }

  async close(): Promise<void> {
    const runtime = this.runtime
    this.runtime = undefined
    if (this.watcher !== undefined) runtime?.runFork(Fiber.interrupt(this.watcher))
    this.watcher = undefined
    await runtime?.dispose()
  }

  private makeRuntime(transport: Transport): ClientRuntime {
    return ManagedRuntime.make(this.layerClient(transport, pageRetry))
  }

  private layerClient(
    transport: Transport,
    retry?: Schedule.Schedule<unknown, ClientError>
  ): Layer.Layer<OsqueueClient> {
    const connection = { urls: [this.options.url], token: this.options.token(), retry, queue: this.options.queue }
    return transport === "ws" ? OsqueueClient.layerWebSocket(connection) : OsqueueClient.layerHttp(connection)
  }

  private watch(runtime: ClientRuntime, generation: number): void {
    const events = Stream.unwrap(
      Effect.map(OsqueueClient, (client) => client.watch({ statsEveryMs: 1_000, history: true }))
    )
    this.watcher = runtime.runFork(
      Stream.runForEach(events, (event) =>
        Effect.sync(() => {
          if (event._tag === "Leader") this.leader.set(event.leader)
          this.options.onEvent(event)
        }))
    )
    this.watcher.addObserver((exit) => {
      // The stream only ends when it failed for good (its own retries are spent) or was closed.
      if (generation !== this.generation || Exit.isInterrupted(exit)) return
      this.failed(
        Exit.isFailure(exit)
          ? failureOf(exit.cause)
          : new BrokerUnreachable({ url: this.options.url, reason: "the watch stream ended" })
      )
    })
  }

  private failed(error: ClientError): void {
    if (error._tag === "Unauthorized") return this.status.set({ _tag: "Unauthorized", reason: error.reason })
    this.retryLater({ _tag: "Unreachable", reason: error.message, retryAt: 0 })
  }

  private retryLater(status: Extract<Status, { retryAt: number }>): void {
    const wait = backoff(++this.failures)
    this.status.set({ ...status, retryAt: Date.now() + wait })
    this.retryTimer = setTimeout(() => void this.connect(), wait)
  }
}

/** The role the broker gives `token`; undefined when it does not say (an older broker, a network failure). */
const whoami = async (url: string, token: string | undefined): Promise<Role | undefined> => {
  try {
    const response = await fetch(`${url}/v1/whoami`, {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` }
    })
    if (!response.ok) return undefined
    return Option.getOrUndefined(Schema.decodeUnknownOption(WhoAmI)(await response.json()))?.role
  } catch {
    return undefined
  }
}

/** The queues the broker serves, as `/readyz` lists them (public); none when it does not say. */
const servedQueues = async (url: string): Promise<ReadonlyArray<string>> => {
  try {
    const ready: unknown = await (await fetch(`${url}/readyz`)).json()
    const queues = typeof ready === "object" && ready !== null && "queues" in ready ? ready.queues : undefined
    return typeof queues === "object" && queues !== null ? Object.keys(queues) : []
  } catch {
    return []
  }
}

/** The typed failure of a client call; anything else (a defect) is shown with its cause. */
const failureOf = (cause: Cause.Cause<ClientError>): ClientError =>
  Option.getOrElse(
    Cause.failureOption(cause),
    () => new BrokerUnreachable({ url: window.location.origin, reason: `unexpected failure: ${Cause.pretty(cause)}` })
  )
