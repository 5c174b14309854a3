/**
 * One store seen through a key prefix: every key its user reads or writes is `<prefix><key>`, and
 * `list` answers keys without the prefix. A broker serving several queues gives each queue's
 * engine such a view (`queues/<name>/`), so each queue has its own `queue.json` and log in one
 * bucket or directory (docs/architecture.md, "Named queues"). Errors name the whole key.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type AppendLogs, ObjectStore, type ObjectStoreShape } from "./ObjectStore.js"

const prefixedLogs = (logs: AppendLogs, prefix: string): AppendLogs => ({
  append: (log, position, tag, body) => logs.append(prefix + log, position, tag, body),
  read: (log, position) => logs.read(prefix + log, position),
  collect: (log, position) => logs.collect(prefix + log, position),
  positions: (log) => logs.positions(prefix + log)
})

/** `store` under `prefix` ("" is the store itself). */
export const make = (store: ObjectStoreShape, prefix: string): ObjectStoreShape =>
  prefix === "" ? store : {
    backend: store.backend,
    ...(store.appendLogs === undefined ? {} : { appendLogs: prefixedLogs(store.appendLogs, prefix) }),
    minWriteInterval: store.minWriteInterval,
    get: (key) => store.get(prefix + key),
    head: (key) => store.head(prefix + key),
    put: (key, body, condition, options) => store.put(prefix + key, body, condition, options),
    delete: (key, ifMatch) => store.delete(prefix + key, ifMatch),
    list: (listPrefix) =>
      Effect.map(store.list(prefix + listPrefix), (keys) => keys.map((key) => key.slice(prefix.length)))
  }

/** The provided `ObjectStore`, under `prefix`. */
export const layer = (prefix: string): Layer.Layer<ObjectStore, never, ObjectStore> =>
  Layer.effect(ObjectStore, Effect.map(ObjectStore, (store) => make(store, prefix)))
