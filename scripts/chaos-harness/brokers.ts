/**
 * The broker processes of a chaos run: real `osqueue broker` processes on loopback ports, all on
 * one store, with the store faults injected inside each (`--store-faults`). Each keeps its JSON
 * log in a file; every process started here is killed when the run's scope closes, whatever
 * happened.
 */
import { Effect, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { createWriteStream, type WriteStream } from "node:fs"
import { createServer } from "node:net"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
const bin = join(root, "apps", "osqueue", "src", "bin.ts")

export interface BrokerSpec {
  readonly name: string
  readonly port: number
  readonly url: string
}

export interface BrokerOptions {
  readonly electionTtlMs: number
  readonly storeArgs: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
  /** FaultyStore options; each process gets its own seed, derived from `seed`. */
  readonly faults: Readonly<Record<string, number>>
  readonly seed: number
  readonly logDir: string
}

export type Status = "starting" | "running" | "stopped" | "dead"

export interface LeaderInfo {
  readonly role: "leader" | "follower"
  readonly leaderUrl: string | null
  readonly epoch: number
}

/** Every process this run started and that has not exited: killed when this process exits, however it exits. */
const children = new Set<ChildProcess>()
process.on("exit", () => {
  for (const child of children) {
    child.kill("SIGCONT")
    child.kill("SIGKILL")
  }
})

/** One broker slot: a fixed port and URL; the process in it is restarted after each kill. */
export class BrokerSlot {
  child: ChildProcess | undefined
  status: Status = "dead"
  starts = 0
  private log: WriteStream | undefined
  exited: Promise<void> = Promise.resolve()

  constructor(readonly spec: BrokerSpec, readonly index: number, private readonly options: BrokerOptions) {}

  start(): void {
    this.starts++
    const logPath = join(this.options.logDir, `${this.spec.name}.${this.starts}.log`)
    this.log = createWriteStream(logPath)
    const child = spawn(
      process.execPath,
      [
        "--conditions=source",
        "--import",
        "tsx",
        bin,
        "broker",
        "--host",
        "127.0.0.1",
        "--port",
        String(this.spec.port),
        "--url",
        this.spec.url,
        "--election-ttl-ms",
        String(this.options.electionTtlMs),
        "--store-faults",
        // Its own seed per process: with one seed, every broker would draw the same faults.
        JSON.stringify({ ...this.options.faults, seed: this.options.seed + this.index * 1_000 + this.starts }),
        ...this.options.storeArgs
      ],
      {
        cwd: root,
        env: { ...process.env, ...this.options.env, OSQUEUE_LOG_FORMAT: "json" },
        stdio: ["ignore", "pipe", "pipe"]
      }
    )
    this.child = child
    children.add(child)
    this.status = "starting"
    const log = this.log
    child.stdout!.pipe(log, { end: false })
    child.stderr!.pipe(log, { end: false })
    this.exited = new Promise((resolve) =>
      child.on("exit", () => {
        children.delete(child)
        if (this.child === child) {
          this.child = undefined
          this.status = "dead"
        }
        log.end()
        resolve()
      })
    )
  }

  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal)
    if (signal === "SIGSTOP") this.status = "stopped"
    if (signal === "SIGCONT" && this.status === "stopped") this.status = "running"
  }

  get alive(): boolean {
    return this.child !== undefined
  }
}

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(
        () => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port")))
      )
    })
  })

/** GET /v1/leader with a short deadline: a stopped process never answers. */
export const leaderInfo = (url: string, timeoutMs = 500): Effect.Effect<LeaderInfo | undefined> =>
  Effect.promise(async () => {
    try {
      const response = await fetch(`${url}/v1/leader`, { signal: AbortSignal.timeout(timeoutMs) })
      if (!response.ok) return undefined
      return (await response.json()) as LeaderInfo
    } catch {
      return undefined
    }
  })

/** Starts `count` brokers; their processes are killed (SIGCONT first, then SIGKILL) when `scope` closes. */
export const startBrokers = (
  count: number,
  options: BrokerOptions
): Effect.Effect<ReadonlyArray<BrokerSlot>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const slots: Array<BrokerSlot> = []
    for (let i = 0; i < count; i++) {
      const port = yield* Effect.promise(freePort)
      slots.push(new BrokerSlot({ name: `broker-${i + 1}`, port, url: `http://127.0.0.1:${port}` }, i, options))
    }
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        for (const slot of slots) {
          slot.signal("SIGCONT")
          slot.signal("SIGKILL")
        }
        await Promise.all(slots.map((slot) => slot.exited))
      })
    )
    for (const slot of slots) slot.start()
    return slots
  })
