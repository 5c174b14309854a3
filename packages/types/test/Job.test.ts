/**
 * `JobOnWire` is `Job` checked by a hand-written guard: it must give the same verdict as the
 * `Job` schema on every job the schema can describe, and on every way of breaking one.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, FastCheck as fc, JSONSchema, ParseResult, Schema } from "effect"
import { Job, JobOnWire } from "../src/index.js"

const schemaSays = Schema.is(Job)
const guardSays = Schema.is(JobOnWire)

/** Wrong values of every JSON kind, and a few right-typed ones that break a rule. */
const replacements: ReadonlyArray<unknown> = [
  undefined, null, true, "", "x", "queued", "fixed", "exponential", "completed", -1, 0, 1.5, 2, Number.NaN,
  Number.MAX_SAFE_INTEGER + 2, "x".repeat(129), {}, [], [{}]
]

/** Every path into `value` through objects and arrays (the root excluded). */
const paths = (value: unknown, prefix: ReadonlyArray<string | number> = []): Array<ReadonlyArray<string | number>> => {
  if (typeof value !== "object" || value === null) return []
  const keys: Array<string | number> = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value)
  return keys.flatMap((key) => {
    const path = [...prefix, key]
    return [path, ...paths((value as Record<string | number, unknown>)[key], path)]
  })
}

/** A deep copy of `value` with the value at `path` replaced, or deleted when `replacement` is `deleted`. */
const deleted = Symbol("deleted")
const mutate = (value: unknown, path: ReadonlyArray<string | number>, replacement: unknown): unknown => {
  const copy = structuredClone(value) as Record<string | number, unknown>
  let parent = copy
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>
  const last = path[path.length - 1]!
  if (replacement === deleted) delete parent[last]
  else parent[last] = replacement
  return copy
}

const jobs = Arbitrary.make(Job)

describe("JobOnWire", () => {
  it("accepts every job the Job schema accepts", () => {
    fc.assert(
      fc.property(jobs, (job) => {
        // As JSON, a job may lose a field (an `undefined` payload): then both refuse it.
        const sent: unknown = JSON.parse(JSON.stringify(job))
        return guardSays(job) && guardSays(sent) === schemaSays(sent)
      }),
      { numRuns: 500 }
    )
  })

  it("gives the Job schema's verdict on every field replaced or removed", () => {
    fc.assert(
      fc.property(jobs, (job) => {
        for (const path of paths(job)) {
          for (const replacement of [...replacements, deleted]) {
            const mutant = mutate(job, path, replacement)
            if (guardSays(mutant) !== schemaSays(mutant)) {
              throw new Error(`at ${path.join(".")} = ${String(replacement)}: guard ${guardSays(mutant)}, schema ${schemaSays(mutant)}`)
            }
          }
        }
      }),
      { numRuns: 100 }
    )
  })

  it("refuses what is not an object", () => {
    for (const value of [null, undefined, "job", 1, [], [{}]]) expect(guardSays(value)).toBe(false)
  })

  it("names Job when it refuses one", () => {
    const result = Schema.decodeUnknownEither(JobOnWire)({ id: "job-1" })
    expect(result._tag).toBe("Left")
    if (result._tag === "Left") expect(ParseResult.TreeFormatter.formatErrorSync(result.left)).toContain("Expected Job")
  })

  it("is described as Job in JSON Schema (and so in the OpenAPI document)", () => {
    expect(JSONSchema.make(JobOnWire)).toEqual(JSONSchema.make(Job))
  })
})
