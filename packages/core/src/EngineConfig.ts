/**
 * Settings of one broker's engine. `layer` takes plain values (tests); `layerConfig` reads the
 * environment (the `osqueue` command).
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import { defaultLimits, type Limits } from "./QueueState.js"

export interface EngineSettings {
  /** Where clients reach this broker when it leads (never the bind address). */
  readonly advertisedUrl: string
  /**
   * A follower takes over after seeing no new commit for this long (on its own clock); the
   * leader commits at least every third of it.
   */
  readonly electionTtl: Duration.Duration
  /** How often a follower looks at the object. Default: a fifth of the TTL. */
  readonly pollInterval: Duration.Duration
  /** Most commands in one commit. */
  readonly maxBatch: number
  /** Most commands waiting for a commit; more are refused with `Overloaded`. */
  readonly maxPending: number
  /** Least time between two commits (each creates a new object, so no store's per-object limit applies). */
  readonly minCommitInterval: Duration.Duration
  /**
   * Log appends the leader has in flight at once: 2 sends the next batch while one is being
   * written, so a request waits for about one write, not up to two (docs/architecture.md,
   * "Appends in flight"); 1 writes one at a time.
   */
  readonly appendsInFlight: 1 | 2
  /** When the leader writes the whole state to queue.json (docs/architecture.md, "Checkpoints"). */
  readonly checkpoint: CheckpointPolicy
  readonly limits: Limits
}

/**
 * A checkpoint is due after whichever comes first. Entries bound a takeover's replay; bytes keep
 * what checkpoints write at most what the log writes (a queue of 100 MB is not rewritten for a
 * few KB of changes); the interval bounds how stale queue.json gets on a quiet queue, while the
 * checkpoint is at most minBytes (a bigger one is written only by the other two).
 */
export interface CheckpointPolicy {
  /** Entries appended since the last checkpoint. */
  readonly entries: number
  /** Bytes appended since the last checkpoint, when more than the last checkpoint's size. */
  readonly minBytes: number
  /** Time since the last checkpoint, if any job changed meanwhile and the last checkpoint is at most minBytes. */
  readonly interval: Duration.Duration
}

export class EngineConfig extends Context.Tag("@osqueue/core/EngineConfig")<EngineConfig, EngineSettings>() {}

export const defaults: EngineSettings = {
  advertisedUrl: "http://localhost:8080",
  electionTtl: Duration.seconds(10),
  pollInterval: Duration.seconds(2),
  maxBatch: 10_000,
  maxPending: 100_000,
  minCommitInterval: Duration.zero,
  appendsInFlight: 2,
  checkpoint: { entries: 10_000, minBytes: 4 * 1024 * 1024, interval: Duration.minutes(1) },
  limits: defaultLimits
}

export const make = (settings: Partial<EngineSettings> = {}): EngineSettings => {
  const electionTtl = settings.electionTtl ?? defaults.electionTtl
  return {
    ...defaults,
    pollInterval: Duration.divide(electionTtl, 5).pipe((d) => (d._tag === "Some" ? d.value : defaults.pollInterval)),
    ...settings,
    electionTtl,
    // A leader commits at least every third of the TTL: a slot found later than a TTL was missed.
    limits: { ...(settings.limits ?? defaults.limits), scheduleGraceMs: Duration.toMillis(electionTtl) }
  }
}

export const layer = (settings: Partial<EngineSettings> = {}): Layer.Layer<EngineConfig> =>
  Layer.succeed(EngineConfig, make(settings))

export const config: Config.Config<EngineSettings> = Config.all({
  advertisedUrl: Config.string("BROKER_URL").pipe(
    Config.orElse(() =>
      Config.all([
        Config.string("BROKER_HOST").pipe(Config.withDefault("localhost")),
        Config.port("BROKER_PORT").pipe(Config.withDefault(8080))
      ]).pipe(Config.map(([host, port]) => `http://${host === "0.0.0.0" ? "localhost" : host}:${port}`))
    ),
    Config.withDescription("The URL clients use to reach this broker")
  ),
  electionTtl: Config.duration("OSQUEUE_ELECTION_TTL").pipe(Config.withDefault(defaults.electionTtl)),
  maxBatch: Config.integer("OSQUEUE_MAX_BATCH").pipe(Config.withDefault(defaults.maxBatch)),
  maxPending: Config.integer("OSQUEUE_MAX_PENDING").pipe(Config.withDefault(defaults.maxPending)),
  minCommitInterval: Config.duration("OSQUEUE_MIN_COMMIT_INTERVAL").pipe(Config.withDefault(Duration.zero)),
  appendsInFlight: Config.literal(1, 2)("OSQUEUE_APPENDS_IN_FLIGHT").pipe(Config.withDefault(defaults.appendsInFlight)),
  checkpoint: Config.all({
    entries: Config.integer("OSQUEUE_CHECKPOINT_ENTRIES").pipe(Config.withDefault(defaults.checkpoint.entries)),
    minBytes: Config.integer("OSQUEUE_CHECKPOINT_MIN_BYTES").pipe(Config.withDefault(defaults.checkpoint.minBytes)),
    interval: Config.duration("OSQUEUE_CHECKPOINT_INTERVAL").pipe(Config.withDefault(defaults.checkpoint.interval))
  }),
  maxPayloadBytes: Config.integer("OSQUEUE_MAX_PAYLOAD_BYTES").pipe(Config.withDefault(defaultLimits.maxPayloadBytes)),
  maxStateBytes: Config.integer("OSQUEUE_MAX_STATE_BYTES").pipe(Config.withDefault(defaultLimits.maxStateBytes)),
  keepFinished: Config.integer("OSQUEUE_KEEP_FINISHED").pipe(Config.withDefault(defaultLimits.keepFinished)),
  keepFinishedFor: Config.duration("OSQUEUE_KEEP_FINISHED_FOR").pipe(
    Config.withDefault(Duration.millis(defaultLimits.keepFinishedMs))
  ),
  keepDead: Config.integer("OSQUEUE_KEEP_DEAD").pipe(Config.withDefault(defaultLimits.keepDead)),
  keepDeadFor: Config.duration("OSQUEUE_KEEP_DEAD_FOR").pipe(
    Config.withDefault(Duration.millis(defaultLimits.keepDeadMs))
  ),
  defaultLeaseTtl: Config.duration("OSQUEUE_LEASE_TTL").pipe(
    Config.withDefault(Duration.millis(defaultLimits.defaultLeaseMs))
  )
}).pipe(
  Config.map((
    { defaultLeaseTtl, keepDead, keepDeadFor, keepFinished, keepFinishedFor, maxPayloadBytes, maxStateBytes, ...rest }
  ) =>
    make({
      ...rest,
      limits: {
        ...defaultLimits,
        maxPayloadBytes,
        maxStateBytes,
        keepFinished,
        keepFinishedMs: Duration.toMillis(keepFinishedFor),
        keepDead,
        keepDeadMs: Duration.toMillis(keepDeadFor),
        defaultLeaseMs: Duration.toMillis(defaultLeaseTtl)
      }
    })
  )
)

export const layerConfig: Layer.Layer<EngineConfig, ConfigError.ConfigError> = Layer.effect(EngineConfig, config)
