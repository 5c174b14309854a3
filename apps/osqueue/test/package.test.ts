/**
 * The `osqueue` package installs from a registry: nothing it depends on, directly or through the
 * workspace packages it depends on, is private (`@osqueue/web` is: its build ships inside this
 * package, in `dashboard/`, which the broker serves by default).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..")

interface Manifest {
  readonly name: string
  readonly private?: boolean
  readonly files?: ReadonlyArray<string>
  readonly dependencies?: Record<string, string>
}

const read = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Manifest

const workspace = new Map(
  ["apps", "packages"].flatMap((group) =>
    readdirSync(join(root, group))
      .filter((name) => existsSync(join(root, group, name, "package.json")))
      .map((name) => {
        const manifest = read(join(root, group, name))
        return [manifest.name, manifest] as const
      })
  )
)

/** The workspace packages `name` needs at run time, itself included. */
const closure = (name: string, seen = new Set<string>()): Set<string> => {
  seen.add(name)
  for (const dependency of Object.keys(workspace.get(name)?.dependencies ?? {})) {
    if (workspace.has(dependency) && !seen.has(dependency)) closure(dependency, seen)
  }
  return seen
}

describe("the osqueue package", () => {
  it("depends on no private package, directly or through another", () => {
    const privates = [...closure("osqueue")].filter((name) => workspace.get(name)?.private === true)
    expect(privates).toEqual([])
    // The check can fail: the dashboard's sources are private.
    expect(workspace.get("@osqueue/web")?.private).toBe(true)
  })

  it("ships the built dashboard that osqueue broker serves by default", () => {
    expect(workspace.get("osqueue")?.files).toContain("dashboard")
    const vite = readFileSync(join(root, "apps", "web", "vite.config.ts"), "utf8")
    expect(vite).toContain("new URL(\"../osqueue/dashboard\", import.meta.url)")
    const command = readFileSync(join(root, "apps", "osqueue", "src", "commands", "broker.ts"), "utf8")
    expect(command).toContain("new URL(\"../../dashboard\", import.meta.url)")
  })
})
