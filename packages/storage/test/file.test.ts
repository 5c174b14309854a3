import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { createHash } from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as FileStore from "../src/FileStore.js"
import { syncedSliceBytes } from "../src/internal/file/fs.js"
import { contractSuite } from "./contract.js"
import { exited, outputOf, runFixture, until } from "./support/children.js"

const root = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "osqueue-filestore-"))
afterAll(() => NodeFs.rmSync(root, { recursive: true, force: true }))
let dirs = 0
const freshDir = () => NodePath.join(root, `store-${++dirs}`)

const encode = (text: string) => new TextEncoder().encode(text)
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

contractSuite("file", () => FileStore.layer({ directory: freshDir() }))
// A tiny generation window exercises garbage collection on every few writes.
contractSuite("file (keepGenerations: 2)", () => FileStore.layer({ directory: freshDir(), keepGenerations: 2 }))

describe("FileStore", () => {
  it.live("every write gets a new version, even of identical bytes", () =>
    Effect.gen(function*() {
      const store = yield* FileStore.make({ directory: freshDir() })
      const v1 = yield* store.put("k", encode("same"), { ifAbsent: true })
      const v2 = yield* store.put("k", encode("same"), { ifMatch: v1 })
      expect(v2).not.toBe(v1)
      expect((yield* store.put("k", encode("same"), { ifMatch: v1 }).pipe(Effect.flip))._tag).toBe("PreconditionFailed")
    }))

  it.live("racing writers in one process: every loser gets PreconditionFailed", () =>
    Effect.gen(function*() {
      const store = yield* FileStore.make({ directory: freshDir() })
      let version = yield* store.put("k", encode("base"), { ifAbsent: true })
      for (let round = 0; round < 5; round++) {
        const results = yield* Effect.all(
          Array.from({ length: 10 }, (_, i) =>
            Effect.either(store.put("k", encode(`${round}-${i}`), { ifMatch: version }))),
          { concurrency: "unbounded" }
        )
        const tags = results.map((r) => (r._tag === "Right" ? "won" : r.left._tag))
        expect(tags.filter((t) =>
          t === "won"
        )).toHaveLength(1)
        expect(tags.filter((t) => t === "PreconditionFailed")).toHaveLength(9)
        version = (yield* store.head("k").pipe(Effect.map(Option.getOrThrow))).version
      }
    }))

  it.live("keys cannot escape the directory", () =>
    Effect.gen(function*() {
      const store = yield* FileStore.make({ directory: freshDir() })
      for (const key of ["../escape", "a/../../b", "a/./b", "..", "", "/abs", "a//b", "a/"]) {
        const error = yield* store.put(key, encode("x"), { ifAbsent: true }).pipe(Effect.flip)
        expect(error._tag, key).toBe("StoreFailure")
        expect((yield* store.get(key).pipe(Effect.flip))._tag, key).toBe("StoreFailure")
      }
      expect((yield* store.list("../").pipe(Effect.flip))._tag).toBe("StoreFailure")
    }))

  it.live("odd but valid keys map to safe file names and list back unchanged", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const store = yield* FileStore.make({ directory })
      const keys = ["with space", "percent%2F", "star*", "@", "%40", "ünï/cødé", "dot.", ".hidden", "..."].map((k) =>
        `odd/${k}`
      )
      for (const key of keys) yield* store.put(key, encode(key), { ifAbsent: true })
      expect(yield* store.list("odd/")).toEqual([...keys].sort())
      for (const key of keys) {
        const stored = yield* store.get(key).pipe(Effect.map(Option.getOrThrow))
        expect(decode(stored.bytes)).toBe(key)
      }
      // Nothing was created outside the store's own folders.
      expect(NodeFs.readdirSync(directory).sort()).toEqual(["objects", "osqueue-store.json", "tmp"])
    }))

  it.live("a value longer than a synced slice is written in slices and reads back whole, from parts or one buffer", () =>
    Effect.gen(function*() {
      const store = yield* FileStore.make({ directory: freshDir() })
      // Parts of an odd size, so that slices end inside no part and between parts anywhere.
      const parts = Array.from({ length: 3_001 }, (_, i) => new Uint8Array(3_001).fill(i % 251))
      const whole = Buffer.concat(parts)
      expect(whole.length).toBeGreaterThan(2 * syncedSliceBytes)
      const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")
      const v1 = yield* store.put("big", parts, { ifAbsent: true })
      expect(sha((yield* store.get("big").pipe(Effect.map(Option.getOrThrow))).bytes)).toBe(sha(whole))
      const reversed = Buffer.from(whole).reverse()
      yield* store.put("big", reversed, { ifMatch: v1 })
      const stored = yield* store.get("big").pipe(Effect.map(Option.getOrThrow))
      expect(stored.bytes.length).toBe(whole.length)
      expect(sha(stored.bytes)).toBe(sha(reversed))
    }))

  it.live("two stores on one directory see each other's writes and race safely", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const a = yield* FileStore.make({ directory })
      const b = yield* FileStore.make({ directory })
      const v1 = yield* a.put("k", encode("from a"), { ifAbsent: true })
      const seen = yield* b.get("k").pipe(Effect.map(Option.getOrThrow))
      expect(seen.version).toBe(v1)
      const v2 = yield* b.put("k", encode("from b"), { ifMatch: v1 })
      expect((yield* a.put("k", encode("late a"), { ifMatch: v1 }).pipe(Effect.flip))._tag).toBe("PreconditionFailed")
      const latest = yield* a.get("k").pipe(Effect.map(Option.getOrThrow))
      expect(latest.version).toBe(v2)
      expect(decode(latest.bytes)).toBe("from b")
    }))

  it.live("old generations are collected; stale versions and stale readers stay correct", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const writer = yield* FileStore.make({ directory, keepGenerations: 2 })
      const reader = yield* FileStore.make({ directory, keepGenerations: 2 })
      const first = yield* writer.put("gc", encode("0"), { ifAbsent: true })
      yield* reader.get("gc") // the reader now caches generation 1
      let version = first
      for (let i = 1; i <= 40; i++) version = yield* writer.put("gc", encode(String(i)), { ifMatch: version })
      // Generation 0 is the key's own file; the later ones are in the folder named by its nonce.
      const generations = NodeFs.readdirSync(NodePath.join(directory, "objects", `gc@${first.split(".")[1]}`))
      expect(generations.length).toBeLessThanOrEqual(4)
      // The reader's cached generation is long gone: it must still find the newest one.
      const latest = yield* reader.get("gc").pipe(Effect.map(Option.getOrThrow))
      expect(decode(latest.bytes)).toBe("40")
      expect(latest.version).toBe(version)
      // A writer holding the very first version must not win, though its generation number is free.
      const stale = yield* reader.put("gc", encode("stale"), { ifMatch: first }).pipe(Effect.flip)
      expect(["PreconditionFailed", "OutcomeUnknown"]).toContain(stale._tag)
      const fresh = yield* FileStore.make({ directory })
      const after = yield* fresh.get("gc").pipe(Effect.map(Option.getOrThrow))
      expect(decode(after.bytes)).toBe("40")
      expect(after.version).toBe(version)
    }))

  it.live("a writer whose base generation was collected fails without writing", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const store = yield* FileStore.make({ directory, keepGenerations: 2 })
      const v1 = yield* store.put("k", encode("v1"), { ifAbsent: true })
      let version = v1
      for (let i = 2; i <= 10; i++) version = yield* store.put("k", encode(`v${i}`), { ifMatch: version })
      // Generation 2 is free again: a plain "link next number" scheme would let this write win.
      const gens = NodePath.join(directory, "objects", `k@${v1.split(".")[1]}`)
      expect(NodeFs.readdirSync(gens)).not.toContain("000000000002")
      const other = yield* FileStore.make({ directory, keepGenerations: 2 })
      const stale = yield* other.put("k", encode("stale"), { ifMatch: v1 }).pipe(Effect.flip)
      expect(stale._tag).toBe("PreconditionFailed")
      expect(NodeFs.readdirSync(gens)).not.toContain("000000000002")
      const latest = yield* other.get("k").pipe(Effect.map(Option.getOrThrow))
      expect(decode(latest.bytes)).toBe("v10")
      expect(latest.version).toBe(version)
    }))

  it.live("a generation re-created in a collected slot is never read as the newest", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const writer = yield* FileStore.make({ directory, keepGenerations: 2 })
      const staleReader = yield* FileStore.make({ directory, keepGenerations: 2 })
      const v1 = yield* writer.put("k", encode("v1"), { ifAbsent: true })
      yield* staleReader.get("k") // caches generation 1
      let version = v1
      for (let i = 2; i <= 10; i++) version = yield* writer.put("k", encode(`v${i}`), { ifMatch: version })
      // What a stale writer that lost the race against garbage collection leaves behind if it
      // is killed before cleaning up: a file in slot 2, written on top of generation 1.
      const gens = NodePath.join(directory, "objects", `k@${v1.split(".")[1]}`)
      const nonce1 = v1.split(".")[1]!
      const body = encode("garbage")
      const header = {
        v: 1,
        key: "k",
        gen: 2,
        nonce: "00000000deadbeef",
        parent: nonce1,
        deleted: false,
        size: body.length,
        metadata: {}
      }
      NodeFs.writeFileSync(
        NodePath.join(gens, "000000000002"),
        Buffer.concat([Buffer.from(JSON.stringify(header) + "\n"), body])
      )
      for (const store of [staleReader, yield* FileStore.make({ directory })]) {
        const latest = yield* store.get("k").pipe(Effect.map(Option.getOrThrow))
        expect(decode(latest.bytes)).toBe("v10")
        expect(latest.version).toBe(version)
      }
      // The garbage's own version is no base for a write either.
      const onGarbage = yield* writer.put("k", encode("x"), { ifMatch: "2.00000000deadbeef" }).pipe(Effect.flip)
      expect(onGarbage._tag).toBe("PreconditionFailed")
      // And the next write on the real newest version still wins.
      yield* writer.put("k", encode("v11"), { ifMatch: version })
    }))

  it.live("refuses a non-empty directory that is not a file store, and an unknown format", () =>
    Effect.gen(function*() {
      const foreign = freshDir()
      NodeFs.mkdirSync(foreign, { recursive: true })
      NodeFs.writeFileSync(NodePath.join(foreign, "notes.txt"), "hello")
      const error = yield* FileStore.make({ directory: foreign }).pipe(Effect.flip)
      expect(error._tag).toBe("StoreFailure")
      expect(error.message).toContain("empty")

      const future = freshDir()
      yield* FileStore.make({ directory: future })
      NodeFs.writeFileSync(
        NodePath.join(future, "osqueue-store.json"),
        JSON.stringify({ format: "osqueue-file-store", version: 99 })
      )
      const refused = yield* FileStore.make({ directory: future }).pipe(Effect.flip)
      expect(refused._tag).toBe("StoreFailure")
    }))

  it.live("leftovers of crashed writers in tmp/ are removed once they are old", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      yield* FileStore.make({ directory })
      const old = NodePath.join(directory, "tmp", "12345-old")
      const young = NodePath.join(directory, "tmp", "12345-young")
      NodeFs.writeFileSync(old, "partial")
      NodeFs.writeFileSync(young, "in progress")
      const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000)
      NodeFs.utimesSync(old, twoHoursAgo, twoHoursAgo)
      yield* FileStore.make({ directory })
      expect(NodeFs.readdirSync(NodePath.join(directory, "tmp"))).toEqual(["12345-young"])
    }))

  it.live("each log entry is one file, and an unconditional delete removes it: 500 created and deleted leave nothing", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      // Layout only: fsync changes nothing here, and 1,000 writes go faster without it.
      const store = yield* FileStore.make({ directory, fsync: false })
      const names = Array.from({ length: 500 }, (_, i) => String(i + 1).padStart(16, "0"))
      const keys = names.map((name) => `log/${name}`)
      yield* Effect.forEach(keys, (key) => store.put(key, encode(key), { ifAbsent: true }), {
        concurrency: 16,
        discard: true
      })
      // A key below a log entry has a folder of that name beside the entry's file.
      yield* store.put(`${keys[0]}/note`, encode("note"), { ifAbsent: true })
      const logDir = NodePath.join(directory, "objects", "log")
      expect(NodeFs.readdirSync(logDir).sort()).toEqual([...names.map((name) => `${name}@`), names[0]!].sort())
      yield* Effect.forEach(keys, (key) => store.delete(key), { concurrency: 16, discard: true })
      expect(yield* store.list("log/")).toEqual([`${keys[0]}/note`])
      expect(NodeFs.readdirSync(logDir)).toEqual([names[0]])
      expect(NodeFs.readdirSync(NodePath.join(logDir, names[0]!))).toEqual(["note@"])
      yield* store.delete(`${keys[0]}/note`)
      // Folders left empty go too, and nothing is left in tmp/.
      expect(NodeFs.readdirSync(NodePath.join(directory, "objects"))).toEqual([])
      expect(NodeFs.readdirSync(NodePath.join(directory, "tmp"))).toEqual([])
      // A removed key is created again from scratch, and reads back.
      yield* store.put(keys[7]!, encode("again"), { ifAbsent: true })
      expect(decode((yield* store.get(keys[7]!).pipe(Effect.map(Option.getOrThrow))).bytes)).toBe("again")
    }))

  it.live("a conditional write begins the key's folder of later generations; a delete removes both", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const store = yield* FileStore.make({ directory })
      const objects = NodePath.join(directory, "objects")
      const v0 = yield* store.put("k", encode("zero"), { ifAbsent: true })
      expect(NodeFs.readdirSync(objects)).toEqual(["k@"])
      // A create of a key that exists writes its file, finds the name taken and removes the file.
      expect((yield* store.put("k", encode("again"), { ifAbsent: true }).pipe(Effect.flip))._tag).toBe(
        "PreconditionFailed"
      )
      expect(NodeFs.readdirSync(NodePath.join(directory, "tmp"))).toEqual([])
      expect((yield* store.get("k").pipe(Effect.map(Option.getOrThrow))).version).toBe(v0)
      const nonce = v0.split(".")[1]!
      // Racing first conditional writes: exactly one begins the folder.
      const results = yield* Effect.all(
        Array.from({ length: 8 }, (_, i) => Effect.either(store.put("k", encode(`one ${i}`), { ifMatch: v0 }))),
        { concurrency: "unbounded" }
      )
      const won = results.flatMap((r) => (r._tag === "Right" ? [r.right] : []))
      expect(won).toHaveLength(1)
      expect(results.flatMap((r) => (r._tag === "Left" ? [r.left._tag] : []))).toEqual(
        Array(7).fill("PreconditionFailed")
      )
      expect(NodeFs.readdirSync(objects).sort()).toEqual(["k@", `k@${nonce}`])
      expect(NodeFs.readdirSync(NodePath.join(objects, `k@${nonce}`))).toEqual(["000000000001"])
      const v2 = yield* store.put("k", encode("two"), { ifMatch: won[0]! })
      const other = yield* FileStore.make({ directory })
      const stored = yield* other.get("k").pipe(Effect.map(Option.getOrThrow))
      expect([decode(stored.bytes), stored.version]).toEqual(["two", v2])
      expect((yield* store.put("k", encode("late"), { ifMatch: v0 }).pipe(Effect.flip))._tag).toBe("PreconditionFailed")
      // A conditional delete is a tombstone in the folder; a create writes on top of it.
      yield* store.delete("k", v2)
      expect(Option.isNone(yield* other.get("k"))).toBe(true)
      expect(yield* other.list("")).toEqual([])
      const v4 = yield* other.put("k", encode("four"), { ifAbsent: true })
      expect(v4.startsWith("4.")).toBe(true)
      expect(decode((yield* store.get("k").pipe(Effect.map(Option.getOrThrow))).bytes)).toBe("four")
      // An unconditional delete removes the file and the folder; the key starts again as one file.
      yield* other.delete("k")
      expect(NodeFs.readdirSync(objects)).toEqual([])
      expect(NodeFs.readdirSync(NodePath.join(directory, "tmp"))).toEqual([])
      expect((yield* store.put("k", encode("stale"), { ifMatch: v4 }).pipe(Effect.flip))._tag).toBe(
        "PreconditionFailed"
      )
      expect((yield* store.put("k", encode("stale"), { ifMatch: v0 }).pipe(Effect.flip))._tag).toBe(
        "PreconditionFailed"
      )
      const again = yield* store.put("k", encode("again"), { ifAbsent: true })
      expect(again.startsWith("0.")).toBe(true)
      expect(NodeFs.readdirSync(objects)).toEqual(["k@"])
    }))

  it.live("list reads no key whose file stands alone, and looks up the others: later generations, foreign names", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const store = yield* FileStore.make({ directory })
      // Another store on the directory, as another process: this one has confirmed nothing it writes.
      const other = yield* FileStore.make({ directory })
      const logDir = NodePath.join(directory, "objects", "log")
      const alone = Array.from({ length: 5 }, (_, i) => `log/${String(i + 1).padStart(16, "0")}`)
      for (const key of alone) yield* store.put(key, encode(key), { ifAbsent: true })
      // A tombstone written by the other store: the file stays, the key is not live.
      const tombstoned = "log/tombstoned"
      yield* other.delete(tombstoned, yield* store.put(tombstoned, encode("x"), { ifAbsent: true }))
      // A newer generation written by the other store: live.
      const rewritten = "log/rewritten"
      yield* other.put(rewritten, encode("y"), {
        ifMatch: yield* store.put(rewritten, encode("x"), { ifAbsent: true })
      })
      // A name that decodes to another key ("a/b", whose file would be log/a/b@), holding a good file.
      NodeFs.copyFileSync(NodePath.join(logDir, `${String(1).padStart(16, "0")}@`), NodePath.join(logDir, "a%2Fb@"))
      expect(yield* store.list("log/")).toEqual([...alone, rewritten].sort())
      expect(yield* other.list("log/")).toEqual([...alone, rewritten].sort())
      // A key whose file is gone once listed is not live: deleted by the other store, one left.
      for (const key of alone.slice(1)) yield* other.delete(key)
      expect(yield* store.list("log/0")).toEqual([alone[0]])
    }))

  it.live("a delete cut short after its rename leaves the key absent; the next open removes the leftovers", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const store = yield* FileStore.make({ directory })
      const v0 = yield* store.put("log/0000000000000001", encode("entry"), { ifAbsent: true })
      yield* store.put("log/0000000000000001", encode("entry 1"), { ifMatch: v0 })
      // What a process killed between the delete's rename and its removal leaves on disk: the
      // key's own file in tmp/, and the folder of its later generations where it was.
      const leftover = NodePath.join(directory, "tmp", "12345-0123456789abcdef.deleted")
      NodeFs.renameSync(NodePath.join(directory, "objects", "log", "0000000000000001@"), leftover)
      expect(Option.isNone(yield* store.get("log/0000000000000001"))).toBe(true)
      expect(yield* store.list("log/")).toEqual([])
      yield* FileStore.make({ directory })
      expect(NodeFs.readdirSync(NodePath.join(directory, "tmp"))).toEqual([])
      expect(NodeFs.readdirSync(NodePath.join(directory, "objects", "log"))).toEqual([])
      yield* store.put("log/0000000000000001", encode("again"), { ifAbsent: true })
      expect(yield* store.list("log/")).toEqual(["log/0000000000000001"])
      expect(decode((yield* store.get("log/0000000000000001").pipe(Effect.map(Option.getOrThrow))).bytes)).toBe(
        "again"
      )
    }))

  it.live("a directory of the release before (a folder per key) opens, reads, writes and deletes as it did", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const objects = NodePath.join(directory, "objects")
      // The previous layout, written as that release wrote it: format 1, each key a folder whose
      // `@` folder holds its generations, generation 0 included.
      const legacyGeneration = (
        key: string,
        gen: number,
        nonce: string,
        parent: string | null,
        body: string,
        deleted = false
      ) => {
        const folder = NodePath.join(objects, ...key.split("/"), "@")
        NodeFs.mkdirSync(folder, { recursive: true })
        const header = { v: 1, key, gen, nonce, parent, deleted, size: body.length, metadata: { from: "v1" } }
        NodeFs.writeFileSync(
          NodePath.join(folder, String(gen).padStart(12, "0")),
          `${JSON.stringify(header)}\n${body}`
        )
      }
      NodeFs.mkdirSync(NodePath.join(directory, "tmp"), { recursive: true })
      NodeFs.writeFileSync(
        NodePath.join(directory, "osqueue-store.json"),
        `${JSON.stringify({ format: "osqueue-file-store", version: 1 })}\n`
      )
      legacyGeneration("counters/visits", 0, "00000000000000a0", null, "1")
      legacyGeneration("counters/visits", 1, "00000000000000a1", "00000000000000a0", "2")
      legacyGeneration("log/0000000000000001", 0, "00000000000000b0", null, "entry 1")
      legacyGeneration("gone", 0, "00000000000000c0", null, "x")
      legacyGeneration("gone", 1, "00000000000000c1", "00000000000000c0", "", true)
      // A create of that release cut short by a power cut: an empty generations folder.
      NodeFs.mkdirSync(NodePath.join(objects, "empty", "@"), { recursive: true })

      const store = yield* FileStore.make({ directory })
      expect(JSON.parse(NodeFs.readFileSync(NodePath.join(directory, "osqueue-store.json"), "utf8"))).toEqual({
        format: "osqueue-file-store",
        version: 3
      })
      const visits = yield* store.get("counters/visits").pipe(Effect.map(Option.getOrThrow))
      expect([decode(visits.bytes), visits.version, visits.metadata]).toEqual(["2", "1.00000000000000a1", {
        from: "v1"
      }])
      expect(yield* store.head("log/0000000000000001").pipe(Effect.map(Option.map((h) => h.version)))).toEqual(
        Option.some("0.00000000000000b0")
      )
      expect(Option.isNone(yield* store.get("gone"))).toBe(true)
      expect(Option.isNone(yield* store.get("empty"))).toBe(true)
      expect(yield* store.list("")).toEqual(["counters/visits", "log/0000000000000001"])

      // Conditional writes go on in the key's folder; stale versions still fail.
      const v2 = yield* store.put("counters/visits", encode("3"), { ifMatch: visits.version })
      expect(v2.startsWith("2.")).toBe(true)
      expect(NodeFs.readdirSync(NodePath.join(objects, "counters", "visits", "@"))).toContain("000000000002")
      const stale = yield* store.put("counters/visits", encode("x"), { ifMatch: "0.00000000000000a0" }).pipe(
        Effect.flip
      )
      expect(stale._tag).toBe("PreconditionFailed")
      // A create on an existing legacy key fails; on a tombstone it writes on top; on an empty
      // folder it makes the key as one file.
      const taken = yield* store.put("log/0000000000000001", encode("again"), { ifAbsent: true }).pipe(Effect.flip)
      expect(taken._tag).toBe("PreconditionFailed")
      expect((yield* store.put("gone", encode("back"), { ifAbsent: true })).startsWith("2.")).toBe(true)
      expect((yield* store.put("empty", encode("made"), { ifAbsent: true })).startsWith("0.")).toBe(true)
      expect(NodeFs.existsSync(NodePath.join(objects, "empty@"))).toBe(true)
      // New log entries are files beside the legacy ones; list sees both kinds.
      yield* store.put("log/0000000000000002", encode("entry 2"), { ifAbsent: true })
      expect(yield* store.list("log/")).toEqual(["log/0000000000000001", "log/0000000000000002"])
      const other = yield* FileStore.make({ directory })
      for (const [key, text] of [["gone", "back"], ["empty", "made"], ["counters/visits", "3"]] as const) {
        expect(decode((yield* other.get(key).pipe(Effect.map(Option.getOrThrow))).bytes), key).toBe(text)
      }
      // Deletes remove either kind for good.
      yield* other.delete("log/0000000000000001")
      yield* other.delete("log/0000000000000002")
      expect(NodeFs.existsSync(NodePath.join(objects, "log"))).toBe(false)
      yield* Effect.forEach(["gone", "empty", "counters/visits"], (key) => store.delete(key), { discard: true })
      // The crash's empty legacy folder stays (it holds no object and costs list a readdir).
      expect(NodeFs.readdirSync(objects)).toEqual(["empty"])
      expect(yield* other.list("")).toEqual([])
      // A directory of a newer release is refused, as this one is by older releases (they cannot
      // see keys kept as one file, nor logs in segment files).
      NodeFs.writeFileSync(
        NodePath.join(directory, "osqueue-store.json"),
        `${JSON.stringify({ format: "osqueue-file-store", version: 4 })}\n`
      )
      expect((yield* FileStore.make({ directory }).pipe(Effect.flip))._tag).toBe("StoreFailure")
    }))

  it.live("a create cut short after its rename (its folder empty on disk) leaves the key absent, and the next create wins", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const store = yield* FileStore.make({ directory })
      // What a power cut can leave of a create whose rename reached the disk before the fsync of
      // its folder: an empty generations folder in place.
      NodeFs.mkdirSync(NodePath.join(directory, "objects", "log", "0000000000000001", "@"), { recursive: true })
      expect(Option.isNone(yield* store.get("log/0000000000000001"))).toBe(true)
      expect(Option.isNone(yield* store.head("log/0000000000000001"))).toBe(true)
      expect(yield* store.list("log/")).toEqual([])
      // Racing creators still have exactly one winner.
      const results = yield* Effect.all(
        Array.from(
          { length: 5 },
          (_, i) => Effect.either(store.put("log/0000000000000001", encode(`entry ${i}`), { ifAbsent: true }))
        ),
        { concurrency: "unbounded" }
      )
      expect(results.filter((r) => r._tag === "Right")).toHaveLength(1)
      expect(results.filter((r) => r._tag === "Left").map((r) => r.left._tag)).toEqual(
        Array(4).fill("PreconditionFailed")
      )
      const stored = yield* store.get("log/0000000000000001")
      expect(Option.map(stored, (o) => decode(o.bytes)).pipe(Option.getOrThrow)).toMatch(/^entry \d$/)
      expect(yield* store.list("log/")).toEqual(["log/0000000000000001"])
    }))

  it.live("a read-only directory is a StoreFailure that says what to fix", () =>
    Effect.gen(function*() {
      // root ignores file modes, so this check only means something for other users.
      if (process.getuid?.() === 0) return
      const directory = freshDir()
      const store = yield* FileStore.make({ directory })
      NodeFs.chmodSync(NodePath.join(directory, "tmp"), 0o500)
      const error = yield* store.put("k", encode("x"), { ifAbsent: true }).pipe(Effect.flip)
      NodeFs.chmodSync(NodePath.join(directory, "tmp"), 0o700)
      expect(error._tag).toBe("StoreFailure")
      expect(error.message).toContain("access")
    }))
})

// --- real OS processes ------------------------------------------------------------------------

/** A file-log.ts child: `send` writes one command line and resolves with its JSON answer. */
const logChild = (directory: string) => {
  const child = runFixture("file-log.ts", [directory])
  const output = outputOf(child)
  const waiting: Array<{ resolve: (answer: unknown) => void; reject: (error: Error) => void }> = []
  let buffered = ""
  child.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString()
    for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
      const line = buffered.slice(0, newline)
      buffered = buffered.slice(newline + 1)
      if (line.startsWith("{")) waiting.shift()?.resolve(JSON.parse(line))
    }
  })
  child.once("exit", () => {
    for (const { reject } of waiting.splice(0)) reject(new Error(`file-log.ts exited: ${output.stderr()}`))
  })
  return {
    process: child,
    pid: child.pid,
    ready: until(() => output.stdout().includes("ready"), child).catch(() => {
      throw new Error(`file-log.ts exited early: ${output.stderr()}`)
    }),
    send: (command: string) =>
      new Promise<unknown>((resolve, reject) => {
        waiting.push({ resolve, reject })
        child.stdin?.write(`${command}\n`)
      })
  }
}

const checksum = (seq: number, filler: string) => createHash("sha256").update(`${seq}:${filler}`).digest("hex")

describe("FileStore across OS processes", () => {
  it("processes racing read-modify-write on one key lose no update", { timeout: 30_000 }, async () => {
    const directory = freshDir()
    const processes = 3
    const increments = 40
    const children = Array.from(
      { length: processes },
      () => runFixture("file-racer.ts", [directory, "counter", String(increments)])
    )
    const outputs = children.map(outputOf)
    const results = Promise.all(children.map(exited))
    // Start them together, or the first one may finish before the last has loaded.
    await Promise.all(children.map((child, i) => until(() => outputs[i]!.stdout().includes("ready"), child)))
    for (const child of children) child.stdin?.end("go\n")
    await results
    ;(await results).forEach((result, i) => expect(result, outputs[i]!.stderr()).toEqual({ code: 0, signal: null }))
    const retries = outputs.map((o) => Number(/done (\d+) \d+/.exec(o.stdout())?.[1]))
    const stored = await Effect.runPromise(
      FileStore.make({ directory }).pipe(Effect.flatMap((store) => store.get("counter")), Effect.map(Option.getOrThrow))
    )
    expect((JSON.parse(decode(stored.bytes)) as { count: number }).count).toBe(processes * increments)
    // The race was real: they had to retry each other's wins.
    expect(retries.reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
  })

  it("10 creators of one key in two processes: exactly one wins, for new keys and for deleted ones", {
    timeout: 60_000
  }, async () => {
    const directory = freshDir()
    const children = [0, 1].map(() => logChild(directory))
    try {
      await Promise.all(children.map((child) => child.ready))
      const keys = Array.from({ length: 10 }, (_, i) => `log/${String(i + 1).padStart(16, "0")}`)
      const store = await Effect.runPromise(FileStore.make({ directory }))
      for (const round of ["new keys", "deleted keys"]) {
        for (const key of keys) {
          // Both processes get the key at once; each runs 5 creators.
          const answers = await Promise.all(children.map((child) => child.send(`create ${key} 5`)))
          const results = answers.flatMap((answer, p) =>
            (answer as { results: Array<string> }).results.map((result, i) => ({
              result,
              body: `${children[p]!.pid}-${i}`
            }))
          )
          const winners = results.filter((r) => r.result === "won")
          expect(winners, `${round}: ${key}`).toHaveLength(1)
          expect(results.filter((r) => r.result === "PreconditionFailed"), `${round}: ${key}`).toHaveLength(9)
          const stored = await Effect.runPromise(store.get(key).pipe(Effect.map(Option.getOrThrow)))
          expect(decode(stored.bytes)).toBe(winners[0]!.body)
        }
        await Effect.runPromise(Effect.forEach(keys, (key) => store.delete(key), { discard: true }))
        expect(NodeFs.readdirSync(NodePath.join(directory, "objects"))).toEqual([])
      }
    } finally {
      for (const child of children) child.process.kill()
    }
  })

  it(
    "creates and deletes of one key racing in two processes: no error, and nothing left behind",
    { timeout: 60_000 },
    async () => {
      const directory = freshDir()
      const children = [0, 1].map(() => logChild(directory))
      try {
        await Promise.all(children.map((child) => child.ready))
        const answers = (await Promise.all(children.map((child) =>
          child.send("churn log/0000000000000001 50")
        ))) as Array<{
          outcomes: Record<string, number>
          problems: Array<string>
        }>
        for (const { problems } of answers) expect(problems).toEqual([])
        const won = answers.reduce((sum, { outcomes }) => sum + (outcomes.won ?? 0), 0)
        const lost = answers.reduce((sum, { outcomes }) => sum + (outcomes.PreconditionFailed ?? 0), 0)
        // Both happened: creates on a deleted key won, and creates raced an existing one.
        expect(won).toBeGreaterThan(0)
        expect(lost).toBeGreaterThan(0)
        const store = await Effect.runPromise(FileStore.make({ directory }))
        await Effect.runPromise(store.delete("log/0000000000000001"))
        // No file a racing create wrote into a removed or re-created folder stays behind.
        expect(NodeFs.readdirSync(NodePath.join(directory, "objects"), { recursive: true })).toEqual([])
        expect(NodeFs.readdirSync(NodePath.join(directory, "tmp"))).toEqual([])
        await Effect.runPromise(store.put("log/0000000000000001", encode("after"), { ifAbsent: true }))
        expect(await Effect.runPromise(store.list("log/"))).toEqual(["log/0000000000000001"])
      } finally {
        for (const child of children) child.process.kill()
      }
    }
  )

  it("a reader in another process sees each log entry whole or not at all while entries are created and deleted", {
    timeout: 60_000
  }, async () => {
    const directory = freshDir()
    const reader = logChild(directory)
    try {
      await reader.ready
      const store = await Effect.runPromise(FileStore.make({ directory }))
      const key = (n: number) => `log/${String(n).padStart(16, "0")}`
      const answer = reader.send("read log/ 2000")
      let done = false
      answer.then(() => (done = true), () => (done = true))
      // Append entries and delete all but the newest five, as the log's garbage collection does.
      for (let n = 1; !done; n++) {
        await Effect.runPromise(store.put(key(n), encode(key(n)), { ifAbsent: true }))
        if (n > 5) await Effect.runPromise(store.delete(key(n - 5)))
      }
      const { found, passes, problems } = (await answer) as { passes: number; found: number; problems: Array<string> }
      expect(problems).toEqual([])
      expect(passes).toBeGreaterThan(10)
      expect(found).toBeGreaterThan(10)
    } finally {
      reader.process.kill()
    }
  })

  it("a writer killed mid-write leaves the last good state, readable and writable", { timeout: 30_000 }, async () => {
    const directory = freshDir()
    let lastSeen = 0
    for (let round = 0; round < 2; round++) {
      const child = runFixture("file-crasher.ts", [directory, "doc"])
      const output = outputOf(child)
      const done = exited(child)
      // Let it write a few documents, then kill it at an arbitrary point of the next one.
      const target = lastSeen + 3
      const wrote = () => Math.max(0, ...[...output.stdout().matchAll(/wrote (\d+)/g)].map((m) => Number(m[1])))
      await until(() => wrote() >= target, child).catch(() => {
        throw new Error(`writer exited early: ${output.stderr()}`)
      })
      await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 15)))
      child.kill("SIGKILL")
      expect((await done).signal).toBe("SIGKILL")

      const check = Effect.gen(function*() {
        const store = yield* FileStore.make({ directory, keepGenerations: 2 })
        const stored = yield* store.get("doc").pipe(Effect.map(Option.getOrThrow))
        const doc = JSON.parse(decode(stored.bytes)) as { seq: number; filler: string; checksum: string }
        expect(doc.checksum).toBe(checksum(doc.seq, doc.filler))
        // Every acknowledged write is there (the kill may have come after one more landed).
        expect(doc.seq).toBeGreaterThanOrEqual(target)
        // And the state is writable: a fresh CAS on it wins.
        const next = { seq: doc.seq + 1, filler: "after crash", checksum: checksum(doc.seq + 1, "after crash") }
        yield* store.put("doc", encode(JSON.stringify(next)), { ifMatch: stored.version })
        return next.seq
      })
      lastSeen = await Effect.runPromise(check)
    }
  })
})
