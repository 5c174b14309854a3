/**
 * The `osqueue` command's help and usage errors as a newcomer meets them: the real command,
 * spawned, its help read as text; and every command of the tree rendered the same way.
 */
import * as Command from "@effect/cli/Command"
import * as HashSet from "effect/HashSet"
import { describe, expect, it } from "vitest"
import { commandTree } from "../src/Cli.js"
import * as Help from "../src/Help.js"
import { osqueueInTerminal, osqueueRun } from "./support/processes.js"

const escape = "\x1b"

/** The entries of a help section ("Options", "Arguments", "Commands"): a name and its text. */
const entries = (help: string, section: string): Array<{ name: string; text: string }> => {
  const lines = help.split("\n")
  const start = lines.indexOf(`${section}:`)
  if (start === -1) return []
  const result: Array<{ name: string; text: string }> = []
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === "") break
    if (/^ {2}\S/.test(line)) {
      const [name = "", ...text] = line.trim().split(/\s{2,}/)
      result.push({ name, text: text.join(" ") })
    } else {
      const last = result[result.length - 1]!
      result[result.length - 1] = { name: last.name, text: `${last.text} ${line.trim()}`.trim() }
    }
  }
  return result
}

// What @effect/cli's own help printed for every option, whatever the option.
const stock = [
  "A user-defined piece of text",
  "This setting is optional",
  "can be set from environment variables",
  "A true or false value",
  "An integer.",
  "redacted"
]

// Each command runs from source to its end on its own (nothing to kill); they run side by side,
// each taking seconds of start-up on a busy machine.
describe.concurrent("osqueue help, spawned", { timeout: 120_000 }, () => {
  it("enqueue --help: usage from osqueue, every option described with its default, plain text into a pipe", async () => {
    const { code, stdout } = await osqueueRun(["enqueue", "--help"])
    expect(code).toBe(0)
    expect(stdout.split("\n")[0]).toBe("Usage: osqueue enqueue [options] <type>")
    expect(stdout).not.toContain(escape)
    for (const sentence of stock) expect(stdout).not.toContain(sentence)
    const options = entries(stdout, "Options")
    const byName = new Map(options.map((o) => [o.name, o.text]))
    expect(byName.get("--max-attempts integer")).toMatch(/dead-letter.*Default: /)
    expect(byName.get("--token text")).toContain("OSQUEUE_TOKEN")
    expect(byName.get("-b, --brokers urls")).toContain("Default: http://localhost:8080.")
    expect(byName.get("--transport http | ws")).toContain("Default: http.")
    expect(byName.get("-p, --payload json")).toContain("JSON")
    for (const option of options) expect(option.text, option.name).not.toBe("")
    expect(entries(stdout, "Arguments")).toEqual([{ name: "<type>", text: expect.stringContaining("type") }])
  })

  it("a nested command's help names the whole path; -h is --help", async () => {
    const { code, stdout } = await osqueueRun(["jobs", "list", "-h"])
    expect(code).toBe(0)
    expect(stdout.split("\n")[0]).toBe("Usage: osqueue jobs list [options]")
    expect(entries(stdout, "Options").find((o) => o.name === "--limit integer")?.text).toContain("Default: 50.")
  })

  it("osqueue alone lists its commands, each with what it does", async () => {
    const { code, stdout } = await osqueueRun([])
    expect(code).toBe(0)
    expect(stdout.split("\n")[0]).toBe("Usage: osqueue <command>")
    const commands = entries(stdout, "Commands")
    expect(commands.map((c) => c.name)).toEqual([
      "broker",
      "worker",
      "demo",
      "enqueue",
      "jobs",
      "schedule",
      "flow",
      "stats",
      "workers",
      "pause",
      "resume",
      "limit",
      "watch",
      "produce"
    ])
    for (const command of commands) expect(command.text, command.name).not.toBe("")
  })

  it("a -p that is not JSON is refused in one line naming the option and the problem (exit 2)", async () => {
    const { code, stdout, stderr } = await osqueueRun(["enqueue", "email", "-p", "{to: a}", "-b", "http://127.0.0.1:9"])
    expect(code).toBe(2)
    expect(stdout).toBe("")
    expect(stderr).not.toContain(escape)
    const lines = stderr.trimEnd().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^--payload is not valid: .*JSON/)
  })

  it("a usage error from the option parser is one plain line too", async () => {
    const { code, stderr } = await osqueueRun(["enqueue", "email", "--priorty", "1"])
    expect(code).toBe(2)
    expect(stderr.trimEnd()).toBe("Received unknown argument: '--priorty'")
  })

  it("at a terminal the help is bold, unless NO_COLOR is set", async () => {
    const [coloured, plain] = await Promise.all([
      osqueueInTerminal(["jobs", "--help"]),
      osqueueInTerminal(["jobs", "--help"], { NO_COLOR: "1" })
    ])
    expect(coloured.code).toBe(0)
    expect(coloured.output).toContain(`${escape}[1mUsage:${escape}[0m osqueue jobs <command>`)
    expect(plain.code).toBe(0)
    expect(plain.output).toContain("Usage: osqueue jobs <command>")
    expect(plain.output).not.toContain(escape)
  })
})

describe("every command's help", () => {
  const nameOf = (node: Help.CommandNode) => Array.from(HashSet.values(Command.getNames(node.command)))[0]!
  const walk = (
    node: Help.CommandNode,
    path: ReadonlyArray<string>
  ): Array<[ReadonlyArray<string>, Help.CommandNode]> => [
    [path, node],
    ...node.subcommands.flatMap((child) => walk(child, [...path, nameOf(child)]))
  ]

  it.each(walk(commandTree, ["osqueue"]).map(([path, node]) => [path.join(" "), path, node] as const))(
    "%s: described, every option and argument with a description, a value's default stated",
    (name, path, node) => {
      expect(Help.requested(commandTree, [...path.slice(1), "--help"])?.node).toBe(node)
      const help = Help.render(node, path, { color: false, width: 80 })
      expect(help.split("\n")[0]).toMatch(new RegExp(`^Usage: ${name} `))
      expect(help.split("\n")[2], "a description").not.toBe("")
      for (const sentence of stock) expect(help).not.toContain(sentence)
      for (const entry of [...entries(help, "Options"), ...entries(help, "Arguments")]) {
        expect(entry.text, entry.name).not.toBe("")
        // An option that takes a value (a name then its type) says what holds without it.
        const takesValue = /^-.*--[\w-]+ \S/.test(entry.name)
        if (takesValue) expect(entry.text, entry.name).toMatch(/Default: /)
      }
    }
  )
})
