/**
 * Fault injection for any `ObjectStore`: latency, refused reads and writes, and the two kinds of
 * unknown outcome a real network produces (the write landed but the answer was lost; the write
 * never arrived). Faults come from a seeded generator, so a failing run can be repeated, and can
 * be changed while running through the `Control` service.
 *
 * ```ts
 * const layer = FaultyStore.layer({ seed: 42, ambiguousWriteRate: 0.1 }).pipe(Layer.provide(MemoryStore.layer))
 * ```
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import { type AppendLogs, ObjectStore, type ObjectStoreShape, OutcomeUnknown, StoreUnavailable } from "./ObjectStore.js"

export interface FaultOptions {
  /** Seed of the generator that decides every fault and every jitter (default 1). */
  readonly seed?: number
  /** Added to every call, in milliseconds (Effect.sleep, so TestClock drives it). */
  readonly latencyMs?: number
  /** Up to this many more milliseconds, uniformly distributed, per call. */
  readonly jitterMs?: number
  /** Share of calls that stall for `spikeMs` more (a slow request, a stalled connection). */
  readonly spikeRate?: number
  /** Length of a latency spike, in milliseconds. */
  readonly spikeMs?: number
  /** Share of get/head/list that fail with StoreUnavailable without reaching the store. */
  readonly readFailureRate?: number
  /** Share of put/delete that fail with StoreUnavailable before anything is written. */
  readonly writeFailureRate?: number
  /** Share of put/delete that are performed but answer OutcomeUnknown (a lost response). */
  readonly ambiguousWriteRate?: number
  /** Share of put/delete that are not performed but answer OutcomeUnknown (a lost request). */
  readonly lostWriteRate?: number
}

const share = Schema.Number.pipe(Schema.between(0, 1))
const millis = Schema.Number.pipe(Schema.nonNegative())

/**
 * `FaultOptions` as JSON text, e.g. `{"seed":7,"readFailureRate":0.05,"spikeRate":0.01,"spikeMs":3000}`:
 * how a process is told its faults (`osqueue broker --store-faults`). Unknown keys are refused.
 */
export const FaultOptionsFromJson = Schema.parseJson(
  Schema.Struct({
    seed: Schema.optionalWith(Schema.Int, { exact: true }),
    latencyMs: Schema.optionalWith(millis, { exact: true }),
    jitterMs: Schema.optionalWith(millis, { exact: true }),
    spikeRate: Schema.optionalWith(share, { exact: true }),
    spikeMs: Schema.optionalWith(millis, { exact: true }),
    readFailureRate: Schema.optionalWith(share, { exact: true }),
    writeFailureRate: Schema.optionalWith(share, { exact: true }),
    ambiguousWriteRate: Schema.optionalWith(share, { exact: true }),
    lostWriteRate: Schema.optionalWith(share, { exact: true })
  }).annotations({ parseOptions: { onExcessProperty: "error" } })
)

export interface FaultCounts {
  readonly reads: number
  readonly writes: number
  readonly readFailures: number
  readonly writeFailures: number
  readonly ambiguousWrites: number
  readonly lostWrites: number
  readonly spikes: number
}

/** Changes the faults of a running `FaultyStore` and reports what it has injected so far. */
export class Control extends Context.Tag("@osqueue/storage/FaultyStore/Control")<Control, {
  /** Replaces all options (unset ones go back to "no fault"). A given `seed` restarts the generator. */
  readonly set: (options: FaultOptions) => Effect.Effect<void>
  /** Changes only the given options (a given `seed` restarts the generator). */
  readonly update: (options: FaultOptions) => Effect.Effect<void>
  readonly options: Effect.Effect<FaultOptions>
  readonly counts: Effect.Effect<FaultCounts>
  readonly resetCounts: Effect.Effect<void>
}>() {}

/** Hot paths: a span's stack trace costs more than the call it describes. */
const noStack = { captureStackTrace: false } as const

const rateNames = ["readFailureRate", "writeFailureRate", "ambiguousWriteRate", "lostWriteRate", "spikeRate"] as const

const validate = (options: FaultOptions): Effect.Effect<FaultOptions> => {
  for (const name of rateNames) {
    const rate = options[name] ?? 0
    if (!(rate >= 0 && rate <= 1)) return Effect.dieMessage(`FaultyStore: ${name} must be within [0, 1], got ${rate}`)
  }
  const writeRates = (options.writeFailureRate ?? 0) + (options.ambiguousWriteRate ?? 0) + (options.lostWriteRate ?? 0)
  if (writeRates > 1) {
    return Effect.dieMessage(`FaultyStore: the write fault rates add up to ${writeRates}, more than 1`)
  }
  if (!((options.latencyMs ?? 0) >= 0 && (options.jitterMs ?? 0) >= 0 && (options.spikeMs ?? 0) >= 0)) {
    return Effect.dieMessage("FaultyStore: latencyMs, jitterMs and spikeMs must not be negative")
  }
  return Effect.succeed(options)
}

const zeroCounts: FaultCounts = {
  reads: 0,
  writes: 0,
  readFailures: 0,
  writeFailures: 0,
  ambiguousWrites: 0,
  lostWrites: 0,
  spikes: 0
}

/** Wraps `underlying`; returns the faulty store and its control handle. */
export const wrap = (
  underlying: ObjectStoreShape,
  initial: FaultOptions
): Effect.Effect<{ readonly store: ObjectStoreShape; readonly control: Context.Tag.Service<Control> }> =>
  Effect.gen(function*() {
    let options = yield* validate(initial)
    // Effect's generator, seeded: the same seed draws the same faults in the same order.
    let random = Random.make(options.seed ?? 1)
    let counts = zeroCounts
    const count = (field: keyof FaultCounts) => {
      counts = { ...counts, [field]: counts[field] + 1 }
    }

    const delay = Effect.gen(function*() {
      const latency = options.latencyMs ?? 0
      const jitter = options.jitterMs ?? 0
      const spikeRate = options.spikeRate ?? 0
      const spike = spikeRate > 0 && (yield* random.next) < spikeRate
      if (spike) count("spikes")
      const ms = latency + (jitter > 0 ? (yield* random.next) * jitter : 0) + (spike ? options.spikeMs ?? 0 : 0)
      if (ms > 0) yield* Effect.sleep(Duration.millis(ms))
    })

    const read = <A, E>(
      operation: string,
      key: string,
      effect: Effect.Effect<A, E>
    ): Effect.Effect<A, E | StoreUnavailable> =>
      Effect.zipRight(
        delay,
        Effect.gen(function*() {
          count("reads")
          const rate = options.readFailureRate ?? 0
          if (rate > 0 && (yield* random.next) < rate) {
            count("readFailures")
            return yield* new StoreUnavailable({ operation, key, cause: "injected by FaultyStore" })
          }
          return yield* effect
        })
      )

    const write = <A, E>(
      operation: string,
      key: string,
      effect: Effect.Effect<A, E>
    ): Effect.Effect<A, E | StoreUnavailable | OutcomeUnknown> =>
      Effect.zipRight(
        delay,
        Effect.gen(function*() {
          count("writes")
          const failure = options.writeFailureRate ?? 0
          const ambiguous = options.ambiguousWriteRate ?? 0
          const lost = options.lostWriteRate ?? 0
          if (failure + ambiguous + lost === 0) return yield* effect
          // One draw per write, so each kind happens at exactly its configured share.
          const draw = yield* random.next
          if (draw < failure) {
            count("writeFailures")
            return yield* new StoreUnavailable({ operation, key, cause: "injected by FaultyStore" })
          }
          if (draw < failure + ambiguous) {
            count("ambiguousWrites")
            // The write happens (or fails on its condition), but the caller never hears which.
            yield* Effect.either(effect)
            return yield* new OutcomeUnknown({ key, cause: "response lost (injected by FaultyStore)" })
          }
          if (draw < failure + ambiguous + lost) {
            count("lostWrites")
            return yield* new OutcomeUnknown({ key, cause: "request lost (injected by FaultyStore)" })
          }
          return yield* effect
        })
      )

    const logs = underlying.appendLogs
    const store: ObjectStoreShape = {
      backend: underlying.backend,
      minWriteInterval: underlying.minWriteInterval,
      get: (key) => read("get", key, underlying.get(key)).pipe(Effect.withSpan("FaultyStore.get", noStack)),
      head: (key) => read("head", key, underlying.head(key)).pipe(Effect.withSpan("FaultyStore.head", noStack)),
      list: (prefix) => read("list", prefix, underlying.list(prefix)).pipe(Effect.withSpan("FaultyStore.list")),
      put: (key, bytes, condition, putOptions) =>
        write("put", key, underlying.put(key, bytes, condition, putOptions)).pipe(
          Effect.withSpan("FaultyStore.put", noStack)
        ),
      delete: (key, ifMatch) =>
        write("delete", key, underlying.delete(key, ifMatch)).pipe(Effect.withSpan("FaultyStore.delete")),
      // The store's own logs get the same faults, so that a faulty store is the same store.
      ...(logs === undefined ? {} : {
        appendLogs: {
          append: (log, position, tag, body) =>
            write("append", `${log}${position}`, logs.append(log, position, tag, body)).pipe(
              Effect.withSpan("FaultyStore.append", noStack)
            ),
          read: (log, position) =>
            read("read", `${log}${position}`, logs.read(log, position)).pipe(
              Effect.withSpan("FaultyStore.read", noStack)
            ),
          collect: (log, position) =>
            write("collect", log, logs.collect(log, position)).pipe(
              // A collect can be done again at no risk: one whose answer was lost is answered as refused.
              Effect.catchTag("OutcomeUnknown", (e) =>
                Effect.fail(new StoreUnavailable({ operation: "collect", key: log, cause: e }))),
              Effect.withSpan("FaultyStore.collect")
            ),
          positions: (log) => read("positions", log, logs.positions(log))
        } satisfies AppendLogs
      })
    }

    const apply = (next: FaultOptions, reseed: boolean) =>
      Effect.map(validate(next), (valid) => {
        if (reseed && valid.seed !== undefined) random = Random.make(valid.seed)
        options = valid
      })

    const control: Context.Tag.Service<Control> = {
      set: (next) => apply(next, true),
      update: (changes) => Effect.suspend(() => apply({ ...options, ...changes }, changes.seed !== undefined)),
      options: Effect.sync(() => options),
      counts: Effect.sync(() => counts),
      resetCounts: Effect.sync(() => {
        counts = zeroCounts
      })
    }
    return { store, control }
  })

/**
 * Decorates the `ObjectStore` below it and provides the decorated one, plus `Control`. With all
 * rates and latencies at zero it passes every call straight through.
 */
export const layer = (options: FaultOptions = {}): Layer.Layer<ObjectStore | Control, never, ObjectStore> =>
  Layer.effectContext(
    Effect.gen(function*() {
      const underlying = yield* ObjectStore
      const { control, store } = yield* wrap(underlying, options)
      return Context.make(ObjectStore, store).pipe(Context.add(Control, control))
    })
  )
