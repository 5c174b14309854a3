/**
 * The generation protocol: a key's newest generation is its object. A write publishes
 * generation n+1 with `link`, which the kernel refuses when it exists (the compare-and-swap); a
 * reader walks up from a known generation and confirms what it found; old generations are
 * collected lowest first. The argument that no update is lost is in the package README, "Why no
 * lost update". A chain of generations is a folder of them; generation 0 is in it (legacy layout)
 * or is the key's own file beside it (`flat.ts`), which is never collected while the key lives.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import {
  type Body,
  bodyLength,
  type Metadata,
  OutcomeUnknown,
  PreconditionFailed,
  type StoreFailure,
  StoreUnavailable
} from "../../ObjectStore.js"
import { REMOVED_SUFFIX, type StoreDirectory } from "./directory.js"
import { type Corrupt, linkRefusedCodes } from "./errors.js"
import {
  exists,
  type FsError,
  fsOp,
  fsOpOnPool,
  optional,
  readFirstLine,
  readWhole,
  syncDirectoriesTogether,
  syncDirectoryShared,
  unlinkQuietly,
  writeDurable
} from "./fs.js"
import {
  type GenerationId,
  type GenFile,
  genName,
  type Header,
  headerLine,
  newNonce,
  parseGenFile,
  parseGenName,
  versionOf
} from "./generationFile.js"

/** A key's generations: the folder of them, and the file of generation 0 when it is not in that folder. */
export interface Chain {
  readonly dir: string
  /** The key's own file (flat layout) and its nonce; undefined in the legacy layout. */
  readonly root: { readonly path: string; readonly nonce: string } | undefined
}

export const legacyChain = (dir: string): Chain => ({ dir, root: undefined })

export const genPath = (chain: Chain, gen: number) =>
  gen === 0 && chain.root !== undefined ? chain.root.path : NodePath.join(chain.dir, genName(gen))

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

export const readFile = (path: string, withBody: boolean): Effect.Effect<Option.Option<GenFile>, FsError | Corrupt> =>
  optional(
    (withBody ? readWhole(path) : readFirstLine(path)).pipe(
      Effect.flatMap((buffer) => parseGenFile(path, buffer, withBody))
    )
  )

export const readGen = (
  chain: Chain,
  gen: number,
  withBody: boolean
): Effect.Effect<Option.Option<GenFile>, FsError | Corrupt> => readFile(genPath(chain, gen), withBody)

/** Whether the file with this nonce is still published at this generation. */
export const stillThere = (chain: Chain, gen: number, nonce: string) =>
  readGen(chain, gen, false).pipe(Effect.map(Option.exists((file) => file.header.nonce === nonce)))

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
 * Finds the newest generation of a key's chain. Correct against concurrent writers and garbage
 * collection: the answer was the newest generation at some instant during the call, and it
 * was written by a writer that won its race (see README, "Why no lost update"). None when the
 * chain holds no generation: a legacy folder that is gone or empty, or a key's own file that is
 * gone or was replaced (deleted, maybe created again: the caller looks at the key afresh).
 */
export const lookup = (
  store: StoreDirectory,
  key: string,
  chain: Chain,
  withBody: boolean
): Effect.Effect<Option.Option<Top>, FsError | Corrupt | StoreUnavailable> =>
  Effect.gen(function*() {
    const root = chain.root
    const cached = store.confirmed.get(key)
    let start = cached !== undefined && cached.root === root?.nonce ? cached : undefined
    for (let attempt = 0; attempt < MAX_LOOKUP_ATTEMPTS; attempt++) {
      let current: GenerationId
      if (start !== undefined) {
        current = start
      } else {
        const newest = yield* newestListed(chain.dir)
        if (Option.isNone(newest)) {
          // A key's own file with no later generations (yet): generation 0 is the candidate.
          if (root === undefined) return Option.none()
          current = { gen: 0, nonce: root.nonce }
        } else {
          const file = yield* readGen(chain, newest.value, false)
          if (Option.isNone(file)) continue
          current = { gen: newest.value, nonce: file.value.header.nonce }
        }
      }
      start = undefined
      // A key's own file is never collected, so it may have successors that were: it is the
      // newest only while the key has no folder of later generations, which its first
      // conditional write begins and nothing but a delete removes.
      if (root !== undefined && current.gen === 0 && (yield* exists(chain.dir))) continue
      // Walk up while the next generation exists and was written on top of the current one.
      let broken = false
      for (;;) {
        // Usually there is none: a stat that answers "no" costs far less than a failed open.
        if (!(yield* exists(genPath(chain, current.gen + 1)))) break
        const next = yield* readGen(chain, current.gen + 1, false)
        if (Option.isNone(next)) break
        if (next.value.header.parent !== current.nonce) {
          broken = true
          break
        }
        current = { gen: current.gen + 1, nonce: next.value.header.nonce }
      }
      if (broken) continue
      // Re-read the top after seeing no successor: then it was the newest at that instant.
      const top = yield* readGen(chain, current.gen, withBody)
      if (Option.isNone(top) || top.value.header.nonce !== current.nonce) {
        // The key's own file gone or replaced: deleted meanwhile.
        if (root !== undefined && current.gen === 0) return Option.none()
        continue
      }
      const known = store.confirmed.get(key)
      const alreadyConfirmed = known !== undefined && known.gen === current.gen && known.nonce === current.nonce
      // Its parent still being there proves the top's writer did not publish into a
      // generation number that garbage collection had already freed. Generation 0 is never
      // published into a folder: it comes with the folder, or is the key's own file.
      if (!alreadyConfirmed && current.gen > 0) {
        const parent = top.value.header.parent
        if (parent === null || !(yield* stillThere(chain, current.gen - 1, parent))) continue
      }
      // A key's own file still there after the top was read (for generation 1, its parent check
      // just read it): the key was not deleted meanwhile, which removes that file first.
      if (root !== undefined && current.gen > 0 && (alreadyConfirmed || current.gen > 1)) {
        if (!(yield* stillThere(chain, 0, root.nonce))) return Option.none()
      }
      store.confirmed.set(key, { ...current, root: root?.nonce })
      return Option.some({ gen: current.gen, header: top.value.header, body: top.value.body })
    }
    return yield* new StoreUnavailable({
      operation: "lookup",
      key,
      cause: `lost ${MAX_LOOKUP_ATTEMPTS} races with concurrent writers and garbage collection in a row`
    })
  })

/** Deletes old generations, lowest first (the order the no-lost-update argument relies on). */
const collect = (store: StoreDirectory, key: string, chain: Chain, newest: number) =>
  Effect.gen(function*() {
    const names = yield* fsOp("readdir", chain.dir, () => NodeFs.readdirSync(chain.dir))
    const old = names
      .map(parseGenName)
      .filter((gen): gen is number => gen !== undefined && gen <= newest - store.keep)
      .sort((a, b) => a - b)
    if (old.length === 0) return
    for (const gen of old) {
      // On the thread pool: freeing a large file's pages takes a while.
      const path = genPath(chain, gen)
      yield* fsOpOnPool("unlink", path, () => NodeFs.promises.unlink(path)).pipe(
        Effect.catchIf((e) => e.code === "ENOENT", () => Effect.void)
      )
    }
    yield* syncDirectoryShared(chain.dir, store.sync)
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
  readonly chain: Chain
  readonly base: GenerationId
  readonly body: Body
  /** A tombstone (a conditional delete). */
  readonly deleted: boolean
  readonly metadata: Metadata
  /** What PreconditionFailed names as expected. */
  readonly expected: string
}

/**
 * Puts the prepared file `staged` in place as generation `gen` of the chain, failing with
 * PreconditionFailed when that generation exists. Generation 1 of a key kept as its own file
 * begins the key's folder of later generations: the folder is prepared under tmp/ with the
 * generation in it and renamed into place, which fails when the folder exists; it exists only
 * once some generation 1 was published, and stays (never empty) until the key is deleted.
 * Any other generation is a `link` into the folder, refused when the name exists.
 */
const place = (store: StoreDirectory, chain: Chain, gen: number, staged: string) => {
  if (chain.root === undefined || gen > 1) {
    const target = genPath(chain, gen)
    return fsOp("link", target, () => NodeFs.linkSync(staged, target))
  }
  const folder = store.tmpPath(".d")
  return fsOp("mkdir", folder, () => NodeFs.mkdirSync(folder)).pipe(
    Effect.zipRight(fsOp("link", folder, () => NodeFs.linkSync(staged, NodePath.join(folder, genName(gen))))),
    Effect.zipRight(fsOp("rename", chain.dir, () => NodeFs.renameSync(folder, chain.dir))),
    Effect.tapError(() =>
      fsOp("rm", folder, () => NodeFs.rmSync(folder, { recursive: true, force: true })).pipe(Effect.ignore)
    )
  )
}

/** Removes generation `gen` the writer published and found unconfirmed (see `publish`). */
const withdraw = (store: StoreDirectory, chain: Chain, gen: number) => {
  if (chain.root === undefined || gen > 1) return unlinkQuietly(genPath(chain, gen))
  // The folder this write began: nobody else writes into it (its generation 1 is unconfirmed).
  const removed = store.tmpPath(REMOVED_SUFFIX)
  return fsOp("rename", chain.dir, () => NodeFs.renameSync(chain.dir, removed)).pipe(
    Effect.zipRight(fsOp("rm", removed, () => NodeFs.rmSync(removed, { recursive: true, force: true }))),
    Effect.ignore
  )
}

/**
 * Publishes generation `base.gen + 1` on top of `base`. Fails with PreconditionFailed when
 * another writer published that generation first (or the key's folder is gone), and with
 * Discarded when it removed its own unconfirmed file.
 */
export const publish = (
  store: StoreDirectory,
  { base, body, chain, deleted, expected, key, metadata, operation }: Publication
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
    const staged = store.tmpPath("")

    yield* Effect.gen(function*() {
      yield* writeDurable(staged, headerLine(header), body, store.sync).pipe(
        Effect.mapError(store.toStoreError(operation, key))
      )
      // The compare-and-swap: the kernel creates the name only if nobody else did.
      yield* place(store, chain, gen, staged).pipe(
        Effect.catchIf(
          // ENOTEMPTY: the rename that begins a key's folder found one (see `place`).
          (e) => e.code === "EEXIST" || e.code === "ENOTEMPTY" || e.code === "ENOENT",
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
    // Durable: the generation's entry in its folder, and a new folder's entry in the key's parent.
    const began = chain.root !== undefined && gen === 1
    yield* (began
      ? syncDirectoriesTogether([chain.dir, NodePath.dirname(chain.dir)], store.sync)
      : syncDirectoryShared(chain.dir, store.sync)).pipe(Effect.mapError(unknown))
    // The base still being there proves that generation `gen` had never existed before our
    // link, so we are its one and only writer (README, "Why no lost update"). For the first
    // generation of a key's folder, it proves that the key was not deleted meanwhile.
    const confirmed = yield* stillThere(chain, base.gen, base.nonce).pipe(Effect.mapError(unknown))
    if (!confirmed) {
      // The base was collected meanwhile. If the next generation was written on top of ours,
      // someone read ours as the newest, which readers only do for a writer that won.
      const successor = yield* readGen(chain, gen + 1, false).pipe(Effect.mapError(unknown))
      if (Option.isNone(successor) || successor.value.header.parent !== nonce) {
        // Our file is still there with nothing on top: we published into a generation number
        // that garbage collection had freed, or into the folder of a key deleted (and created
        // again). Readers skip such a file (its parent is gone), so nobody read it: remove it.
        const ours = yield* stillThere(chain, gen, nonce).pipe(Effect.orElseSucceed(() => false))
        if (ours) {
          yield* withdraw(store, chain, gen)
          return yield* new Discarded({ gen })
        }
        // Gone already: we may have won and been outpaced by `keep` newer writes.
        return yield* baseCollected(store, key, gen)
      }
    }
    store.confirmed.set(key, { gen, nonce, root: chain.root?.nonce })
    if (gen % store.gcEvery === 0 && gen >= store.keep) yield* collect(store, key, chain, gen)
    return versionOf(gen, nonce)
  })
