/**
 * Real `osqueue` processes for end-to-end tests: run from source (tsx, the "source" export
 * condition), on free loopback ports, killed when the test ends.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const appDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
const bin = join(appDir, "src", "bin.ts")

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(
        () => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port")))
      )
    })
  })

export interface Running {
  readonly child: ChildProcess
  /** stdout and stderr, interleaved as they came. */
  readonly output: () => string
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<number | null>
}

const running = new Set<ChildProcess>()

export const osqueue = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Running => {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", bin, ...args], {
    cwd: appDir,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  running.add(child)
  let output = ""
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (chunk) => {
    output += chunk
    stdout += chunk
  })
  child.stderr!.on("data", (chunk) => {
    output += chunk
    stderr += chunk
  })
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      running.delete(child)
      resolve(code)
    })
  )
  return { child, output: () => output, stdout: () => stdout, stderr: () => stderr, exited }
}

/** Runs a command to its end; resolves with its exit code and output. */
export const osqueueRun = async (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const proc = osqueue(args, env)
  const code = await proc.exited
  return { code, output: proc.output(), stdout: proc.stdout(), stderr: proc.stderr() }
}

/**
 * Runs a command to its end in a pseudo-terminal, as someone at a terminal would (util-linux
 * `script`); resolves with its exit code and what the terminal showed.
 */
export const osqueueInTerminal = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`
  const line = [process.execPath, "--conditions=source", "--import", "tsx", bin, ...args].map(quote).join(" ")
  const child = spawn("script", ["--quiet", "--return", "--command", line, "/dev/null"], {
    cwd: appDir,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  running.add(child)
  let output = ""
  child.stdout!.on("data", (chunk) => (output += chunk))
  return new Promise<{ code: number | null; output: string }>((resolve) =>
    child.on("exit", (code) => {
      running.delete(child)
      resolve({ code, output })
    })
  )
}

export const killAll = () => {
  for (const child of running) child.kill("SIGKILL")
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls until `check` holds, or fails after `timeoutMs` with `what`. */
export const eventually = async <A>(
  what: string,
  check: () => Promise<A | undefined>,
  timeoutMs = 20_000
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

export const getJson = async (url: string): Promise<unknown> => {
  const response = await fetch(url)
  if (!response.ok) throw new Error(`${url}: ${response.status}`)
  return response.json()
}

/** Resolves once the broker at `url` leads. */
export const leading = (url: string, timeoutMs?: number) =>
  eventually(`${url} to lead`, async () => {
    const info = (await getJson(`${url}/v1/leader`)) as { role: string }
    return info.role === "leader" ? info : undefined
  }, timeoutMs)
