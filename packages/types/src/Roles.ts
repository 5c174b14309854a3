/**
 * Tokens with roles: what a broker token may do. `admin` everything, `producer` enqueue, set and
 * remove schedules (whose runs are enqueues) and read,
 * `worker` work on claimed jobs and read, `read` only read (packages/broker/README.md, "Tokens and
 * roles"). The broker enforces this table on every transport; clients (the dashboard) read it to
 * offer only what a role may do.
 */
import * as Schema from "effect/Schema"

export const Role = Schema.Literal("admin", "producer", "worker", "read")
export type Role = typeof Role.Type

export const roles: ReadonlyArray<Role> = Role.literals

export const isRole = (text: string): text is Role => (roles as ReadonlyArray<string>).includes(text)

/**
 * The operations a role is checked for: the RPC operations by name (a REST route is its RPC
 * twin: `enqueueMany` is `EnqueueMany`), the operator routes `/metrics` (`Metrics`) and `/state`
 * (`State`), and `Whoami`, which any token may ask.
 */
const readOperations = [
  "Get",
  "List",
  "Stats",
  "Limits",
  "Workers",
  "Leader",
  "Watch",
  "State",
  "Metrics",
  "Whoami",
  "ListSchedules"
] as const
const produceOperations = ["Enqueue", "EnqueueMany", "EnqueueFlow", "UpsertSchedule", "RemoveSchedule"] as const
const workOperations = [
  "Claim",
  "Heartbeat",
  "Complete",
  "CompleteAndClaim",
  "CompleteMany",
  "Fail",
  "Release"
] as const
const adminOperations = [
  "Cancel",
  "Retry",
  "RetryDead",
  "Promote",
  "SetPriority",
  "Delete",
  "Purge",
  "Pause",
  "Resume",
  "SetLimit",
  "ClearLimit"
] as const

export const operations = [...produceOperations, ...workOperations, ...adminOperations, ...readOperations] as const
export type Operation = (typeof operations)[number]

/** The one table of who may do what. `read` is what changes nothing; heartbeats (progress) are work. */
export const grants: { readonly [R in Role]: ReadonlySet<Operation> } = {
  admin: new Set(operations),
  producer: new Set([...produceOperations, ...readOperations]),
  worker: new Set([...workOperations, ...readOperations]),
  read: new Set(readOperations)
}

export const isOperation = (text: string): text is Operation => (operations as ReadonlyArray<string>).includes(text)

/** The operation of a REST endpoint (`OsqueueApi`), by its name: `completeMany` is `CompleteMany`. */
export const ofEndpoint = (name: string): Operation | undefined => {
  const operation = name.charAt(0).toUpperCase() + name.slice(1)
  return isOperation(operation) ? operation : undefined
}

/** The roles that may run `operation`, most specific first. */
export const rolesFor = (operation: Operation): ReadonlyArray<Role> =>
  [...roles].reverse().filter((role) => grants[role].has(operation))

/** Whether `role` may run `operation`. */
export const may = (role: Role, operation: Operation): boolean => grants[role].has(operation)
