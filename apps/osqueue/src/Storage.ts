/** The store a broker runs on, chosen by `--storage` / STORAGE_BACKEND. */
import { FileStore, GcsStore, MemoryStore, type ObjectStore, S3Store } from "@osqueue/storage"
import type * as Layer from "effect/Layer"

export const backends = ["file", "memory", "s3", "gcs"] as const
export type Backend = (typeof backends)[number]

export const storageLayer = (backend: Backend, directory: string): Layer.Layer<ObjectStore, unknown> => {
  switch (backend) {
    case "file":
      return FileStore.layer({ directory })
    case "memory":
      return MemoryStore.layer
    case "s3":
      return S3Store.layerConfig
    case "gcs":
      return GcsStore.layerConfig
  }
}
