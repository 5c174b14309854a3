/**
 * The typed state cell: queue.json, the checkpoint, with its version (docs/architecture.md,
 * "The log"). Loads and decodes it (refusing a format or content it does not understand), and
 * writes new bytes only if the version still matches. A write whose outcome is unknown is
 * resolved by reading the object back: our `commitId` there means it landed.
 */
import {
  type Body,
  bodyLength,
  type Metadata,
  ObjectStore,
  type PreconditionFailed,
  type StoreFailure,
  StoreUnavailable
} from "@osqueue/storage"
import { firstLogFormat, QueueFile, readableFormats, StateCorrupt } from "@osqueue/types"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { parseWhole } from "./JsonElements.js"
import { decodeJobs, keepJobs, type KeptJobs, splitJobs } from "./StoredJobs.js"

/** The version moved: another commit (maybe another leader's) got there first. */
export class CasConflict extends Data.TaggedError("CasConflict")<{ readonly expected: string }> {}

export interface Loaded extends Decoded {
  readonly version: string
  readonly bytes: number
}

export interface CheckpointHead {
  readonly version: string
  /** The position the checkpoint covers; undefined for a queue.json that predates the log. */
  readonly position: number | undefined
}

/** Metadata written with every checkpoint: a HEAD of queue.json names the leader and the position. */
export const leaderUrlKey = "osqueue-leader-url"
export const epochKey = "osqueue-epoch"
export const positionKey = "osqueue-position"

export type CommitError = CasConflict | StoreUnavailable | StoreFailure
export type LoadError = StateCorrupt | StoreUnavailable | StoreFailure

export interface CasShape {
  readonly key: string
  /** The store's own least gap between writes to one object. */
  readonly minWriteInterval: Duration.Duration
  /** The state and its version; None when the object does not exist yet. */
  readonly load: Effect.Effect<Option.Option<Loaded>, LoadError>
  /** The version and the log position it covers, from a HEAD: cheap change detection. */
  readonly head: Effect.Effect<Option.Option<CheckpointHead>, StoreUnavailable | StoreFailure>
  /**
   * Writes `body` (which carries `commitId`) if the object is still at `expected` (absent when
   * undefined). Returns the new version. Never answers with an unknown outcome.
   */
  readonly commit: (
    body: Body,
    expected: string | undefined,
    commitId: string,
    metadata?: Metadata
  ) => Effect.Effect<string, CommitError>
}

export class Cas extends Context.Tag("@osqueue/core/Cas")<Cas, CasShape>() {}

const decodeFile = Schema.decodeUnknownEither(QueueFile)

/** A decoded checkpoint. */
export interface Decoded {
  /** The checkpoint; its `jobs` are empty when `kept` holds them. */
  readonly file: QueueFile
  /**
   * The jobs as the state keeps them — each one's bytes as it lay there and the fields its
   * indexes need (`StoredJobs.KeptJobs`) — when the bytes can be kept: a checkpoint of a log
   * format, laid out as osqueue writes it.
   */
  readonly kept?: KeptJobs
}

const formatProblem = (json: unknown): StateCorrupt | undefined => {
  const format = typeof json === "object" && json !== null && "format" in json ? json.format : undefined
  if (typeof format === "number" && (readableFormats as ReadonlyArray<number>).includes(format)) return undefined
  return new StateCorrupt({
    reason: typeof format === "number"
      ? `format ${format} is not known to this broker, which reads formats ${
        readableFormats.slice(0, -1).join(", ")
      } and ${readableFormats.at(-1)}: run a matching osqueue version`
      : "no format number: this is not an osqueue queue.json"
  })
}

const schemaProblem = (error: ParseResult.ParseError) =>
  new StateCorrupt({ reason: ParseResult.TreeFormatter.formatErrorSync(error) })

/** The whole document parsed at once: bytes laid out some other way, and the errors' wording. */
const decodeWhole = (bytes: Uint8Array): Either.Either<Decoded, StateCorrupt> => {
  const parsed = parseWhole(bytes)
  if (Either.isLeft(parsed)) return Either.left(new StateCorrupt({ reason: parsed.left }))
  const json = parsed.right
  const problem = formatProblem(json)
  if (problem !== undefined) return Either.left(problem)
  return Either.mapBoth(decodeFile(json), { onLeft: (error) => schemaProblem(error), onRight: (file) => ({ file }) })
}

/**
 * The checkpoint with each job parsed from its own bytes (`StoredJobs`); with `keep`, of the
 * jobs only what the state keeps, when the file is of a log format (older ones are written
 * otherwise, and the state encodes their jobs again).
 */
const decodeSplit = (bytes: Uint8Array, keep: boolean): Either.Either<Decoded, StateCorrupt> | undefined => {
  const split = splitJobs(bytes, "jobs")
  if (split === undefined) return undefined
  const problem = formatProblem(split.header)
  if (problem !== undefined) return Either.left(problem)
  const file = decodeFile(split.header)
  if (Either.isLeft(file)) return Either.left(schemaProblem(file.left))
  // The array named twice: the parse of the whole decides which one counts.
  if (file.right.jobs.length !== 0) return undefined
  if (keep && file.right.format >= firstLogFormat) {
    return Either.mapBoth(keepJobs(split.jobBytes, "jobs"), {
      onLeft: (reason) => new StateCorrupt({ reason }),
      onRight: (kept) => ({ file: file.right, kept })
    })
  }
  return Either.mapBoth(decodeJobs(split.jobBytes, "jobs"), {
    onLeft: (reason) => new StateCorrupt({ reason }),
    onRight: (jobs) => ({ file: { ...file.right, jobs } })
  })
}

/** The checkpoint as a takeover loads it: the jobs kept as their bytes where they can be. */
export const decodeKeepingBytes = (bytes: Uint8Array): Either.Either<Decoded, StateCorrupt> =>
  decodeSplit(bytes, true) ?? decodeWhole(bytes)

/** The checkpoint with every job decoded. */
export const decode = (bytes: Uint8Array): Either.Either<QueueFile, StateCorrupt> =>
  Either.map(decodeSplit(bytes, false) ?? decodeWhole(bytes), (decoded) => decoded.file)

/** The commitId from the start of an encoded state, without decoding the jobs. */
const commitIdOf = (bytes: Uint8Array): string | undefined => {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 4096)).toString("utf8")
  const match = /"commitId":("(?:[^"\\]|\\.)*")/.exec(head)
  return match?.[1] === undefined ? undefined : (JSON.parse(match[1]) as string)
}

export interface CasOptions {
  /** The object's key: `queue.json` under the store's prefix by default. */
  readonly key?: string
}

export const make = (options: CasOptions = {}) =>
  Effect.gen(function*() {
    const store = yield* ObjectStore
    const key = options.key ?? "queue.json"

    const load = Effect.gen(function*() {
      const stored = yield* store.get(key)
      if (Option.isNone(stored)) return Option.none()
      const decoded = yield* decodeKeepingBytes(stored.value.bytes)
      return Option.some<Loaded>({ ...decoded, version: stored.value.version, bytes: stored.value.bytes.length })
    }).pipe(Effect.withSpan("Cas.load"))

    const head = store.head(key).pipe(
      Effect.map(Option.map(({ metadata, version }): CheckpointHead => {
        const position = Number(metadata[positionKey] ?? Number.NaN)
        return { version, position: Number.isSafeInteger(position) ? position : undefined }
      }))
    )

    // An unknown outcome: read back until the store answers, then decide by the commitId there.
    const resolve = (expected: string | undefined, commitId: string) =>
      store.get(key).pipe(
        Effect.retry({
          schedule: Schedule.exponential("50 millis"),
          times: 8,
          while: (e) => e._tag === "StoreUnavailable"
        }),
        Effect.flatMap((stored): Effect.Effect<string, CommitError> => {
          if (Option.isSome(stored) && commitIdOf(stored.value.bytes) === commitId) {
            return Effect.succeed(stored.value.version)
          }
          const unchanged = Option.isNone(stored) ? expected === undefined : stored.value.version === expected
          // Not landed and nothing else landed either: a plain failed write, safe to retry.
          return unchanged
            ? Effect.fail(new StoreUnavailable({ operation: "put", key, cause: "write did not land" }))
            : Effect.fail(new CasConflict({ expected: expected ?? "(absent)" }))
        }),
        Effect.tap(() => Effect.logInfo("resolved an unknown write outcome by reading back")),
        Effect.withSpan("Cas.resolve")
      )

    const commit = (body: Body, expected: string | undefined, commitId: string, metadata?: Metadata) =>
      store
        .put(
          key,
          body,
          expected === undefined ? { ifAbsent: true } : { ifMatch: expected },
          metadata ? { metadata } : {}
        )
        .pipe(
          Effect.catchTags({
            PreconditionFailed: (e: PreconditionFailed) => Effect.fail(new CasConflict({ expected: e.expected })),
            OutcomeUnknown: () => resolve(expected, commitId)
          }),
          Effect.withSpan("Cas.commit", { attributes: { commitId, bytes: bodyLength(body) }, captureStackTrace: false })
        )

    return Cas.of({ key, minWriteInterval: store.minWriteInterval, load, head, commit })
  })

export const layer = (options: CasOptions = {}): Layer.Layer<Cas, never, ObjectStore> =>
  Layer.effect(Cas, make(options))
