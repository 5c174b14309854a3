import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Scope } from "effect"
import { createHash } from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { crc32 } from "node:zlib"
import * as FileStore from "../src/FileStore.js"
import { SEGMENT_ENTRIES as S } from "../src/internal/file/segmentFile.js"
import type { AppendLogs } from "../src/ObjectStore.js"
import { closed, outputOf, runFixture, until } from "./support/children.js"

const root = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "osqueue-segments-"))
afterAll(() => NodeFs.rmSync(root, { recursive: true, force: true }))
let dirs = 0
const freshDir = () => NodePath.join(root, `store-${++dirs}`)

const encode = (text: string) => new TextEncoder().encode(text)
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

/** The logs of a new store instance on `directory`: nothing of a segment indexed yet. */
const logsOn = (directory: string, options: { readonly fsync?: boolean } = {}) =>
  FileStore.make({ directory, ...options }).pipe(Effect.map((store) => store.appendLogs!))

/** What `read` answers, as text: undefined for None. */
const readText = (logs: AppendLogs, log: string, position: number) =>
  logs.read(log, position).pipe(Effect.map(Option.match({ onNone: () => undefined, onSome: decode })))

const segmentFile = (directory: string, folders: ReadonlyArray<string>, start: number) =>
  NodePath.join(directory, "logs", ...folders, `${String(start).padStart(16, "0")}.seg`)

/** An entry as the store writes it, built here from the format itself, to write by hand. */
const entry = (position: number, tag: string, body: string) => {
  const bytes = Buffer.from(body)
  const crc = crc32(bytes, crc32(`${position} ${bytes.length} ${tag}`)).toString(16).padStart(8, "0")
  return Buffer.concat([Buffer.from(`\xff${position} ${bytes.length} ${crc} ${tag}\n`, "latin1"), bytes])
}

/** Every file under the directory, with its bytes, to show that a refused call wrote nothing. */
const snapshot = (directory: string) =>
  Object.fromEntries(
    (NodeFs.readdirSync(directory, { recursive: true }) as Array<string>).sort().map((name) => {
      const path = NodePath.join(directory, name)
      return [name, NodeFs.statSync(path).isDirectory() ? "folder" : NodeFs.readFileSync(path).toString("base64")]
    })
  )

describe("the file store's logs in segment files", () => {
  it.live("an entry reads back, from its writer and from another store on the directory", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const logs = yield* logsOn(directory)
      expect(yield* logs.append("log/", 0, "a", encode("first"))).toBe("a")
      expect(yield* logs.append("log/", 1, "a", [encode("multi "), encode("part")])).toBe("a")
      expect(yield* logs.append("log/", 3, "a", encode("three"))).toBe("a")
      // The bytes on disk are the format the readers of other processes and versions rely on.
      expect(NodeFs.readFileSync(segmentFile(directory, ["log"], 0))).toEqual(
        Buffer.concat([entry(0, "a", "first"), entry(1, "a", "multi part"), entry(3, "a", "three")])
      )
      const other = yield* logsOn(directory)
      for (const reader of [logs, other]) {
        expect(yield* readText(reader, "log/", 0)).toBe("first")
        expect(yield* readText(reader, "log/", 1)).toBe("multi part")
        expect(yield* readText(reader, "log/", 2)).toBeUndefined()
        expect(yield* readText(reader, "log/", 3)).toBe("three")
        expect(yield* readText(reader, "log/", 4)).toBeUndefined()
        expect(yield* readText(reader, "log/", 5000)).toBeUndefined()
        expect(yield* readText(reader, "other/", 0)).toBeUndefined()
      }
      // A position the other instance has not indexed yet: its append writes, and still loses.
      expect(yield* other.append("log/", 3, "b", encode("late"))).toBe("a")
      expect(yield* (yield* logsOn(directory)).append("log/", 0, "c", encode("later"))).toBe("a")
      // Both instances and a fresh one still read the first bodies.
      for (const reader of [logs, other, yield* logsOn(directory)]) {
        expect(yield* readText(reader, "log/", 0)).toBe("first")
        expect(yield* readText(reader, "log/", 3)).toBe("three")
        expect(yield* readText(reader, "log/", 2)).toBeUndefined()
      }
      // The position the first instance left free, taken by the other, is seen by the first.
      expect(yield* other.append("log/", 2, "b", encode("from b"))).toBe("b")
      expect(yield* logs.append("log/", 2, "a", encode("from a"))).toBe("b")
      expect(yield* readText(logs, "log/", 2)).toBe("from b")
    }))

  it.live("an empty body, and a body with empty parts, are entries like any other", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const logs = yield* logsOn(directory)
      // TextEncoder's "" and a view of an empty ArrayBuffer have no memory behind them, for which
      // Node's crc32 answers 0 whatever crc it is given to go on from.
      expect(yield* logs.append("log/", 0, "a", encode(""))).toBe("a")
      expect(yield* logs.append("log/", 1, "a", [encode("multi "), encode(""), encode("part")])).toBe("a")
      expect(yield* logs.append("log/", 2, "a", [new Uint8Array(new ArrayBuffer(0)), encode("two")])).toBe("a")
      expect(yield* logs.append("log/", 3, "a", [])).toBe("a")
      expect(NodeFs.readFileSync(segmentFile(directory, ["log"], 0))).toEqual(
        Buffer.concat([entry(0, "a", ""), entry(1, "a", "multi part"), entry(2, "a", "two"), entry(3, "a", "")])
      )
      for (const reader of [logs, yield* logsOn(directory)]) {
        expect(yield* readText(reader, "log/", 0)).toBe("")
        expect(yield* readText(reader, "log/", 1)).toBe("multi part")
        expect(yield* readText(reader, "log/", 2)).toBe("two")
        expect(yield* readText(reader, "log/", 3)).toBe("")
      }
    }))

  it.live("a body of more parts than one writev takes is one entry", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const logs = yield* logsOn(directory)
      const parts = Array.from({ length: 3000 }, (_, i) => encode(`${i},`))
      const text = parts.map(decode).join("")
      expect(yield* logs.append("log/", 0, "a", parts)).toBe("a")
      expect(NodeFs.readFileSync(segmentFile(directory, ["log"], 0))).toEqual(entry(0, "a", text))
      expect(yield* readText(yield* logsOn(directory), "log/", 0)).toBe(text)
    }))

  it.live("bad input is refused with StoreFailure and writes nothing", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const logs = yield* logsOn(directory)
      const refused = (effect: Effect.Effect<unknown, { readonly _tag: string }>, what: string) =>
        Effect.gen(function*() {
          const before = snapshot(directory)
          const error = yield* Effect.flip(effect)
          expect(error._tag, what).toBe("StoreFailure")
          expect(snapshot(directory), what).toEqual(before)
        })
      // Before the log exists: no folder or segment file made for it.
      yield* refused(logs.append("log/", 0, "a", Uint8Array.of(0x61, 0xff, 0x62)), "0xFF, first entry")
      expect(NodeFs.existsSync(NodePath.join(directory, "logs", "log"))).toBe(false)
      yield* logs.append("log/", 0, "a", encode("kept"))
      const cases: Array<[string, Effect.Effect<unknown, { readonly _tag: string }>]> = [
        ["0xFF in one body", logs.append("log/", 1, "a", Uint8Array.of(0x61, 0xff))],
        ["0xFF in a later part", logs.append("log/", 1, "a", [encode("fine"), Uint8Array.of(0xff)])],
        ["a tag with a space", logs.append("log/", 1, "a b", encode("x"))],
        ["an empty tag", logs.append("log/", 1, "", encode("x"))],
        ["a tag of 257 characters", logs.append("log/", 1, "t".repeat(257), encode("x"))],
        ["a negative position", logs.append("log/", -1, "a", encode("x"))],
        ["a fractional position", logs.append("log/", 1.5, "a", encode("x"))],
        ["an unsafe position", logs.append("log/", 2 ** 53, "a", encode("x"))],
        ["a log without its slash", logs.append("log", 1, "a", encode("x"))],
        ["a log out of the directory", logs.append("../x/", 1, "a", encode("x"))],
        ["a log with a dot segment", logs.append("a/./b/", 1, "a", encode("x"))],
        ["a log with an empty segment", logs.append("a//b/", 1, "a", encode("x"))],
        ["the log of nothing", logs.append("/", 1, "a", encode("x"))],
        ["a read out of the directory", logs.read("../x/", 0)],
        ["a collect out of the directory", logs.collect("../x/", 10_000)]
      ]
      for (const [what, effect] of cases) yield* refused(effect, what)
      // The log is as it was: the refused position is still free.
      expect(yield* readText(logs, "log/", 0)).toBe("kept")
      expect(yield* readText(yield* logsOn(directory), "log/", 1)).toBeUndefined()
      expect(yield* logs.append("log/", 1, "a", encode("next"))).toBe("a")
    }))
})

describe("torn and corrupt entries left by a crash", () => {
  /** A store's directory whose segment 0 of `log/` holds `bytes`, written by hand. */
  const handWritten = (...parts: ReadonlyArray<Buffer>) =>
    Effect.gen(function*() {
      const directory = freshDir()
      yield* FileStore.make({ directory })
      NodeFs.mkdirSync(NodePath.join(directory, "logs", "log"), { recursive: true })
      NodeFs.writeFileSync(segmentFile(directory, ["log"], 0), Buffer.concat(parts))
      return directory
    })

  /** Each position reads as expected (undefined: None), from `logs` and from a fresh store. */
  const agree = (directory: string, logs: AppendLogs, expected: Record<number, string | undefined>) =>
    Effect.gen(function*() {
      for (const reader of [logs, yield* logsOn(directory)]) {
        for (const [position, body] of Object.entries(expected)) {
          expect(yield* readText(reader, "log/", Number(position)), `position ${position}`).toBe(body)
        }
      }
    })

  it.live("an entry cut in its body at the end of the file holds nothing; an append takes its position", () =>
    Effect.gen(function*() {
      const torn = entry(1, "dead", "the body of a writer that died")
      const directory = yield* handWritten(entry(0, "a", "zero"), torn.subarray(0, torn.length - 10))
      const logs = yield* logsOn(directory)
      yield* agree(directory, logs, { 0: "zero", 1: undefined, 2: undefined })
      expect(yield* logs.append("log/", 1, "b", encode("one"))).toBe("b")
      expect(yield* logs.append("log/", 2, "b", encode("two"))).toBe("b")
      // Another instance that had read past the torn entry before the append.
      yield* agree(directory, logs, { 0: "zero", 1: "one", 2: "two" })
      expect(yield* (yield* logsOn(directory)).append("log/", 1, "c", encode("late"))).toBe("b")
    }))

  it.live("an entry cut in its body, then another writer's append of the next position", () =>
    Effect.gen(function*() {
      const torn = entry(1, "dead", "x".repeat(1000))
      const directory = yield* handWritten(entry(0, "a", "zero"), torn.subarray(0, 100))
      // A reader that saw the torn entry at the end, before the append after it.
      const early = yield* logsOn(directory)
      yield* agree(directory, early, { 1: undefined, 2: undefined })
      expect(yield* (yield* logsOn(directory)).append("log/", 2, "b", encode("two"))).toBe("b")
      yield* agree(directory, early, { 0: "zero", 1: undefined, 2: "two" })
      expect(yield* early.append("log/", 1, "c", encode("one"))).toBe("c")
      yield* agree(directory, early, { 0: "zero", 1: "one", 2: "two" })
    }))

  it.live("an entry whose crc does not match holds nothing; the entry after it reads", () =>
    Effect.gen(function*() {
      const corrupt = entry(0, "a", "zero, corrupt")
      // A bit flipped in the body ("zero, corrupt" becomes "zero, corrtpt").
      corrupt.writeUInt8(corrupt.readUInt8(corrupt.length - 3) ^ 0x01, corrupt.length - 3)
      const directory = yield* handWritten(corrupt, entry(1, "a", "one"))
      const logs = yield* logsOn(directory)
      yield* agree(directory, logs, { 0: undefined, 1: "one" })
      // A corrupt entry does not hold its position: the next append of it wins.
      expect(yield* logs.append("log/", 0, "b", encode("zero again"))).toBe("b")
      yield* agree(directory, logs, { 0: "zero again", 1: "one" })
    }))

  it.live("an entry with a bad header (length, crc, tag, segment) holds nothing", () =>
    Effect.gen(function*() {
      const directory = yield* handWritten(
        entry(0, "a", "zero"),
        // A length one short, then one too long: the crc shows either.
        Buffer.from(entry(1, "a", "one").toString("latin1").replace(" 3 ", " 2 "), "latin1"),
        Buffer.from(entry(2, "a", "two").toString("latin1").replace(" 3 ", " 4 "), "latin1"),
        // A header of the wrong shape, a bad tag, a position outside the segment.
        Buffer.from("\xffthree 3 00000000 a\nabc\xff3 3\nabc\xff3 3 00000000 \nabc", "latin1"),
        entry(4096, "a", "elsewhere"),
        entry(3, "a", "three")
      )
      const logs = yield* logsOn(directory)
      yield* agree(directory, logs, { 0: "zero", 1: undefined, 2: undefined, 3: "three", 4096: undefined })
    }))

  it.live("a torn entry running past the bytes a scan reads at once does not hide the entries after it", () =>
    Effect.gen(function*() {
      const chunk = 1 << 20
      // A torn entry longer than a scan's read, then a short entry: the file ends before the
      // torn entry's length says it does.
      const long = entry(1, "dead", "y".repeat(3 * chunk))
      const first = yield* handWritten(entry(0, "a", "zero"), long.subarray(0, 1.5 * chunk), entry(2, "a", "two"))
      // A torn entry that starts in a scan's first read and goes on past it.
      const torn = entry(1, "dead", "y".repeat(200_000))
      const second = yield* handWritten(
        entry(0, "a", "z".repeat(chunk - 1000)),
        torn.subarray(0, 100_000),
        entry(2, "a", "two")
      )
      for (const directory of [first, second]) {
        const logs = yield* logsOn(directory)
        yield* agree(directory, logs, { 1: undefined, 2: "two", 3: undefined })
        // An append after them finds its entry where it wrote it.
        expect(yield* (yield* logsOn(directory)).append("log/", 3, "b", encode("three"))).toBe("b")
        expect(yield* logs.append("log/", 1, "b", encode("one"))).toBe("b")
        yield* agree(directory, logs, { 1: "one", 2: "two", 3: "three" })
      }
    }))

  it.live("a run of zero bytes, as a power cut leaves, is passed over", () =>
    Effect.gen(function*() {
      const directory = yield* handWritten(
        Buffer.alloc(100),
        entry(0, "a", "zero"),
        Buffer.alloc(4096),
        entry(1, "a", "one"),
        // Where a whole entry was to be: its length in zeros.
        Buffer.alloc(entry(2, "a", "two").length),
        entry(3, "a", "three"),
        Buffer.alloc(10)
      )
      const logs = yield* logsOn(directory)
      yield* agree(directory, logs, { 0: "zero", 1: "one", 2: undefined, 3: "three" })
      expect(yield* logs.append("log/", 2, "b", encode("two"))).toBe("b")
      expect(yield* logs.append("log/", 4, "b", encode("four"))).toBe("b")
      yield* agree(directory, logs, { 0: "zero", 1: "one", 2: "two", 3: "three", 4: "four" })
    }))

  it.live("an entry whose header is cut (no newline) is passed over, within the file and at its end", () =>
    Effect.gen(function*() {
      const cut = entry(1, "dead", "one, never written")
      const directory = yield* handWritten(
        entry(0, "a", "zero"),
        cut.subarray(0, 5),
        entry(2, "a", "two"),
        cut.subarray(0, 12)
      )
      const logs = yield* logsOn(directory)
      yield* agree(directory, logs, { 0: "zero", 1: undefined, 2: "two", 3: undefined })
      expect(yield* logs.append("log/", 1, "b", encode("one"))).toBe("b")
      expect(yield* logs.append("log/", 3, "b", encode("three"))).toBe("b")
      yield* agree(directory, logs, { 0: "zero", 1: "one", 2: "two", 3: "three" })
    }))
})

describe("a store in a scope", () => {
  it.live("closes the segment files it opened when the scope closes", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const openFds = () => NodeFs.readdirSync("/proc/self/fd").length
      const before = openFds()
      const scope = yield* Scope.make()
      const logs = (yield* FileStore.scoped({ directory, fsync: false }).pipe(Scope.extend(scope))).appendLogs!
      for (const log of ["log/", "queues/a/log/", "queues/b/log/"]) {
        yield* logs.append(log, 0, "a", encode("zero"))
        yield* logs.append(log, S, "a", encode("next segment"))
      }
      expect(openFds()).toBe(before + 6)
      yield* Scope.close(scope, Exit.void)
      expect(openFds()).toBe(before)
    }))
})

describe("collection of whole segments", () => {
  it.live("collect removes the segments a position covers, and only those, log by log", () =>
    Effect.gen(function*() {
      const directory = freshDir()
      const logs = yield* logsOn(directory, { fsync: false })
      for (let position = 0; position <= S + 9; position++) {
        yield* logs.append("log/", position, "a", encode(`log ${position}`))
      }
      yield* logs.append("queues/a/log/", 0, "q", encode("queue 0"))
      yield* logs.append("queues/a/log/", S, "q", encode(`queue ${S}`))
      const first = segmentFile(directory, ["log"], 0)
      const second = segmentFile(directory, ["log"], S)
      expect(NodeFs.existsSync(first)).toBe(true)
      expect(NodeFs.existsSync(second)).toBe(true)
      // Segment 0 holds 0..S - 1: S - 2 does not cover it.
      expect(yield* logs.collect("log/", S - 2)).toBe(0)
      expect(NodeFs.existsSync(first)).toBe(true)
      expect(yield* readText(logs, "log/", 0)).toBe("log 0")
      expect(yield* logs.collect("log/", S - 1)).toBe(S)
      expect(NodeFs.existsSync(first)).toBe(false)
      expect(NodeFs.existsSync(second)).toBe(true)
      expect(yield* logs.collect("log/", S - 1)).toBe(0)
      for (const reader of [logs, yield* logsOn(directory)]) {
        expect(yield* readText(reader, "log/", 0)).toBeUndefined()
        expect(yield* readText(reader, "log/", S - 1)).toBeUndefined()
        expect(yield* readText(reader, "log/", S)).toBe(`log ${S}`)
        expect(yield* readText(reader, "log/", S + 9)).toBe(`log ${S + 9}`)
        // The other log kept its segments: positions of logs are their own.
        expect(yield* readText(reader, "queues/a/log/", 0)).toBe("queue 0")
        expect(yield* readText(reader, "queues/a/log/", S)).toBe(`queue ${S}`)
      }
      expect(NodeFs.existsSync(segmentFile(directory, ["queues", "a", "log"], 0))).toBe(true)
      // A fresh instance collects what another wrote, and counts the entries, not the appends.
      const other = yield* logsOn(directory, { fsync: false })
      expect(yield* other.append("queues/a/log/", S, "r", encode("late"))).toBe("q")
      expect(yield* other.append("queues/a/log/", S + 1, "r", encode(`queue ${S + 1}`))).toBe("r")
      expect(yield* other.collect("queues/a/log/", 10_000)).toBe(3)
      expect(NodeFs.readdirSync(NodePath.join(directory, "logs", "queues", "a", "log"))).toEqual([])
      expect(yield* readText(yield* logsOn(directory), "queues/a/log/", S)).toBeUndefined()
      expect(yield* readText(yield* logsOn(directory), "log/", S + 4)).toBe(`log ${S + 4}`)
      expect(yield* other.collect("never/written/", 10_000)).toBe(0)
    }))
})

// --- real OS processes ------------------------------------------------------------------------

describe("logs in segment files across OS processes", () => {
  it("appenders racing in three processes agree on every position's entry", { timeout: 30_000 }, async () => {
    const directory = freshDir()
    await Effect.runPromise(FileStore.make({ directory }))
    const count = 200
    const tags = ["p0", "p1", "p2"]
    const children = tags.map((tag) => runFixture("segment-racer.ts", [directory, tag, String(count)]))
    const outputs = children.map(outputOf)
    const results = Promise.all(children.map(closed))
    try {
      await Promise.all(children.map((child, i) => until(() => outputs[i]!.stdout().includes("ready"), child)))
      for (const child of children) child.stdin?.end("go\n")
      ;(await results).forEach((result, i) => expect(result, outputs[i]!.stderr()).toEqual({ code: 0, signal: null }))
    } finally {
      for (const child of children) child.kill("SIGKILL")
    }
    const reports = outputs.map((output) =>
      JSON.parse(output.stdout().split("\n").find((line) => line.startsWith("{"))!) as {
        tag: string
        answers: Array<string>
      }
    )
    const logs = await Effect.runPromise(logsOn(directory))
    const wins = new Map<string, number>()
    for (let position = 0; position < count; position++) {
      const winner = reports[0]!.answers[position]!
      for (const report of reports) expect(report.answers[position], `position ${position}`).toBe(winner)
      expect(tags).toContain(winner)
      expect(await Effect.runPromise(readText(logs, "log/", position))).toBe(`${winner} ${position}`)
      wins.set(winner, (wins.get(winner) ?? 0) + 1)
    }
    // The race was real: more than one process won positions, and appends that lost were written
    // too (entries of positions already held), so processes wrote the same positions at once.
    expect(wins.size, JSON.stringify([...wins])).toBeGreaterThan(1)
    const folder = NodePath.join(directory, "logs", "log")
    const entries = NodeFs.readdirSync(folder).reduce(
      (sum, name) => sum + NodeFs.readFileSync(NodePath.join(folder, name)).filter((byte) => byte === 0xff).length,
      0
    )
    expect(entries).toBeGreaterThan(count)
    expect(await Effect.runPromise(readText(logs, "log/", count))).toBeUndefined()
  })

  it(
    "a writer killed mid-stream leaves every entry it reported, and the log writable",
    { timeout: 30_000 },
    async () => {
      const directory = freshDir()
      await Effect.runPromise(FileStore.make({ directory }))
      // As segment-writer.ts makes it.
      const writerBody = (position: number) =>
        `${position} ${createHash("sha256").update(String(position)).digest("hex").repeat(4096)}`
      const appended: Array<number> = []
      let next = 0
      for (let round = 0; round < 4; round++) {
        // With fsync the kill lands in an fdatasync most often; without, in a write more often.
        const child = runFixture("segment-writer.ts", [directory, String(next), round % 2 === 0 ? "off" : "on"])
        const output = outputOf(child)
        const done = closed(child)
        const reported = () => [...output.stdout().matchAll(/appended (\d+)/g)].map((m) => Number(m[1]))
        // Let it append a few entries, then kill it at an arbitrary point of a later one.
        await until(() => reported().length >= 3, child).catch(() => {
          throw new Error(`writer exited early: ${output.stderr()}`)
        })
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5))
        child.kill("SIGKILL")
        expect((await done).signal, output.stderr()).toBe("SIGKILL")
        appended.push(...reported())

        const check = Effect.gen(function*() {
          const logs = yield* logsOn(directory)
          for (const position of appended) {
            expect(yield* readText(logs, "log/", position), `position ${position}`).toBe(writerBody(position))
          }
          // Appends after the kill: the writer may have appended more than it could report (whole
          // entries, read back whole), and the first position it left free is the parent's.
          let position = Math.max(...appended) + 1
          for (;; position++) {
            const tag = yield* logs.append("log/", position, "parent", encode(`parent ${position}`))
            if (tag === "parent") break
            expect(tag).toBe("writer")
            expect(yield* readText(logs, "log/", position), `position ${position}`).toBe(writerBody(position))
          }
          const written = Math.max(...appended) + 1
          expect(position - written, "entries the writer appended but did not report").toBeLessThan(50)
          for (let after = position + 1; after < position + 3; after++) {
            expect(yield* logs.append("log/", after, "parent", encode(`parent ${after}`))).toBe("parent")
          }
          const fresh = yield* logsOn(directory)
          for (let at = 0; at < position + 3; at++) {
            expect(yield* readText(fresh, "log/", at), `position ${at}`).toBe(yield* readText(logs, "log/", at))
          }
          expect(yield* readText(fresh, "log/", position)).toBe(`parent ${position}`)
          expect(yield* readText(fresh, "log/", position + 3)).toBeUndefined()
          return position + 3
        })
        next = await Effect.runPromise(check)
      }
    }
  )
})
