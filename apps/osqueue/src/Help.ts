/**
 * `osqueue … --help`, rendered here rather than by @effect/cli 0.77, whose help gives every
 * option its type's stock sentence ("A user-defined piece of text.", "This setting is
 * optional."), never a default, a subcommand's usage without `osqueue`, and colour codes even
 * into a pipe. The words still come from the commands' own descriptors (`Command.getHelp`), so
 * an option's description lives next to the option; `withDefault` below puts its default there.
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Span from "@effect/cli/HelpDoc/Span"
import * as Options from "@effect/cli/Options"
import * as HashSet from "effect/HashSet"

/** `Options.withDefault` that also says the default in the option's help. */
export const withDefault =
  <const B>(fallback: B, shown: string = String(fallback)) => <A>(self: Options.Options<A>): Options.Options<A | B> =>
    self.pipe(Options.withDescription(`Default: ${shown}.`), Options.withDefault(fallback))

/** A command and its subcommands, as the command line names them. */
export interface CommandNode {
  // Commands differ in what they need and return; help reads only their names and help.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly command: Command.Command<any, any, any, any>
  readonly subcommands: ReadonlyArray<CommandNode>
}

export const node = (command: CommandNode["command"], subcommands: ReadonlyArray<CommandNode> = []): CommandNode => ({
  command,
  subcommands
})

const nameOf = (node: CommandNode): string => Array.from(HashSet.values(Command.getNames(node.command)))[0] ?? ""

/**
 * The help that `args` (the command line after the executable) asks for, with the path of
 * names to it: `-h`/`--help` anywhere before `--`, or a command that has subcommands named
 * without one (`osqueue`, `osqueue jobs`). Undefined when the command line asks for something else.
 */
export const requested = (
  root: CommandNode,
  args: ReadonlyArray<string>
): { readonly node: CommandNode; readonly path: ReadonlyArray<string> } | undefined => {
  const end = args.indexOf("--")
  const line = end === -1 ? args : args.slice(0, end)
  let current = root
  const path = [nameOf(root)]
  let rest = false
  for (const arg of line) {
    if (arg.startsWith("-") || rest) continue
    const next = current.subcommands.find((child) => nameOf(child) === arg)
    if (next === undefined) {
      rest = true
      continue
    }
    current = next
    path.push(arg)
  }
  const asked = line.includes("--help") || line.includes("-h")
  const bareGroup = current.subcommands.length > 0 && !rest && line.every((arg) => !arg.startsWith("-"))
  return asked || bareGroup ? { node: current, path } : undefined
}

const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Highlight":
    case "Strong":
    case "Weak":
      return spanText(span.value)
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
  }
}

const paragraphs = (doc: HelpDoc.HelpDoc): Array<string> => {
  switch (doc._tag) {
    case "Paragraph":
      return [spanText(doc.value)]
    case "Sequence":
      return [...paragraphs(doc.left), ...paragraphs(doc.right)]
    case "Enumeration":
      return doc.elements.flatMap(paragraphs)
    default:
      return []
  }
}

// Sentences @effect/cli adds to every optional or environment-backed option; our descriptions
// say the default and the variable themselves.
const stock = ["This setting is optional.", "This option can be set from environment variables."]

interface Entry {
  readonly name: string
  readonly text: string
}

/** The command's help as sections: its description, and its arguments and options as entries. */
const sections = (command: CommandNode["command"]) => {
  const result = { description: [] as Array<string>, ARGUMENTS: [] as Array<Entry>, OPTIONS: [] as Array<Entry> }
  let section = ""
  const visit = (doc: HelpDoc.HelpDoc): void => {
    switch (doc._tag) {
      case "Sequence":
        visit(doc.left)
        return visit(doc.right)
      case "Header":
        section = spanText(doc.value)
        return
      case "Paragraph":
        if (section === "DESCRIPTION") result.description.push(spanText(doc.value))
        return
      case "DescriptionList":
        if (section !== "ARGUMENTS" && section !== "OPTIONS") return
        for (const [span, block] of doc.definitions) {
          // The first paragraph is the type's stock sentence ("An integer."); the name shows the type.
          const text = paragraphs(block).slice(1).filter((p) => !stock.includes(p)).join(" ")
          result[section].push({ name: spanText(span).replace(/^\((.*)\)$/, "$1"), text })
        }
        return
      default:
        return
    }
  }
  visit(Command.getHelp(command, CliConfig.make({ showBuiltIns: false })))
  return result
}

/** Words of `text` in lines of at most `width` characters (a longer word gets a line of its own). */
const wrap = (text: string, width: number): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    if (line.length > 0 && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line.length === 0 ? word : `${line} ${word}`
    }
  }
  if (line.length > 0) lines.push(line)
  return lines
}

/** Entries as two columns: the name, then its text wrapped beside it (or below a long name). */
const table = (entries: ReadonlyArray<Entry>, width: number, bold: (s: string) => string): Array<string> => {
  const column = Math.min(Math.max(...entries.map((e) => e.name.length)) + 4, 30)
  const textWidth = Math.max(width - column, 30)
  return entries.flatMap(({ name, text }) => {
    const lines = wrap(text, textWidth)
    const pad = " ".repeat(column)
    const first = `  ${bold(name)}`
    if (name.length + 4 > column) return [first, ...lines.map((l) => pad + l)]
    return [first + " ".repeat(column - name.length - 2) + (lines[0] ?? ""), ...lines.slice(1).map((l) => pad + l)]
  })
}

export interface RenderOptions {
  /** Bold headings and names (a terminal that wants colour). */
  readonly color: boolean
  /** Line width. */
  readonly width: number
}

/** The help of the command at `path` (names from the root, `["osqueue", "jobs"]`). */
export const render = (node: CommandNode, path: ReadonlyArray<string>, options: RenderOptions): string => {
  const bold = (s: string) => (options.color ? `\x1b[1m${s}\x1b[0m` : s)
  const { ARGUMENTS, OPTIONS, description } = sections(node.command)
  const name = path.join(" ")
  const groups = node.subcommands.length > 0
  const usage = [
    name,
    ...(groups ? ["<command>"] : []),
    ...(OPTIONS.length > 0 ? ["[options]"] : []),
    ...ARGUMENTS.map((a) => a.name)
  ]
  const out = [`${bold("Usage:")} ${usage.join(" ")}`, ""]
  for (const p of description) out.push(...wrap(p, options.width), "")
  if (groups) {
    const commands = node.subcommands.map((child) => ({
      name: nameOf(child),
      text: sections(child.command).description.join(" ")
    }))
    out.push(bold("Commands:"), ...table(commands, options.width, bold), "")
  }
  if (ARGUMENTS.length > 0) out.push(bold("Arguments:"), ...table(ARGUMENTS, options.width, bold), "")
  const always: Array<Entry> = [{ name: "-h, --help", text: "Show this help." }]
  if (path.length === 1) always.push({ name: "--version", text: "Show the version." })
  out.push(bold("Options:"), ...table([...OPTIONS, ...always], options.width, bold), "")
  if (groups) out.push(`Run \`${name} <command> --help\` for a command's own options.`, "")
  return out.join("\n").trimEnd()
}
