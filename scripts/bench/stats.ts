/** Latency samples, the figures the bench scripts print, and the processes they measure. */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { createServer } from "node:net"

export interface Latency {
  readonly p50: number
  readonly p99: number
  readonly count: number
}

export class Samples {
  private values: Array<number> = []
  reset(): void {
    this.values = []
  }
  add(ms: number): void {
    this.values.push(ms)
  }
  summary(): Latency | null {
    if (this.values.length === 0) return null
    const sorted = Float64Array.from(this.values).sort()
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
    return { p50: at(0.5), p99: at(0.99), count: sorted.length }
  }
}

/** Milliseconds on a clock shared by every fiber of one process (enqueue → handler start). */
export const now = (): number => performance.timeOrigin + performance.now()

export interface PhaseResult {
  readonly label: string
  readonly phase: "enqueue" | "drain" | "mixed"
  readonly jobs: number
  readonly seconds: number
  readonly rate: number
  readonly enqueue: Latency | null
  readonly claim: Latency | null
  readonly complete: Latency | null
  readonly endToEnd: Latency | null
  readonly errors: number
  /** CPU time of the server process (broker or redis-server) per job, in µs: robust to a busy machine. */
  readonly serverCpuUs: number
  /**
   * The share of the phase's wall time the server's main thread was on a CPU (0 to 1): below 1,
   * the server waited (for its clients, its disk, a timer) rather than ran out of CPU.
   */
  readonly serverBusy: number
  /** CPU time of the load process (producers and workers, through the client library) per job, in µs. */
  readonly loadCpuUs: number
  /** osqueue only: puts (log entries and checkpoints) per job. */
  readonly writesPerJob: number | null
  /** osqueue only: bytes of every put that landed, per job, as the store decorator counts them. */
  readonly bytesPerJob: number | null
  /** osqueue only: bytes the engine counts as written (log entries and checkpoints), per job: the check on bytesPerJob. */
  readonly engineBytesPerJob: number | null
  /** osqueue only: checkpoints written during the phase. */
  readonly checkpoints: number | null
  /** osqueue only: mean time to apply a batch and encode its log entry, per commit. */
  readonly encodeMs: number | null
  /**
   * osqueue only: mean time of one put, log entry or checkpoint (write and fsync on the file
   * store). An acknowledged request waited for at least one, so a producer with one request in
   * flight is acknowledged at most 1,000 / putMs times a second.
   */
  readonly putMs: number | null
  /** Peak resident memory of the server process (broker or redis-server), in MB. */
  peakRssMb?: number
}

/** A free loopback port for a server the bench starts. */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

/** CPU time (user + system) in a /proc stat file, in ms. */
const statCpuMs = (path: string): number => {
  const stat = readFileSync(path, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/** CPU time (user + system) a live process has used so far, in ms (Linux /proc): all its threads. */
export const cpuMs = (pid: number): number => statCpuMs(`/proc/${pid}/stat`)

/**
 * CPU time of a live process's main thread so far, in ms: the event loop of a broker, the one
 * thread of Redis's commands. Over a phase, divided by its wall time, it says whether the server
 * was saturated (near 100%) or waited for its clients and its disk.
 */
const mainThreadCpuMs = (pid: number): number => statCpuMs(`/proc/${pid}/task/${pid}/stat`)

/** Peak resident memory of a live process, in MB (VmHWM, Linux /proc). */
export const peakRssMb = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return kb / 1024
}

export const fmt = (n: number | null | undefined, digits = 1): string =>
  n === null || n === undefined ? "–" : n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(digits)

/**
 * The server's CPU from now on: `since(jobs, seconds)` gives its CPU per job over all its threads
 * (`serverCpuUs`) and its main thread's share of the wall time (`serverBusy`).
 */
export const serverUsage = (pid: number) => {
  const cpu = cpuMs(pid)
  const main = mainThreadCpuMs(pid)
  return (jobs: number, seconds: number): Pick<PhaseResult, "serverCpuUs" | "serverBusy"> => ({
    serverCpuUs: (cpuMs(pid) - cpu) * 1000 / jobs,
    serverBusy: (mainThreadCpuMs(pid) - main) / (seconds * 1000)
  })
}

/** A share (0 to 1) as a whole percentage; "–" when there is none (a `--checkout` from before it was measured). */
export const fmtShare = (share: number | undefined): string =>
  share === undefined || !Number.isFinite(share) ? "–" : `${Math.round(share * 100)}%`

export const fmtLatency = (l: Latency | null): string => (l === null ? "–" : `${fmt(l.p50)} / ${fmt(l.p99)}`)

/** The middle figure, or the mean of the two middle ones. */
export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The median of the figures that are there, or null when none is. */
const medianOrNull = (values: ReadonlyArray<number | null | undefined>): number | null => {
  const present = values.filter((v): v is number => v !== null && v !== undefined && Number.isFinite(v))
  return present.length === 0 ? null : median(present)
}

const medianLatency = (latencies: ReadonlyArray<Latency | null>): Latency | null => {
  const present = latencies.filter((l): l is Latency => l !== null)
  if (present.length === 0) return null
  return {
    p50: median(present.map((l) => l.p50)),
    p99: median(present.map((l) => l.p99)),
    count: present.reduce((sum, l) => sum + l.count, 0)
  }
}

/**
 * One phase of one run measured in several rounds (`pnpm bench --rounds`), as one result: each
 * figure the median of its rounds', each on its own (so a ratio of two such results is a ratio
 * of medians); errors added up, the highest peak RSS.
 */
export const medianResult = (rounds: ReadonlyArray<PhaseResult>): PhaseResult => {
  const first = rounds[0]!
  const of = (pick: (r: PhaseResult) => number) => median(rounds.map(pick))
  const rss = rounds.map((r) => r.peakRssMb).filter((mb): mb is number => mb !== undefined)
  return {
    label: first.label,
    phase: first.phase,
    jobs: first.jobs,
    seconds: of((r) => r.seconds),
    rate: of((r) => r.rate),
    enqueue: medianLatency(rounds.map((r) => r.enqueue)),
    claim: medianLatency(rounds.map((r) => r.claim)),
    complete: medianLatency(rounds.map((r) => r.complete)),
    endToEnd: medianLatency(rounds.map((r) => r.endToEnd)),
    errors: rounds.reduce((sum, r) => sum + r.errors, 0),
    serverCpuUs: of((r) => r.serverCpuUs),
    serverBusy: of((r) => r.serverBusy),
    loadCpuUs: of((r) => r.loadCpuUs),
    writesPerJob: medianOrNull(rounds.map((r) => r.writesPerJob)),
    bytesPerJob: medianOrNull(rounds.map((r) => r.bytesPerJob)),
    engineBytesPerJob: medianOrNull(rounds.map((r) => r.engineBytesPerJob)),
    checkpoints: medianOrNull(rounds.map((r) => r.checkpoints)),
    encodeMs: medianOrNull(rounds.map((r) => r.encodeMs)),
    putMs: medianOrNull(rounds.map((r) => r.putMs)),
    ...(rss.length === 0 ? {} : { peakRssMb: Math.max(...rss) })
  }
}

/**
 * Runs a bench script in a process of its own (`node --import tsx script args`) and resolves with
 * what follows `result ` on the first line of its output that starts so; fails if it exits
 * with another code than 0 or prints no such line. How the scripts that measure one part in a
 * fresh process (`inprocess.ts`, `longpoll.ts`, `processes.ts`) hand back their figure.
 */
export const resultOf = (script: string, args: ReadonlyArray<string>): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
    child.once("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("result "))
      if (code === 0 && line !== undefined) resolve(line.slice("result ".length))
      else reject(new Error(`${script} ${args.join(" ")} exited (${code}) without a result`))
    })
  })
