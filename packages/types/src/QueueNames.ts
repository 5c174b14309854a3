/**
 * Named queues (docs/architecture.md, "Named queues"): one broker serves several queues, each an
 * engine of its own under its own key prefix. A request names its queue by the REST path prefix
 * `/queues/<name>/…` or, over RPC, the `osqueue-queue` header of each message; a request that
 * names none is for the default queue, whose keys are unprefixed (`queue.json`, `log/…`), as
 * they were before queues had names.
 */
import * as Schema from "effect/Schema"

/** The queue a request that names none is for: its objects are at the top of the store. */
export const defaultQueue = "default"

/** Letters, digits, `-` and `_`, starting with a letter or digit: safe in a URL path, a key and a metric label. */
export const queueNamePattern = /^[a-z0-9][a-z0-9_-]{0,63}$/

export const QueueName = Schema.String.pipe(
  Schema.pattern(queueNamePattern, {
    message: () => "a queue name is 1 to 64 characters of a-z, 0-9, - and _, starting with a letter or digit"
  })
)

/** Why `name` is not a queue name, or undefined when it is one. */
export const queueNameProblem = (name: string): string | undefined =>
  queueNamePattern.test(name)
    ? undefined
    : `"${
      name.length > 80 ? `${name.slice(0, 80)}…` : name
    }" is not a queue name: use 1 to 64 characters of a-z, 0-9, - and _, starting with a letter or digit`

/** The RPC message header (or WebSocket upgrade header) that names the queue. */
export const queueHeader = "osqueue-queue"

/** Where a queue's objects are in the store: "" for the default queue, `queues/<name>/` for the others. */
export const keyPrefix = (name: string): string => (name === defaultQueue ? "" : `queues/${name}/`)

/** The REST path prefix of a queue (`/queues/<name>`), before `/v1/…`. */
export const restPrefix = (name: string): string => `/queues/${name}`

/** The REST path prefix as a route pattern. */
export const restPrefixPattern = "/queues/:queue"
