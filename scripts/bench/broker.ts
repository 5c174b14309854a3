/**
 * The `osqueue broker` command from a checkout's build, as users run it, on a free port of
 * loopback and a fresh directory: the one way the bench's scripts (`main.ts`, `ops.ts`,
 * `client.ts`) start the broker they measure.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./stats.js"

export interface StartedBroker {
  readonly url: string
  readonly child: ChildProcess
  /** The store's directory (the caller removes it). */
  readonly dir: string
}

/** Resolves once `url` answers 200, polling; fails if `child` exits first or after 60 s. */
export const waitReady = async (child: ChildProcess, url: string, what: string) => {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}) before it was ready`)
    const ok = await fetch(url).then((r) => r.ok, () => false)
    if (ok) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${what} was not ready within 60 s`)
}

export const startBroker = async (options: {
  /** The checkout whose build runs (its root). */
  readonly checkout: string
  readonly store: "memory" | "file"
  /** Node's own flags (`--cpu-prof …`). */
  readonly node?: ReadonlyArray<string>
  /** More flags of `osqueue broker`. */
  readonly args?: ReadonlyArray<string>
  readonly env?: Readonly<Record<string, string>>
}): Promise<StartedBroker> => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const dir = mkdtempSync(join(tmpdir(), "osqueue-bench-"))
  const child = spawn(process.execPath, [
    ...(options.node ?? []),
    join(options.checkout, "apps/osqueue/dist/bin.js"),
    "broker",
    "--log-level",
    "error",
    "--storage",
    options.store,
    "--dir",
    dir,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--url",
    url,
    ...(options.args ?? [])
  ], { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, ...options.env } })
  try {
    await waitReady(child, `${url}/readyz`, "the broker")
  } catch (error) {
    child.kill("SIGKILL")
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  return { url, child, dir }
}
