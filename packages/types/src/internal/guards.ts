/**
 * Hand-written guards, the schemas' rules compiled by hand, and `guarded`, which puts one in
 * front of its schema: a valid value costs a few comparisons instead of a Schema walk, and
 * anything a guard does not accept goes to the schema for its verdict and its error. The
 * schemas that cross the wire on every call use them (`JobOnWire`, the answers of jobs in
 * `JobOnWire.ts`, and the claim and completion requests in `Rpcs`).
 */
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"

export type Guard = (u: unknown) => boolean

export const isObject = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)
export const isString: Guard = (u) => typeof u === "string"
export const isInt: Guard = (u) => Number.isSafeInteger(u)
export const isMillis: Guard = (u) => Number.isSafeInteger(u) && (u as number) >= 0
export const isNumberIn = (u: unknown, min: number, max: number) => typeof u === "number" && u >= min && u <= max
export const isIntIn = (u: unknown, min: number, max: number) =>
  isInt(u) && (u as number) >= min && (u as number) <= max
export const isStringOfLength = (u: unknown, min: number, max: number) =>
  typeof u === "string" && u.length >= min && u.length <= max
export const isArrayOf = (u: unknown, is: Guard) => {
  if (!Array.isArray(u)) return false
  for (let i = 0; i < u.length; i++) if (!is(u[i])) return false
  return true
}
/** An optional field with `exact: true`: absent, or present and valid (never `undefined`). */
export const optional = (o: Record<string, unknown>, key: string, is: Guard) => !(key in o) || is(o[key])

/** True when `o` has no key outside `keys` (`strictFields`). */
export const onlyKeys = (o: Record<string, unknown>, keys: ReadonlySet<string>) => {
  for (const key in o) if (!keys.has(key)) return false
  return true
}

/**
 * `schema`, checked first by `guard`, which must give the schema's verdicts (`Job.test.ts` holds
 * each guard to its schema on every value and every field of one replaced or removed). A value
 * the guard accepts passes as it is; only one it refuses goes through the schema, so the error
 * still names what is wrong. Walking a schema costs about 6 µs per job here, 25 times the
 * guard. JSON Schema and the OpenAPI document describe `schema` (the surrogate).
 */
export const guarded = <A, I>(
  schema: Schema.Schema<A, I>,
  guard: (u: unknown) => u is A,
  /** What an encode sends of a value the guard accepts (the schema's own encode leaves out what it does not know). */
  toWire: (a: A) => A = (a) => a
): Schema.Schema<A> =>
  Schema.declare([], {
    decode: () => (input, options) =>
      guard(input) ? ParseResult.succeed(input) : ParseResult.decodeUnknown(schema)(input, options),
    // `I` is `A` without brands: the same JSON.
    encode: () => (input, options) =>
      guard(input)
        ? ParseResult.succeed(toWire(input))
        : ParseResult.map(ParseResult.encodeUnknown(schema)(input, options), (encoded) => encoded as unknown as A)
  }, { [SchemaAST.SurrogateAnnotationId]: schema.ast })
