/**
 * Leader discovery: which broker gets the next request. Starts with the first URL; a
 * `NotLeader` hint moves to the leader at once; an unreachable broker (or a follower that knows
 * no leader) moves to the next URL — or, when a `discover` source is given (the leader's URL in
 * the store's metadata), to the broker it names; retryable errors wait on the retry schedule
 * between attempts. One client per URL, opened on first use and kept for the router's life.
 */
import { isRetryable, JobTrace } from "@osqueue/types"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberId from "effect/FiberId"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { BrokerUnreachable, type ClientError } from "./Errors.js"
import { type Connect, trimUrl } from "./Protocols.js"
import type { BrokerApi } from "./Transport.js"

export interface RouterOptions {
  /** Broker URLs to try in turn; may be empty when `discover` is given. */
  readonly urls: ReadonlyArray<string>
  readonly connect: Connect
  /**
   * Where the leader is, from outside the brokers (e.g. `Election.leaderFromStore`: the URL in
   * queue.json's metadata): asked first when there is no URL yet, and whenever the broker asked
   * is unreachable or knows no leader. `null` (or a failure) when it cannot say.
   */
  readonly discover?: Effect.Effect<string | null, unknown> | undefined
  /** Waits between attempts of one call; the call fails with the last error when it ends. */
  readonly retry?: Schedule.Schedule<unknown, ClientError> | undefined
  /** How long one attempt may take before it counts as unreachable (a claim's `waitMs` is added). */
  readonly requestTimeout?: Duration.DurationInput | undefined
}

export interface Router {
  /** The broker requests go to now ("" before one is known). */
  readonly current: Effect.Effect<string>
  readonly call: <A>(
    operation: string,
    f: (api: BrokerApi) => Effect.Effect<A, ClientError>,
    options?: { readonly extraTime?: Duration.DurationInput | undefined }
  ) => Effect.Effect<A, ClientError>
  readonly stream: <A>(f: (api: BrokerApi) => Stream.Stream<A, ClientError>) => Stream.Stream<A, ClientError>
}

/** Exponential from 100 ms, each wait capped at 2 s, jittered; gives up after 30 s. */
export const defaultRetry: Schedule.Schedule<unknown, ClientError> = Schedule.exponential("100 millis", 2).pipe(
  Schedule.union(Schedule.spaced("2 seconds")),
  Schedule.jittered,
  Schedule.upTo("30 seconds")
)

export const isRetryableClientError = (error: ClientError): boolean =>
  error._tag === "BrokerUnreachable" || isRetryable(error)

/** The longest delay a timer holds (about 24.8 days). */
const maxTimerMs = 2 ** 31 - 1

/**
 * One attempt in a fiber of its own, abandoned at its deadline: the caller fails with
 * `onTimeout()` at once, and the attempt is interrupted without being waited for (interrupting
 * an HTTP RPC awaits the cancelled request's own teardown). An interrupted caller interrupts the
 * attempt the same way. What `Effect.disconnect` and `Effect.timeoutFail` do together, with one
 * fiber and one timer instead of three fibers and a race per call.
 */
const withDeadline = <A>(
  attempt: Effect.Effect<A, ClientError>,
  limit: Duration.Duration,
  onTimeout: () => ClientError
): Effect.Effect<A, ClientError> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Effect.forkDaemon(restore(attempt)), (fiber) =>
      restore(Effect.async<A, ClientError>((resume) => {
        // A deadline past what a timer holds (or infinite) is none.
        const ms = Duration.toMillis(limit)
        const timer = ms >= maxTimerMs ? undefined : setTimeout(() => {
          fiber.unsafeInterruptAsFork(FiberId.none)
          resume(Effect.fail(onTimeout()))
        }, ms)
        fiber.addObserver((exit) => {
          clearTimeout(timer)
          resume(exit)
        })
        return Effect.sync(() => {
          clearTimeout(timer)
          fiber.unsafeInterruptAsFork(FiberId.none)
        })
      })))
  )

export const make = (options: RouterOptions): Effect.Effect<Router, never, Scope.Scope> =>
  Effect.gen(function*() {
    const discoverSource = options.discover
    if (options.urls.length === 0 && discoverSource === undefined) {
      return yield* Effect.dieMessage("OsqueueClient needs at least one broker URL, or a discover source")
    }
    const urls = options.urls.map(trimUrl)
    /** undefined until a URL is known (no URLs given, and discovery has not answered yet). */
    let current: string | undefined = urls[0]
    const retry = options.retry ?? defaultRetry
    const timeout = Duration.decode(options.requestTimeout ?? "30 seconds")
    const scope = yield* Effect.scope
    const lock = yield* Effect.makeSemaphore(1)
    const tracing = yield* JobTrace.exporting
    const clients = new Map<string, BrokerApi>()

    const connect = (url: string): Effect.Effect<BrokerApi> =>
      lock.withPermits(1)(
        Effect.suspend(() => {
          const known = clients.get(url)
          if (known !== undefined) return Effect.succeed(known)
          return options.connect(url).pipe(
            Scope.extend(scope),
            Effect.tap((api) => Effect.sync(() => clients.set(url, api)))
          )
        })
      )
    // Every call asks: the lock is only for the first, which opens the connection.
    const clientFor = (url: string): Effect.Effect<BrokerApi> =>
      Effect.suspend(() => {
        const known = clients.get(url)
        return known === undefined ? connect(url) : Effect.succeed(known)
      })

    const moveTo = (url: string) =>
      Effect.suspend(() => {
        if (!urls.includes(url)) urls.push(url)
        if (current === url) return Effect.void
        const from = current ?? "(none)"
        current = url
        return Effect.logInfo("switched broker").pipe(Effect.annotateLogs({ from, to: url }))
      })

    // Only when the failed broker is still the current one: a concurrent call may have moved on.
    const rotateFrom = (url: string) =>
      Effect.suspend(() => (current === url ? moveTo(urls[(urls.indexOf(url) + 1) % urls.length]!) : Effect.void))

    /** The leader's URL from the discover source, trimmed; null when there is none or it fails. */
    const discovered: Effect.Effect<string | null> = discoverSource === undefined
      ? Effect.succeed(null)
      : discoverSource.pipe(
        Effect.map((url) => (url === null || url === "" ? null : trimUrl(url))),
        Effect.tapError((error) => Effect.logDebug("leader discovery failed", error)),
        Effect.orElseSucceed(() => null)
      )

    /** Decides what to do after a failed attempt at `url`: "now", "wait" or give up. */
    const onFailure = (url: string, error: ClientError, followed: Set<string>) =>
      Effect.gen(function*() {
        if (!isRetryableClientError(error)) return "fail" as const
        if (error._tag === "NotLeader" && error.leaderUrl !== null) {
          const leader = trimUrl(error.leaderUrl)
          // Follow each hint once per call without waiting; a repeated hint is stale and waits.
          if (leader !== url && !followed.has(leader)) {
            followed.add(leader)
            yield* moveTo(leader)
            return "now" as const
          }
        }
        if (error._tag === "BrokerUnreachable" || error._tag === "NotLeader") {
          const leader = yield* discovered
          // A leader the store names that this call has not tried yet: go there now.
          if (leader !== null && leader !== url && !followed.has(leader)) {
            followed.add(leader)
            yield* moveTo(leader)
            return "now" as const
          }
          yield* rotateFrom(url)
        }
        return "wait" as const
      })

    const call: Router["call"] = (operation, f, callOptions) => {
      const attempts = Effect.gen(function*() {
        // Made at the first failure: most calls succeed at once.
        let driver: Schedule.ScheduleDriver<unknown, ClientError> | undefined
        const wait = (error: ClientError) =>
          Effect.gen(function*() {
            driver ??= yield* Schedule.driver(retry)
            return yield* Effect.either(driver.next(error))
          })
        const followed = new Set<string>()
        const limit = Duration.sum(timeout, callOptions?.extraTime ?? Duration.zero)
        for (;;) {
          if (current === undefined) {
            const leader = yield* discovered
            if (leader !== null) yield* moveTo(leader)
          }
          const url = current
          if (url === undefined) {
            const error = new BrokerUnreachable({ url: "(discovery)", reason: "the store names no leader yet" })
            if (Either.isLeft(yield* wait(error))) return yield* Effect.fail(error)
            continue
          }
          const api = yield* clientFor(url)
          const result = yield* Effect.either(
            withDeadline(
              f(api),
              limit,
              () => new BrokerUnreachable({ url, reason: `no answer within ${Duration.format(limit)}` })
            )
          )
          if (Either.isRight(result)) return result.right
          const error = result.left
          const next = yield* onFailure(url, error, followed)
          if (next === "fail") return yield* Effect.fail(error)
          if (next === "wait" && Either.isLeft(yield* wait(error))) return yield* Effect.fail(error)
          yield* Effect.logDebug("retrying").pipe(
            Effect.annotateLogs({ operation, url, error: error._tag, next: current })
          )
        }
      })
      // A span per call only where spans are exported (docs/tracing.md): others are made and never read.
      return tracing ? Effect.withSpan(attempts, `OsqueueClient.${operation}`, { captureStackTrace: false }) : attempts
    }

    const stream: Router["stream"] = (f) =>
      Stream.suspend(() => {
        const followed = new Set<string>()
        const url = current
        if (url === undefined) {
          return Stream.unwrap(Effect.map(discovered, (leader) => {
            if (leader !== null) current = leader
            return Stream.fail(new BrokerUnreachable({ url: "(discovery)", reason: "no broker known yet" }))
          }))
        }
        return Stream.unwrap(Effect.map(clientFor(url), (api) =>
          f(api).pipe(
            Stream.tapError((error) => onFailure(api.url, error, followed))
          )))
      }).pipe(Stream.retry(Schedule.whileInput(retry, isRetryableClientError)))

    return { current: Effect.sync(() => current ?? ""), call, stream }
  })
