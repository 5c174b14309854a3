/**
 * What the file layer's own failures mean to a caller of the `ObjectStore`: an errno becomes
 * StoreUnavailable (retry later: a full disk, a busy file) or a StoreFailure whose reason says
 * what to change (permissions, a read-only or link-less file system, a foreign file).
 */
import * as Data from "effect/Data"
import { StoreFailure, StoreUnavailable } from "../../ObjectStore.js"
import type { FsError } from "./fs.js"

/** A file of the store that does not have the store's format. */
export class Corrupt extends Data.TaggedError("Corrupt")<{ readonly path: string; readonly reason: string }> {}

/** A key the store cannot map to a folder (empty, a "." or ".." segment, not valid Unicode). */
export class BadKey extends Data.TaggedError("BadKey")<{ readonly reason: string }> {}

export type FileLayerError = FsError | Corrupt | BadKey

/** Maps a failure of `operation` on `key` to the `ObjectStore` errors; `root` is the store's directory, for advice. */
export type ToStoreError = (
  operation: string,
  key: string
) => (e: FileLayerError | StoreUnavailable | StoreFailure) => StoreUnavailable | StoreFailure

export const toStoreErrorIn = (root: string): ToStoreError => (operation, key) => (e) => {
  switch (e._tag) {
    case "StoreUnavailable":
    case "StoreFailure":
      return e
    case "BadKey":
      return new StoreFailure({ operation, key, reason: e.reason })
    case "Corrupt":
      return new StoreFailure({
        operation,
        key,
        reason: `corrupt file ${e.path} (${e.reason}); it was changed outside osqueue or the disk is failing`
      })
    case "FsError":
      return fromErrno(root, operation, key, e)
  }
}

const fromErrno = (root: string, operation: string, key: string, e: FsError): StoreUnavailable | StoreFailure => {
  const failure = (reason: string) => new StoreFailure({ operation, key, reason, cause: e.cause })
  switch (e.code) {
    case "ENOSPC":
    case "EDQUOT":
    case "EIO":
    case "EMFILE":
    case "ENFILE":
    case "EAGAIN":
    case "EBUSY":
    case "EINTR":
    case "ETIMEDOUT":
      return new StoreUnavailable({ operation, key, cause: e.cause })
    case "EACCES":
    case "EPERM":
      return failure(
        e.op === "link"
          ? `cannot create a hard link at ${e.path} (${e.code}): give this user write access to ${root}, and keep it on a local file system with hard links (ext4, xfs, btrfs, apfs)`
          : `permission denied on ${e.path} (${e.code}): give the user running osqueue read and write access to ${root} (owner or mode)`
      )
    case "EROFS":
      return failure(`${root} is on a read-only file system; point the file store at a writable directory`)
    case "ENOTSUP":
    case "EOPNOTSUPP":
    case "EXDEV":
      return failure(
        `the file system at ${root} cannot ${e.op} here (${e.code}); the file store needs hard links within one local file system`
      )
    case "ENAMETOOLONG":
      return failure(`key too long for the file system (${e.path}); use shorter key segments`)
    case "ENOTDIR":
    case "EISDIR":
      return failure(`unexpected file type at ${e.path}: something other than osqueue wrote into ${root}`)
    default:
      return failure(`${e.op} of ${e.path} failed: ${e.code ?? String(e.cause)}`)
  }
}

/**
 * Errors of a `link` that publishes a generation which show the write did not happen and will
 * not on a retry; any other error leaves the write's outcome unknown.
 */
export const linkRefusedCodes: ReadonlySet<string> = new Set([
  "ENOSPC",
  "EDQUOT",
  "EACCES",
  "EPERM",
  "EROFS",
  "EMLINK",
  "ENOTSUP",
  "EOPNOTSUPP",
  "EXDEV",
  "ENAMETOOLONG"
])
