/**
 * A job type with its payload (and result) schemas, shared by producers and workers so that an
 * enqueue is type-checked and validated before it is sent, and a worker receives the payload
 * decoded. The wire carries the schemas' encoded form.
 */
import type { Backoff } from "@osqueue/types"
import * as Schema from "effect/Schema"

/** Enqueue settings a definition may fix for every job of its type (a call can override them). */
export interface JobDefaults {
  readonly priority?: number
  readonly maxAttempts?: number
  readonly backoff?: Backoff
  /** The handler time limit of each job (`timeoutMs` of the enqueue options). */
  readonly timeoutMs?: number
}

export interface JobDefinition<Type extends string, P, PI, R = unknown, RI = unknown> {
  readonly _tag: "JobDefinition"
  readonly type: Type
  readonly payload: Schema.Schema<P, PI>
  readonly result: Schema.Schema<R, RI>
  readonly defaults: JobDefaults
}

// `any` in the schema positions: definitions are invariant in them and must all fit here.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Any = JobDefinition<string, any, any, any, any>

export type Payload<D extends Any> = D extends JobDefinition<infer _T, infer P, infer _PI, infer _R, infer _RI> ? P
  : never
export type Result<D extends Any> = D extends JobDefinition<infer _T, infer _P, infer _PI, infer R, infer _RI> ? R
  : never

export const make: {
  <const Type extends string, P, PI, R, RI>(options: {
    readonly type: Type
    readonly payload: Schema.Schema<P, PI>
    readonly result: Schema.Schema<R, RI>
    readonly defaults?: JobDefaults
  }): JobDefinition<Type, P, PI, R, RI>
  <const Type extends string, P, PI>(options: {
    readonly type: Type
    readonly payload: Schema.Schema<P, PI>
    readonly defaults?: JobDefaults
  }): JobDefinition<Type, P, PI>
} = (options: {
  readonly type: string
  readonly payload: Schema.Schema<unknown, unknown>
  readonly result?: Schema.Schema<unknown, unknown>
  readonly defaults?: JobDefaults
}): Any => ({
  _tag: "JobDefinition",
  type: options.type,
  payload: options.payload,
  result: options.result ?? Schema.Unknown,
  defaults: options.defaults ?? {}
})

export const isJobDefinition = (u: unknown): u is Any =>
  typeof u === "object" && u !== null && "_tag" in u && u._tag === "JobDefinition"
