/**
 * The generation protocol: a key's newest generation is its object. A write publishes
 * generation n+1 with `link`, which the kernel refuses when it exists (the compare-and-swap); a
 * reader walks up from a known generation and confirms what it found; old generations are
 * collected lowest first. The argument that no update is lost is in the package README, "Why no
 * lost update".
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import {
  type Body,
  bodyLength,
  type Metadata,
  OutcomeUnknown,
  PreconditionFailed,
  type StoreFailure,
  StoreUnavailable
} from "../../ObjectStore.js"
import type { StoreDirectory } from "./directory.js"
import { type Corrupt, linkRefusedCodes } from "./errors.js"
import {
  exists,
  type FsError,
  fsOp,
  fsOpOnPool,
  optional,
  readFirstLine,
  readWhole,
  syncDirectory,
  unlinkQuietly,
  writeDurable
} from "./fs.js"
import {
  type GenerationId,
  type GenFile,
  type Header,
  headerLine,
  newNonce,
  parseGenFile,
  parseGenName,
  versionOf
} from "./generationFile.js"

/** A generation that a reader has confirmed as the newest, written by a writer that won its race. */
export interface Top {
  readonly gen: number
  readonly header: Header
  readonly body: Uint8Array | undefined
}

const MAX_LOOKUP_ATTEMPTS = 25

/**
 * A write's own generation file turned out to be unconfirmed (its base was gone after the link,
 * and nothing was written on top of it), and the writer removed it: nobody ever read it.
 */
export class Discarded extends Data.TaggedError("Discarded")<{ readonly gen: number }> {}

export const readGen = (
  store: StoreDirectory,
  dir: string,
  gen: number,
  withBody: boolean
): Effect.Effect<Option.Option<GenFile>, FsError | Corrupt> => {
  const path = store.genPath(dir, gen)
  return optional(
    (withBody ? readWhole(path) : readFirstLine(path)).pipe(
      Effect.flatMap((buffer) => parseGenFile(path, buffer, withBody))
    )
  )
}

/** Whether the file with this nonce is still published at this generation. */
const stillThere = (store: StoreDirectory, dir: string, gen: number, nonce: string) =>
  readGen(store, dir, gen, false).pipe(Effect.map(Option.exists((file) => file.header.nonce === nonce)))

/** The highest generation number on disk, by listing the folder (only when the cache cannot help). */
const newestListed = (dir: string): Effect.Effect<Option.Option<number>, FsError> =>
  optional(fsOp("readdir", dir, () =>
    // A create's key usually has no folder: a stat that answers "no" costs far less than the
    // exception of a readdir that fails (a folder removed in between still fails: ENOENT).
    NodeFs.statSync(dir, { throwIfNoEntry: false }) === undefined ? [] : NodeFs.readdirSync(dir))).pipe(
      Effect.map(Option.flatMap((names) => {
        let max: number | undefined
        for (const name of names) {
          const gen = parseGenName(name)
          if (gen !== undefined && (max === undefined || gen > max)) max = gen
        }
        return Option.fromNullable(max)
      }))
    )

/**
 * Finds the newest generation of a key. Correct against concurrent writers and garbage
 * collection: the answer was the newest generation at some instant during the call, and it
 * was written by a writer that won its race (see README, "Why no lost update").
 */
export const lookup = (
  store: StoreDirectory,
  key: string,
  dir: string,
  withBody: boolean
): Effect.Effect<Option.Option<Top>, FsError | Corrupt | StoreUnavailable> =>
  Effect.gen(function*() {
    let start = store.confirmed.get(key)
    for (let attempt = 0; attempt < MAX_LOOKUP_ATTEMPTS; attempt++) {
      let current: GenerationId
      if (start !== undefined) {
        current = start
      } else {
        const newest = yield* newestListed(dir)
        if (Option.isNone(newest)) return Option.none()
        const file = yield* readGen(store, dir, newest.value, false)
        if (Option.isNone(file)) continue
        current = { gen: newest.value, nonce: file.value.header.nonce }
      }
      start = undefined
      // Walk up while the next generation exists and was written on top of the current one.
      let broken = false
      for (;;) {
        // Usually there is none: a stat that answers "no" costs far less than a failed open.
        if (!(yield* exists(store.genPath(dir, current.gen + 1)))) break
        const next = yield* readGen(store, dir, current.gen + 1, false)
        if (Option.isNone(next)) break
        if (next.value.header.parent !== current.nonce) {
          broken = true
          break
        }
        current = { gen: current.gen + 1, nonce: next.value.header.nonce }
      }
      if (broken) continue
      // Re-read the top after seeing no successor: then it was the newest at that instant.
      const top = yield* readGen(store, dir, current.gen, withBody)
      if (Option.isNone(top) || top.value.header.nonce !== current.nonce) continue
      const known = store.confirmed.get(key)
      const alreadyConfirmed = known !== undefined && known.gen === current.gen && known.nonce === current.nonce
      // Its parent still being there proves the top's writer did not publish into a
      // generation number that garbage collection had already freed. Generation 0 is never
      // published into a folder: it comes with the folder.
      if (!alreadyConfirmed && current.gen > 0) {
        const parent = top.value.header.parent
        if (parent === null || !(yield* stillThere(store, dir, current.gen - 1, parent))) continue
      }
      store.confirmed.set(key, current)
      return Option.some({ gen: current.gen, header: top.value.header, body: top.value.body })
    }
    return yield* new StoreUnavailable({
      operation: "lookup",
      key,
      cause: `lost ${MAX_LOOKUP_ATTEMPTS} races with concurrent writers and garbage collection in a row`
    })
  })

/** Deletes old generations, lowest first (the order the no-lost-update argument relies on). */
const collect = (store: StoreDirectory, key: string, dir: string, newest: number) =>
  Effect.gen(function*() {
    const names = yield* fsOp("readdir", dir, () => NodeFs.readdirSync(dir))
    const old = names
      .map(parseGenName)
      .filter((gen): gen is number => gen !== undefined && gen <= newest - store.keep)
      .sort((a, b) => a - b)
    if (old.length === 0) return
    for (const gen of old) {
      // On the thread pool: freeing a large file's pages takes a while.
      const path = store.genPath(dir, gen)
      yield* fsOpOnPool("unlink", path, () => NodeFs.promises.unlink(path)).pipe(
        Effect.catchIf((e) => e.code === "ENOENT", () => Effect.void)
      )
    }
    yield* syncDirectory(dir, store.sync)
  }).pipe(
    Effect.catchAll((e) => Effect.logDebug("FileStore: garbage collection skipped", e)),
    Effect.annotateLogs({ key })
  )

export const baseCollected = (store: StoreDirectory, key: string, gen: number) =>
  Effect.logWarning("FileStore: write of unknown outcome, its base generation was collected meanwhile").pipe(
    Effect.annotateLogs({ key, generation: gen, keepGenerations: store.keep }),
    Effect.zipRight(
      Effect.fail(
        new OutcomeUnknown({ key, cause: "the generation this write was based on was garbage-collected concurrently" })
      )
    )
  )

/** What a write publishes on top of its base. */
export interface Publication {
  readonly operation: string
  readonly key: string
  /** The key's generations folder. */
  readonly dir: string
  readonly base: GenerationId
  readonly body: Body
  /** A tombstone (a conditional delete). */
  readonly deleted: boolean
  readonly metadata: Metadata
  /** What PreconditionFailed names as expected. */
  readonly expected: string
}

/**
 * Publishes generation `base.gen + 1` on top of `base`. Fails with PreconditionFailed when
 * another writer published that generation first (or the key's folder is gone), and with
 * Discarded when it removed its own unconfirmed file.
 */
export const publish = (
  store: StoreDirectory,
  { base, body, deleted, dir, expected, key, metadata, operation }: Publication
): Effect.Effect<string, StoreFailure | StoreUnavailable | PreconditionFailed | OutcomeUnknown | Discarded> =>
  Effect.gen(function*() {
    const gen = base.gen + 1
    const nonce = newNonce()
    const header: Header = {
      v: 1,
      key,
      gen,
      nonce,
      parent: base.nonce,
      deleted,
      size: bodyLength(body),
      metadata: { ...metadata }
    }
    const target = store.genPath(dir, gen)
    const staged = store.tmpPath("")

    yield* Effect.gen(function*() {
      yield* writeDurable(staged, headerLine(header), body, store.sync).pipe(
        Effect.mapError(store.toStoreError(operation, key))
      )
      // The compare-and-swap: the kernel creates the name only if nobody else did.
      yield* fsOp("link", target, () => NodeFs.linkSync(staged, target)).pipe(
        Effect.catchIf(
          (e) => e.code === "EEXIST" || e.code === "ENOENT",
          () => Effect.fail(new PreconditionFailed({ key, expected }))
        ),
        Effect.mapError((e) =>
          e._tag === "PreconditionFailed"
            ? e
            : linkRefusedCodes.has(e.code ?? "")
            ? store.toStoreError(operation, key)(e)
            : new OutcomeUnknown({ key, cause: e })
        )
      )
    }).pipe(Effect.ensuring(unlinkQuietly(staged)))

    // From here on the write may have landed: anything that goes wrong is OutcomeUnknown.
    const unknown = (cause: unknown) => new OutcomeUnknown({ key, cause })
    yield* syncDirectory(dir, store.sync).pipe(Effect.mapError(unknown))
    // The base still being there proves that generation `gen` had never existed before our
    // link, so we are its one and only writer (README, "Why no lost update").
    const confirmed = yield* stillThere(store, dir, base.gen, base.nonce).pipe(Effect.mapError(unknown))
    if (!confirmed) {
      // The base was collected meanwhile. If the next generation was written on top of ours,
      // someone read ours as the newest, which readers only do for a writer that won.
      const successor = yield* readGen(store, dir, gen + 1, false).pipe(Effect.mapError(unknown))
      if (Option.isNone(successor) || successor.value.header.parent !== nonce) {
        // Our file is still there with nothing on top: we published into a generation number
        // that garbage collection had freed, or into the folder of a key deleted and created
        // again. Readers skip such a file (its parent is gone), so nobody read it: remove it.
        const ours = yield* stillThere(store, dir, gen, nonce).pipe(Effect.orElseSucceed(() => false))
        if (ours) {
          yield* unlinkQuietly(target)
          return yield* new Discarded({ gen })
        }
        // Gone already: we may have won and been outpaced by `keep` newer writes.
        return yield* baseCollected(store, key, gen)
      }
    }
    store.confirmed.set(key, { gen, nonce })
    if (gen % store.gcEvery === 0 && gen >= store.keep) yield* collect(store, key, dir, gen)
    return versionOf(gen, nonce)
  })
