/**
 * Child processes for the tests across OS processes: a fixture run from its TypeScript source,
 * its output, and waits on it.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createRequire } from "node:module"
import * as NodePath from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const fixtures = NodePath.join(NodePath.dirname(fileURLToPath(import.meta.url)), "..", "fixtures")
// Load TypeScript through tsx's loader inside the child itself (not the tsx CLI, which would
// put a second process in between and let SIGKILL miss the writer), and the workspace's packages
// from their sources, as the tests do: a fresh clone has no dist/ before its first build.
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href

/** Runs `fixtures/<script>` in a child process of its own. */
export const runFixture = (script: string, args: ReadonlyArray<string>): ChildProcess =>
  spawn(process.execPath, ["--conditions=source", "--import", tsxLoader, NodePath.join(fixtures, script), ...args], {
    stdio: ["pipe", "pipe", "pipe"]
  })

/** What the child has written so far, to stdout and stderr. */
export const outputOf = (child: ChildProcess) => {
  let stdout = ""
  let stderr = ""
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  return { stdout: () => stdout, stderr: () => stderr }
}

/** Resolves once `condition` holds; rejects if the child exits before it does. */
export const until = (condition: () => boolean, child: ChildProcess) =>
  new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (condition()) {
        clearInterval(timer)
        resolve()
      }
    }, 2)
    child.once("exit", () => {
      clearInterval(timer)
      if (condition()) resolve()
      else reject(new Error("child exited early"))
    })
  })

/** Resolves once the child has exited. */
export const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal }))
  )

/** Resolves once the child has exited and its output is all read. */
export const closed = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal }))
  )
