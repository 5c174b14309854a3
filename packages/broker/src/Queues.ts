/**
 * The queues one broker serves (docs/architecture.md, "Named queues"): each an engine of its own
 * (Replica, Election, GroupCommit) over its own key prefix of the one store, with its own
 * `Operations`, so different brokers may lead different queues. Every transport finds the queue a
 * request names here (`resolve`), so the naming rules and the `UnknownQueue` answer are written
 * once. Queues come from configuration only (`OSQUEUE_QUEUES`): a request never creates one.
 */
import { Election, Engine, type EngineConfig, GroupCommit, type Replica } from "@osqueue/core"
import { type ObjectStore, PrefixedStore } from "@osqueue/storage"
import { QueueNames, UnknownQueue } from "@osqueue/types"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Operations from "./Operations.js"
import * as StoreMetrics from "./StoreMetrics.js"

export interface Queue {
  readonly name: string
  readonly operations: Operations.OperationsShape
  readonly commit: GroupCommit.GroupCommitShape
  readonly election: Election.ElectionShape
}

export interface QueuesShape {
  /** Every queue served, in the configured order. */
  readonly all: ReadonlyArray<Queue>
  /** The queue a request names (none: the default queue), or `UnknownQueue` naming the ones served. */
  readonly resolve: (name: string | undefined) => Either.Either<Queue, UnknownQueue>
}

export class Queues extends Context.Tag("@osqueue/broker/Queues")<Queues, QueuesShape>() {}

/**
 * The metrics of a named queue carry the label `queue`; the default queue's carry none, so a
 * deployment of one queue keeps its series (and dashboards) as they were.
 */
const withLabel = (name: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  name === QueueNames.defaultQueue ? effect : Effect.tagMetrics(effect, "queue", name)

/**
 * Every operation of `operations` with its metrics labelled (`withLabel`): a request runs on the
 * transport's fiber, not the queue's, so the label goes on each call.
 */
const labelled = (name: string, operations: Operations.OperationsShape): Operations.OperationsShape => {
  if (name === QueueNames.defaultQueue) return operations
  const label = withLabel(name)
  const tag = (value: unknown): unknown => (Effect.isEffect(value) ? label(value) : value)
  return Object.fromEntries(
    Object.entries(operations).map(([key, value]) => [
      key,
      typeof value === "function"
        ? (...args: ReadonlyArray<unknown>) => tag((value as (...a: ReadonlyArray<unknown>) => unknown)(...args))
        : tag(value)
    ])
  ) as unknown as Operations.OperationsShape
}

/** Most characters of an unknown name repeated in the answer: a header may be long. */
const echoedName = 200

const fromList = (all: ReadonlyArray<Queue>): QueuesShape => {
  // Each queue's answer made once: every request resolves its queue.
  const byName = new Map(all.map((queue) => [queue.name, Either.right(queue)]))
  const served = all.map((queue) => queue.name)
  return {
    all,
    resolve: (name) =>
      byName.get(name ?? QueueNames.defaultQueue) ??
        Either.left(new UnknownQueue({ queue: (name ?? QueueNames.defaultQueue).slice(0, echoedName), served }))
  }
}

/**
 * The queue an RPC message names: its `osqueue-queue` header (over WebSocket the upgrade's
 * headers come first, so a message's own header wins). None: the default queue.
 */
export const nameIn = (
  headers: Readonly<Record<string, string | undefined>> | ReadonlyArray<readonly [string, string]>
): string | undefined => {
  if (!Array.isArray(headers)) return (headers as Readonly<Record<string, string | undefined>>)[QueueNames.queueHeader]
  let name: string | undefined
  for (const [key, value] of headers as ReadonlyArray<readonly [string, string]>) {
    if (key.toLowerCase() === QueueNames.queueHeader) name = value
  }
  return name
}

/** The queue `name` over the engine in context: its operations, built with its metrics labelled. */
const queueOverEngine = (name: string) =>
  Effect.gen(function*() {
    const commit = yield* GroupCommit.GroupCommit
    const election = yield* Election.Election
    const operations = yield* Operations.make
    return { name, operations: labelled(name, operations), commit, election } satisfies Queue
  }).pipe(withLabel(name))

/** The default queue alone, over the engine (GroupCommit + Election) in context: a broker as it was before queues had names. */
export const single: Layer.Layer<Queues, never, GroupCommit.GroupCommit | Election.Election> = Layer.scoped(
  Queues,
  Effect.map(queueOverEngine(QueueNames.defaultQueue), (queue) => fromList([queue]))
)

/**
 * The engine over whatever ObjectStore and EngineConfig are provided: GroupCommit and Election,
 * with the Replica over the checkpoint (Cas) and the Log, and storage metrics, inside.
 */
export const layerEngine: Layer.Layer<
  GroupCommit.GroupCommit | Election.Election,
  Layer.Layer.Error<typeof Replica.layer>,
  ObjectStore | EngineConfig.EngineConfig
> = Engine.layer.pipe(Layer.provide(StoreMetrics.layer))

/** Why a list of queue names cannot be served, or undefined. */
export const namesProblem = (names: ReadonlyArray<string>): string | undefined => {
  if (names.length === 0) return "name at least one queue"
  for (const name of names) {
    const problem = QueueNames.queueNameProblem(name)
    if (problem !== undefined) return problem
  }
  const duplicate = names.find((name, i) => names.indexOf(name) !== i)
  return duplicate === undefined ? undefined : `the queue "${duplicate}" is named twice`
}

/**
 * Each named queue an engine of its own over its key prefix (`QueueNames.keyPrefix`: the default
 * queue's keys are unprefixed, so a broker that has always served one queue reads it as before),
 * all started at once. On shutdown each queue hands off before its engine stops.
 */
export const layer = (
  names: ReadonlyArray<string>
): Layer.Layer<Queues, Layer.Layer.Error<typeof Replica.layer>, ObjectStore | EngineConfig.EngineConfig> =>
  Layer.scoped(
    Queues,
    Effect.gen(function*() {
      const problem = namesProblem(names)
      if (problem !== undefined) return yield* Effect.dieMessage(`cannot serve these queues: ${problem}`)
      const scope = yield* Effect.scope
      const all = yield* Effect.forEach(
        names,
        (name) =>
          Layer.buildWithScope(layerEngine.pipe(Layer.provide(PrefixedStore.layer(QueueNames.keyPrefix(name)))), scope)
            .pipe(
              withLabel(name),
              Effect.flatMap((engine) => Effect.provide(queueOverEngine(name), engine)),
              Effect.annotateLogs({ queue: name })
            ),
        { concurrency: "unbounded" }
      )
      return fromList(all)
    })
  )

/** `OSQUEUE_QUEUES`: the queues to serve, comma-separated (default: the default queue alone). */
export const namesConfig: Config.Config<ReadonlyArray<string>> = Config.string("OSQUEUE_QUEUES").pipe(
  Config.withDefault(QueueNames.defaultQueue),
  Config.map((text) => text.split(",").map((name) => name.trim()).filter((name) => name !== "")),
  Config.mapOrFail((names) => {
    const problem = namesProblem(names)
    return problem === undefined
      ? Either.right(names)
      : Either.left(ConfigError.InvalidData(["OSQUEUE_QUEUES"], problem))
  })
)
