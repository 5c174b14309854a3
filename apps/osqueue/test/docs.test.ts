/**
 * The docs say what the code does: the README's table of environment variables lists exactly the
 * variables the code reads (its `Config.*("NAME")` calls and `process.env` reads), docs/monitoring.md's table of metrics
 * and the Grafana dashboard name exactly the metrics the code defines, and the examples in the
 * package READMEs are the example files, which run and print what the READMEs say.
 */
import { execFile } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..")

/** The TypeScript sources of every package and of the `osqueue` command (tests and examples aside). */
const sources = (): Array<{ readonly path: string; readonly text: string }> => {
  const dirs = [
    ...readdirSync(join(root, "packages")).map((name) => join(root, "packages", name, "src")),
    join(root, "apps", "osqueue", "src")
  ]
  return dirs.flatMap((dir) =>
    (readdirSync(dir, { recursive: true }) as Array<string>)
      .filter((file) => file.endsWith(".ts"))
      .map((file) => ({ path: join(dir, file), text: readFileSync(join(dir, file), "utf8") }))
  )
}

const sorted = (names: Iterable<string>) => [...new Set(names)].sort()

/**
 * `Config.string("NAME")`, `Config.literal("a", "b")("NAME")`, `Config.literal(...all)("NAME")`:
 * the constructor, its own arguments if it is curried, then the name.
 */
const configRead = /Config\.[a-zA-Z]+(?:\((?:[^()]|\([^()]*\))*\))?\(\s*"([A-Z][A-Z0-9_]*)"/g

const readme = readFileSync(join(root, "README.md"), "utf8")

/** The backticked names in the first column of the README's `| variable | for |` table. */
const readmeVariables = (): Array<string> => {
  const lines = readme.split("\n")
  const start = lines.findIndex((line) => line.startsWith("| variable | for |"))
  expect(start, "the README has a | variable | for | table").toBeGreaterThanOrEqual(0)
  const rows = lines.slice(start + 2)
  const table = rows.slice(0, rows.findIndex((line) => !line.startsWith("|")))
  return table.flatMap((row) => [...(row.split("|")[1] ?? "").matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!))
}

/** `process.env.NAME` and `process.env["NAME"]`. */
const envRead = /process\.env(?:\.([A-Z][A-Z0-9_]*)|\[\s*"([A-Z][A-Z0-9_]*)"\s*\])/g

describe("README: environment variables", () => {
  it("the table lists every variable the code reads (through Config or process.env), and no other", () => {
    const code = sources()
    const read = sorted(code.flatMap(({ text }) => [
      ...[...text.matchAll(configRead)].map((m) => m[1]!),
      ...[...text.matchAll(envRead)].map((m) => m[1] ?? m[2]!)
    ]))
    // The parse finds what it must (a regex that stopped matching would find nothing to compare).
    expect(read).toEqual(
      expect.arrayContaining([
        "OSQUEUE_MIN_COMMIT_INTERVAL",
        "OSQUEUE_ELECTION_TTL",
        "OSQUEUE_HEADERS_TIMEOUT_MS",
        "STORAGE_BACKEND"
      ])
    )
    expect(read.length).toBeGreaterThan(40)
    expect(sorted(readmeVariables())).toEqual(read)
  })

  it("the code names every variable it reads, so that the comparison above sees every read", () => {
    // A name built at run time (`process.env[name]`, `Config.string(name)`) would escape it.
    const hidden = sources().flatMap(({ path, text }) =>
      [...text.matchAll(
        /process\.env\b(?!\.[A-Z]|\[\s*"[A-Z])|Config\.(?:string|nonEmptyString|integer|number|boolean|duration|redacted|secret|port|url|date|logLevel)\(\s*[a-z]/g
      )].map((m) => `${path.slice(root.length + 1)}: ${m[0]}`)
    )
    expect(hidden, "name the variable literally, as Config.string(\"NAME\") or process.env[\"NAME\"]").toEqual([])
  })
})

/** Every `"osqueue_…"` literal in the sources: the names the metrics are defined with. */
const definedMetrics = () =>
  sorted(sources().flatMap(({ text }) => [...text.matchAll(/"(osqueue_[a-z_]+)"/g)].map((m) => m[1]!)))

describe("docs/monitoring.md and the Grafana dashboard: metrics", () => {
  it("the table of metrics lists every metric the code defines, and no other", () => {
    const doc = readFileSync(join(root, "docs", "monitoring.md"), "utf8")
    const listed = [...doc.matchAll(/^\| `(osqueue_[a-z_]+)` \|/gm)].map((m) => m[1]!)
    expect(definedMetrics().length).toBeGreaterThan(15)
    expect(sorted(listed)).toEqual(definedMetrics())
  })

  it("the dashboard's queries name only metrics the code defines", () => {
    const dashboard = JSON.parse(readFileSync(join(root, "docs", "grafana", "osqueue.json"), "utf8")) as {
      panels: ReadonlyArray<{ targets?: ReadonlyArray<{ expr: string }> }>
    }
    const expressions = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr))
    expect(expressions.length).toBeGreaterThan(10)
    const defined = new Set(definedMetrics())
    const named = expressions.flatMap((expression) => [...expression.matchAll(/\bosqueue_[a-z_]+/g)].map((m) => m[0]))
    // A histogram's series are its name with _bucket, _sum or _count.
    const unknown = named.filter((name) => !defined.has(name) && !defined.has(name.replace(/_(bucket|sum|count)$/, "")))
    expect(unknown).toEqual([])
  })
})

/** Runs an example from source, as its README says to; resolves with what it printed. */
const runExample = (path: string) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(
      process.execPath,
      ["--conditions=source", "--import", "tsx", path],
      { cwd: root },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })
    )
  )

describe("package READMEs: their examples", () => {
  const examples = [
    {
      readme: "packages/core/README.md",
      file: "packages/core/examples/engine.ts",
      prints: ["job-1 completed", "queued 1, completed 1"]
    },
    {
      readme: "packages/types/README.md",
      file: "packages/types/examples/wire.ts",
      prints: [
        "enqueue email at priority 5",
        "refused: priorty is unexpected, expected: \"type\" | \"payload\" | \"priority\" | \"delayMs\" | \"runAt\" | \"maxAttempts\" | \"backoff\" | \"idempotencyKey\" | \"traceparent\" | \"timeoutMs\"",
        "QueueFull (HTTP 503, retry: false): queue.json would be 300000000 bytes, over the limit of 268435456, with no finished job left to shed; let workers drain the queue, purge dead jobs, or raise the limit"
      ]
    }
  ]

  for (const { file, prints, readme } of examples) {
    it(`${readme} shows ${file} as it is, which runs and prints what the README says`, async () => {
      const text = readFileSync(join(root, readme), "utf8")
      expect(text).toContain("```ts\n" + readFileSync(join(root, file), "utf8") + "```")
      for (const line of prints) expect(text).toContain(line)
      const run = await runExample(file)
      expect(run.stderr).toBe("")
      expect(run.code).toBe(0)
      expect(run.stdout.split("\n").filter((line) => !line.startsWith("timestamp="))).toEqual([...prints, ""])
    }, 30_000)
  }
})
