/** The store a broker runs on, chosen by `--storage` / STORAGE_BACKEND, optionally with injected faults. */
import * as Options from "@effect/cli/Options"
import { FaultyStore, FileStore, MemoryStore, ObjectStore } from "@osqueue/storage"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import { withDefault } from "./Help.js"

export const backends = ["file", "memory", "s3", "gcs"] as const
export type Backend = (typeof backends)[number]

/** Which store: `--storage` and `--dir` (the broker's, and a client's that finds the leader there). */
export const storeOptions = {
  storage: Options.choice("storage", backends).pipe(
    Options.withDescription(
      "Where queue.json lives; s3 and gcs are set up by the S3_* and GCS_* variables. Env STORAGE_BACKEND."
    ),
    Options.withFallbackConfig(Config.literal(...backends)("STORAGE_BACKEND")),
    withDefault("file" as Backend)
  ),
  dir: Options.directory("dir").pipe(
    Options.withDescription("The file store's directory. Env OSQUEUE_DIR."),
    Options.withFallbackConfig(Config.string("OSQUEUE_DIR")),
    withDefault(".osqueue")
  )
}

export const layerStorage = (backend: Backend, directory: string): Layer.Layer<ObjectStore, unknown> => {
  switch (backend) {
    case "file":
      return FileStore.layer({ directory })
    case "memory":
      return MemoryStore.layer
    // Loaded on demand: the cloud SDKs cost a second of start-up to every other command.
    case "s3":
      return Layer.unwrapEffect(
        Effect.promise(() => import("@osqueue/storage/s3")).pipe(Effect.map((m) => m.layerConfig))
      )
    case "gcs":
      return Layer.unwrapEffect(
        Effect.promise(() => import("@osqueue/storage/gcs")).pipe(Effect.map((m) => m.layerConfig))
      )
  }
}

/**
 * A test facility (`osqueue broker --store-faults`, used by `scripts/chaos`): the store behind
 * the FaultyStore decorator. The counts of injected faults are logged every second while they
 * change and once more at shutdown, so a harness can total them from the log.
 */
export const withFaults = (
  store: Layer.Layer<ObjectStore, unknown>,
  options: FaultyStore.FaultOptions
): Layer.Layer<ObjectStore, unknown> => {
  const report = (control: FaultyStore.Control["Type"]) =>
    Effect.flatMap(
      control.counts,
      (counts) => Effect.logInfo("store faults injected so far").pipe(Effect.annotateLogs({ ...counts }))
    )
  const reporter = Layer.scopedDiscard(
    Effect.gen(function*() {
      const control = yield* FaultyStore.Control
      yield* Effect.logWarning("store fault injection is on: a test facility, never for production").pipe(
        Effect.annotateLogs({ faults: JSON.stringify(options) })
      )
      let last = ""
      const reportIfChanged = Effect.flatMap(control.counts, (counts) => {
        const now = JSON.stringify(counts)
        if (now === last) return Effect.void
        last = now
        return report(control)
      })
      yield* Effect.addFinalizer(() => report(control))
      yield* reportIfChanged.pipe(Effect.repeat(Schedule.spaced("1 second")), Effect.forkScoped)
    })
  )
  return Layer.merge(Layer.service(ObjectStore), reporter).pipe(
    Layer.provide(FaultyStore.layer(options)),
    Layer.provide(store)
  )
}
