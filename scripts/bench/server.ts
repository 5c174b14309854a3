/**
 * One osqueue broker for `pnpm bench`, in a process of its own so its CPU, memory and
 * garbage collection are measured apart from the load:
 * `tsx scripts/bench/server.ts <port> <memory|file|latency> [latencyMs]`.
 * `latency` is the file store behind the faulty decorator adding a fixed delay to every
 * storage call (a stand-in for S3's round trip). Prints `ready` once it listens.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Broker } from "@osqueue/broker"
import { FaultyStore, FileStore, MemoryStore } from "@osqueue/storage"
import { Effect, Layer, Logger, LogLevel } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const [portArg, store = "file", latencyArg = "50"] = process.argv.slice(2)
const port = Number(portArg)
const url = `http://127.0.0.1:${port}`
const dir = mkdtempSync(join(tmpdir(), "osqueue-bench-"))
process.on("exit", () => rmSync(dir, { recursive: true, force: true }))

const fileStore = FileStore.layer({ directory: dir })
const storeLayer = store === "memory"
  ? MemoryStore.layer
  : store === "latency"
  ? FaultyStore.layer({ latencyMs: Number(latencyArg) }).pipe(Layer.provide(fileStore))
  : fileStore

const BrokerLive = Broker.serve({ port, host: "127.0.0.1" }).pipe(
  Layer.provideMerge(Broker.engine({ advertisedUrl: url })),
  Layer.provide(storeLayer),
  Layer.provide(Logger.minimumLogLevel(LogLevel.Warning)),
  Layer.provide(process.env.NO_TRACE ? Layer.setTracerEnabled(false) : Layer.empty)
)

Layer.launch(BrokerLive.pipe(Layer.tap(() => Effect.sync(() => process.stdout.write("ready\n"))))).pipe(
  NodeRuntime.runMain
)
