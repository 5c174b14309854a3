/** The store a broker runs on, chosen by `--storage` / STORAGE_BACKEND. */
import { FileStore, MemoryStore, type ObjectStore } from "@osqueue/storage"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export const backends = ["file", "memory", "s3", "gcs"] as const
export type Backend = (typeof backends)[number]

export const storageLayer = (backend: Backend, directory: string): Layer.Layer<ObjectStore, unknown> => {
  switch (backend) {
    case "file":
      return FileStore.layer({ directory })
    case "memory":
      return MemoryStore.layer
    // Loaded on demand: the cloud SDKs cost a second of start-up to every other command.
    case "s3":
      return Layer.unwrapEffect(Effect.promise(() => import("@osqueue/storage/s3")).pipe(Effect.map((m) => m.layerConfig)))
    case "gcs":
      return Layer.unwrapEffect(Effect.promise(() => import("@osqueue/storage/gcs")).pipe(Effect.map((m) => m.layerConfig)))
  }
}
