/**
 * What a takeover costs before the new leader can serve (docs/ha.md, "The log and the fence"):
 * load the checkpoint (queue.json) from the file store a killed broker left, then replay every
 * log entry after it, as `Replica` does. Prints one `takeover <json>` line. Writes nothing.
 *
 *   tsx scripts/bench/takeover.ts DIR
 *
 * It runs in a process of its own, like a standby broker, so that the timing is a cold start's:
 * no state, no decoded jobs, nothing in this process's heap from before.
 */
import { Cas, Log, QueueState } from "@osqueue/core"
import { FileStore } from "@osqueue/storage"
import { Effect, Layer, Option } from "effect"

const directory = process.argv[2]
if (directory === undefined) {
  process.stderr.write("usage: tsx scripts/bench/takeover.ts DIR (a file store's directory)\n")
  process.exit(2)
}

/** Entries read per call, as a catching-up replica reads them. */
const window = 10_000

const takeover = Effect.gen(function*() {
  const cas = yield* Cas.Cas
  const log = yield* Log.Log
  const started = performance.now()
  const cpuBefore = process.cpuUsage()
  const loaded = yield* cas.load
  if (Option.isNone(loaded)) return yield* Effect.die(new Error(`no queue.json in ${directory}`))
  const state = QueueState.fromFile(loaded.value.file, loaded.value.bytes, undefined, loaded.value.kept)
  const loadedAt = performance.now()
  let entries = 0
  for (;;) {
    const batch = yield* log.readFrom(state.seq + 1, window)
    for (const entry of batch) {
      const problem = state.replay(entry)
      if (problem !== undefined) return yield* Effect.die(new Error(`entry ${entry.position}: ${problem}`))
    }
    entries += batch.length
    if (batch.length < window) break
  }
  const done = performance.now()
  const cpu = process.cpuUsage(cpuBefore)
  const stats = state.stats()
  return {
    loadMs: loadedAt - started,
    replayMs: done - loadedAt,
    totalMs: done - started,
    // CPU time of this process meanwhile: what the takeover costs on a machine of its own.
    cpuMs: (cpu.user + cpu.system) / 1000,
    checkpointBytes: loaded.value.bytes,
    checkpointPosition: loaded.value.file.seq,
    entries,
    queued: stats.counts.queued
  }
})

const store = FileStore.layer({ directory })
takeover.pipe(
  Effect.provide(Layer.merge(Cas.layer(), Log.layer).pipe(Layer.provide(store))),
  Effect.runPromise
).then((result) => {
  process.stdout.write(`takeover ${JSON.stringify(result)}\n`)
  process.exit(0)
}, (error) => {
  process.stderr.write(`takeover failed: ${error instanceof Error ? error.stack : String(error)}\n`)
  process.exit(1)
})
