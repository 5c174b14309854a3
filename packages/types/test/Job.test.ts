/**
 * `JobOnWire`, `EnqueueOptionsOnWire`, `EnqueueManyRequestOnWire`, `ClaimRequestOnWire`,
 * `CompleteRequestOnWire`, `CompleteAndClaimRequestOnWire`, `CompleteManyRequestOnWire`, `JobOrIdOnWire`,
 * `JobsOrIdsOnWire`, `ClaimedJobsOnWire` and `JobIdOnWire` are their schemas checked first by hand-written
 * guards: each guard must give its schema's verdict on every value the schema can describe, and
 * on every way of breaking one.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, FastCheck as fc, JSONSchema, ParseResult, Schema } from "effect"
import {
  ClaimedJob,
  ClaimedJobsOnWire,
  ClaimRequest,
  ClaimRequestOnWire,
  CompleteAndClaimRequest,
  CompleteAndClaimRequestOnWire,
  CompleteManyRequestOnWire,
  CompleteRequest,
  CompleteRequestOnWire,
  defaultBackoff,
  EnqueueManyRequest,
  EnqueueManyRequestOnWire,
  EnqueueOptions,
  EnqueueOptionsOnWire,
  Job,
  JobId,
  JobIdOnWire,
  JobOnWire,
  JobOrIdOnWire,
  JobsOrIdsOnWire,
  LeaseToken,
  maxCompleteBatch,
  maxDelayMs,
  maxInstant,
  maxJobIdLength,
  maxTimeoutMs,
  StoredJob,
  storedJob,
  strictFields
} from "../src/index.js"

/** Wrong values of every JSON kind, and a few right-typed ones that break a rule. */
const replacements: ReadonlyArray<unknown> = [
  undefined,
  null,
  true,
  "",
  "x",
  "queued",
  "fixed",
  "exponential",
  "completed",
  -1,
  0,
  1.5,
  2,
  Number.NaN,
  Number.MAX_SAFE_INTEGER + 2,
  Number.MAX_SAFE_INTEGER,
  maxDelayMs,
  maxDelayMs + 1,
  maxInstant,
  maxInstant + 1,
  maxTimeoutMs,
  maxTimeoutMs + 1,
  "x".repeat(129),
  "x".repeat(201),
  "x".repeat(513),
  {},
  [],
  [{}],
  // Near misses of a traceparent: uppercase, an all-zero trace id, another version, one character more.
  `00-${"AB".repeat(16)}-${"12".repeat(8)}-01`,
  `00-${"0".repeat(32)}-${"12".repeat(8)}-01`,
  `01-${"ab".repeat(16)}-${"12".repeat(8)}-01`,
  `00-${"ab".repeat(16)}-${"12".repeat(8)}-011`
]

/** A deep copy of `value` with a key its schema does not know added to the object at `path`. */
const withExtraKey = (value: unknown, path: ReadonlyArray<string | number>): unknown => {
  const copy = structuredClone(value) as Record<string | number, unknown>
  let target = copy
  for (const key of path) target = target[key] as Record<string | number, unknown>
  if (typeof target === "object" && target !== null && !Array.isArray(target)) target["typ"] = "extra"
  return copy
}

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

/** What no request or job is. */
const notObjects: ReadonlyArray<unknown> = [null, undefined, "job", 1, [], [{}]]
/** What no answer of jobs is. */
const notArrays: ReadonlyArray<unknown> = [null, undefined, "job", 1, {}, [{}], [null], [[]]]

/**
 * An answer of `element`s: its schema, and arrays of one or two to check (every field of each is
 * replaced in turn, each time checking the whole array: longer ones cost time and find nothing
 * more; the elements' own guards are held to their schemas above).
 */
const answersOf = <A, I>(element: Schema.Schema<A, I>) => ({
  schema: Schema.Array(element) as Schema.Schema<unknown, unknown>,
  values: fc.array(Arbitrary.make(element), { minLength: 1, maxLength: 2 }) as fc.Arbitrary<unknown>,
  notValues: notArrays
})

const pairs: Array<{
  readonly name: string
  readonly schema: Schema.Schema<unknown, unknown>
  readonly wire: Schema.Schema<unknown>
  readonly runs: number
  readonly values?: fc.Arbitrary<unknown>
  readonly notValues?: ReadonlyArray<unknown>
}> = [
  {
    name: "JobOnWire",
    schema: Job as Schema.Schema<unknown, unknown>,
    wire: JobOnWire as Schema.Schema<unknown>,
    runs: 60
  },
  {
    name: "EnqueueOptionsOnWire",
    schema: EnqueueOptions as Schema.Schema<unknown, unknown>,
    wire: EnqueueOptionsOnWire as Schema.Schema<unknown>,
    runs: 300
  },
  {
    name: "ClaimRequestOnWire",
    schema: ClaimRequest as Schema.Schema<unknown, unknown>,
    wire: ClaimRequestOnWire as Schema.Schema<unknown>,
    runs: 300
  },
  {
    name: "EnqueueManyRequestOnWire",
    schema: EnqueueManyRequest as Schema.Schema<unknown, unknown>,
    wire: EnqueueManyRequestOnWire as Schema.Schema<unknown>,
    runs: 15
  },
  {
    name: "CompleteRequestOnWire",
    schema: CompleteRequest as Schema.Schema<unknown, unknown>,
    wire: CompleteRequestOnWire as Schema.Schema<unknown>,
    runs: 300
  },
  {
    name: "CompleteAndClaimRequestOnWire",
    schema: CompleteAndClaimRequest as Schema.Schema<unknown, unknown>,
    wire: CompleteAndClaimRequestOnWire as Schema.Schema<unknown>,
    runs: 300
  },
  {
    name: "CompleteManyRequestOnWire",
    // Its items are `CompleteRequestOnWire`, which has no arbitrary: the same request over `CompleteRequest`.
    schema: Schema.Struct({
      items: Schema.Array(CompleteRequest).pipe(Schema.minItems(1), Schema.maxItems(maxCompleteBatch))
    }).annotations(strictFields) as Schema.Schema<unknown, unknown>,
    wire: CompleteManyRequestOnWire as Schema.Schema<unknown>,
    runs: 30
  },
  {
    name: "ClaimedJobsOnWire",
    ...answersOf(Schema.Struct({ job: Job, token: LeaseToken })),
    wire: ClaimedJobsOnWire as Schema.Schema<unknown>,
    runs: 5
  },
  {
    name: "JobsOrIdsOnWire",
    ...answersOf(Schema.Union(JobId, Job)),
    wire: JobsOrIdsOnWire as Schema.Schema<unknown>,
    runs: 5
  }
]

for (const { name, notValues = notObjects, runs, schema, values = Arbitrary.make(schema), wire } of pairs) {
  const schemaSays = Schema.is(schema)
  const guardSays = Schema.is(wire)

  describe(name, () => {
    it("accepts every value the schema accepts", () => {
      fc.assert(
        fc.property(values, (value) => {
          // As JSON, a value may lose a field (an `undefined` payload): then both must agree on it.
          const sent: unknown = JSON.parse(JSON.stringify(value))
          return guardSays(value) && guardSays(sent) === schemaSays(sent)
        }),
        { numRuns: 500 }
      )
    })

    it("gives the schema's verdict on every field replaced or removed", () => {
      fc.assert(
        fc.property(values, (value) => {
          for (const path of paths(value)) {
            for (const replacement of [...replacements, deleted]) {
              const mutant = mutate(value, path, replacement)
              if (guardSays(mutant) !== schemaSays(mutant)) {
                throw new Error(
                  `at ${path.join(".")} = ${String(replacement)}: guard ${guardSays(mutant)}, schema ${
                    schemaSays(mutant)
                  }`
                )
              }
            }
          }
          // A key the schema does not know, at the top and in every nested object (`strictFields`).
          for (const path of [[], ...paths(value)]) {
            const mutant = withExtraKey(value, path)
            if (guardSays(mutant) !== schemaSays(mutant)) {
              throw new Error(
                `with an extra key at ${path.join(".")}: guard ${guardSays(mutant)}, schema ${schemaSays(mutant)}`
              )
            }
          }
        }),
        { numRuns: runs }
      )
      // Every field of every generated value is checked three ways: 12 s for JobOnWire on an idle
      // CI machine and near 30 s on a busy one, where the shared 30 s limit failed it.
    }, 120_000)

    it("refuses what is not one", () => {
      for (const value of notValues) expect(guardSays(value)).toBe(false)
    })

    it("is described as the schema in JSON Schema (and so in the OpenAPI document)", () => {
      expect(JSONSchema.make(wire)).toEqual(JSONSchema.make(schema))
    })
  })
}

describe("JobIdOnWire", () => {
  const guardSays = Schema.is(JobIdOnWire)
  const schemaSays = Schema.is(JobId)

  it("gives the schema's verdict on strings of every length around its bounds, and on what is not a string", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: maxJobIdLength + 2 }), (value) => guardSays(value) === schemaSays(value))
    )
    for (const value of [...replacements, "x".repeat(maxJobIdLength), "x".repeat(maxJobIdLength + 1)]) {
      expect(guardSays(value)).toBe(schemaSays(value))
    }
  })

  it("is described as the schema in JSON Schema (and so in the OpenAPI document's job paths)", () => {
    expect(JSONSchema.make(JobIdOnWire)).toEqual(JSONSchema.make(JobId))
  })
})

describe("JobOrIdOnWire", () => {
  const schema = Schema.Union(JobId, Job)
  const guardSays = Schema.is(JobOrIdOnWire)
  const schemaSays = Schema.is(schema)

  it("gives the schema's verdict on ids, jobs and what is neither", () => {
    fc.assert(
      fc.property(Arbitrary.make(schema), (value) => {
        const sent: unknown = JSON.parse(JSON.stringify(value))
        return guardSays(value) && guardSays(sent) === schemaSays(sent)
      }),
      { numRuns: 300 }
    )
    for (const value of [...replacements, "x".repeat(maxJobIdLength), "x".repeat(maxJobIdLength + 1)]) {
      expect(guardSays(value)).toBe(schemaSays(value))
    }
  })

  it("encodes a job without its lease's secret, an id as it is", () => {
    const job = fc.sample(Arbitrary.make(Job), 1)[0]!
    const encode = Schema.encodeSync(Schema.Array(JobOrIdOnWire))
    expect(encode([job, "job-1" as JobId])).toEqual([Schema.encodeSync(JobOnWire)(job), "job-1"])
  })

  it("is described as the schema in JSON Schema", () => {
    expect(JSONSchema.make(JobOrIdOnWire)).toEqual(JSONSchema.make(schema))
  })
})

describe("answers of jobs checked by one guard", () => {
  it("encode as the arrays of their elements' schemas: without the lease's secret, and no key the struct lacks", () => {
    const jobs = fc.sample(Arbitrary.make(Job), 5)
    const held = jobs.map((job, i) => ({
      ...job,
      // An id of the arbitrary may hold a "/", which no token can name.
      id: `job-${i}` as JobId,
      lease: { workerId: "w", epoch: 1, expiresAt: 5, ttlMs: 1_000, secret: `s${i}` }
    }))
    const claimed = held.map((job, i) => ({ job, token: `${job.id}/1/1` as LeaseToken, extra: i }))
    const encoded = Schema.encodeSync(ClaimedJobsOnWire)(claimed)
    expect(encoded).toEqual(Schema.encodeSync(Schema.Array(ClaimedJob))(claimed))
    expect(JSON.stringify(encoded)).not.toMatch(/secret|extra/)
    const answers = [...held, "job-1" as JobId]
    expect(Schema.encodeSync(JobsOrIdsOnWire)(answers)).toEqual(
      Schema.encodeSync(Schema.Array(JobOrIdOnWire))(answers)
    )
    expect(JSON.stringify(Schema.encodeSync(JobsOrIdsOnWire)(answers))).not.toMatch(/secret/)
  })

  it("a value the guard refuses still fails with the schema's error, naming the element", () => {
    const result = Schema.decodeUnknownEither(ClaimedJobsOnWire)([{ job: {}, token: "t/1/1" }])
    expect(result._tag).toBe("Left")
    if (result._tag === "Left") expect(ParseResult.TreeFormatter.formatErrorSync(result.left)).toMatch(/\[0\]/)
  })
})

describe("limits", () => {
  it("a request with a key it does not know is refused, naming the key; a job read back is not", () => {
    const options = Schema.decodeUnknownEither(EnqueueOptionsOnWire)({ type: "t", dleayMs: 5 })
    expect(options._tag).toBe("Left")
    if (options._tag === "Left") expect(ParseResult.TreeFormatter.formatErrorSync(options.left)).toContain("dleayMs")
    const backoff = { _tag: "fixed", delayMs: 1, extra: true }
    expect(Schema.is(EnqueueOptionsOnWire)({ type: "t", backoff })).toBe(false)
  })

  it("delays, instants and backoffs past their maxima are refused; a job holding one still reads", () => {
    for (
      const options of [
        { type: "t", delayMs: Number.MAX_SAFE_INTEGER },
        { type: "t", delayMs: maxDelayMs + 1 },
        { type: "t", runAt: maxInstant + 1 },
        { type: "t", backoff: { _tag: "fixed", delayMs: maxDelayMs + 1 } },
        { type: "t", backoff: { _tag: "exponential", baseMs: Number.MAX_SAFE_INTEGER, maxMs: 1, jitter: 0 } },
        { type: "t", backoff: { _tag: "exponential", baseMs: 1, maxMs: Number.MAX_SAFE_INTEGER, jitter: 0 } }
      ]
    ) {
      expect(Schema.is(EnqueueOptionsOnWire)(options)).toBe(false)
      expect(Schema.is(EnqueueOptions)(options)).toBe(false)
    }
    for (const options of [{ type: "t", delayMs: maxDelayMs }, { type: "t", runAt: maxInstant }]) {
      expect(Schema.is(EnqueueOptionsOnWire)(options)).toBe(true)
    }
    const held = {
      id: "job-1",
      type: "t",
      payload: null,
      state: "delayed",
      priority: 0,
      attempts: 0,
      maxAttempts: 3,
      claims: 0,
      backoff: { _tag: "exponential", baseMs: Number.MAX_SAFE_INTEGER, maxMs: Number.MAX_SAFE_INTEGER, jitter: 0 },
      seq: 1,
      createdAt: 0,
      runAt: Number.MAX_SAFE_INTEGER,
      history: []
    }
    expect(Schema.is(JobOnWire)(held)).toBe(true)
  })
})

describe("timeoutMs", () => {
  it("a request's handler time limit is whole ms from 1 to 24 days, and the refusal says so", () => {
    for (const timeoutMs of [1, maxTimeoutMs]) {
      expect(Schema.is(EnqueueOptionsOnWire)({ type: "t", timeoutMs })).toBe(true)
    }
    for (const timeoutMs of [0, -1, 1.5, maxTimeoutMs + 1, Number.NaN, "5"]) {
      const result = Schema.decodeUnknownEither(EnqueueOptionsOnWire)({ type: "t", timeoutMs })
      expect(result._tag).toBe("Left")
      if (result._tag === "Left") expect(ParseResult.TreeFormatter.formatErrorSync(result.left)).toContain("timeoutMs")
    }
  })

  it("is kept when the job is stored in queue.json and read back", () => {
    const job = Schema.decodeUnknownSync(Job)({
      id: "job-1",
      type: "t",
      payload: null,
      state: "queued",
      priority: 0,
      attempts: 0,
      maxAttempts: 3,
      claims: 0,
      backoff: { _tag: "fixed", delayMs: 1 },
      seq: 1,
      createdAt: 0,
      runAt: 0,
      timeoutMs: 250,
      history: []
    })
    const stored = Schema.encodeSync(StoredJob)(job)
    expect(stored).toMatchObject({ timeoutMs: 250 })
    expect(Schema.decodeUnknownSync(StoredJob)(JSON.parse(JSON.stringify(stored)))).toEqual(job)
  })
})

describe("traceparent", () => {
  const valid = `00-${"4bf92f3577b34da6a3ce929d0e0e4736"}-${"00f067aa0ba902b7"}-01`

  it("a request takes only a W3C traceparent, and says what one looks like", () => {
    expect(Schema.is(EnqueueOptionsOnWire)({ type: "t", traceparent: valid })).toBe(true)
    for (
      const traceparent of [
        "",
        valid.toUpperCase(),
        `${valid} `,
        `${valid}-extra`,
        valid.replace("00-", "ff-"),
        "x".repeat(100_000),
        `00-${"0".repeat(32)}-00f067aa0ba902b7-01`,
        `00-4bf92f3577b34da6a3ce929d0e0e4736-${"0".repeat(16)}-01`
      ]
    ) {
      const result = Schema.decodeUnknownEither(EnqueueOptionsOnWire)({ type: "t", traceparent })
      expect(result._tag).toBe("Left")
      if (result._tag === "Left") {
        expect(ParseResult.TreeFormatter.formatErrorSync(result.left)).toContain(
          "a traceparent is a W3C trace context header"
        )
      }
    }
  })

  it("a job read back keeps any text there (reads are lenient)", () => {
    const job = {
      id: "job-1",
      type: "t",
      payload: null,
      state: "queued",
      priority: 0,
      attempts: 0,
      maxAttempts: 3,
      claims: 0,
      backoff: { _tag: "fixed", delayMs: 1 },
      seq: 1,
      createdAt: 0,
      runAt: 0,
      traceparent: "not one",
      history: []
    }
    expect(Schema.is(JobOnWire)(job)).toBe(true)
  })
})

describe("a value the guard refuses", () => {
  it("is refused with the schema's error, which names the field", () => {
    const result = Schema.decodeUnknownEither(JobOnWire)({
      id: "job-1",
      type: "t",
      payload: null,
      state: "queued",
      priority: "high"
    })
    expect(result._tag).toBe("Left")
    if (result._tag === "Left") {
      const message = ParseResult.TreeFormatter.formatErrorSync(result.left)
      expect(message).toContain(`["priority"]`)
      expect(message).toContain(`actual "high"`)
    }
    const options = Schema.decodeUnknownEither(EnqueueOptionsOnWire)({ type: "", maxAttempts: 0 })
    expect(options._tag).toBe("Left")
    if (options._tag === "Left") {
      expect(ParseResult.TreeFormatter.formatErrorSync(options.left)).toContain("a job type must not be empty")
    }
  })

  it("is accepted when the schema's decoding accepts it", () => {
    // The guard wants the payload key; decoding takes a missing one as undefined.
    const job = {
      id: "job-1",
      type: "t",
      state: "queued",
      priority: 0,
      attempts: 0,
      maxAttempts: 3,
      claims: 0,
      backoff: { _tag: "fixed", delayMs: 0 },
      seq: 1,
      createdAt: 0,
      runAt: 0,
      history: []
    }
    expect(Schema.is(JobOnWire)(job)).toBe(false)
    expect(Schema.decodeUnknownEither(JobOnWire)(job)._tag).toBe("Right")
  })
})

describe("storedJob", () => {
  /** `storedJob` as a rest spread of the job wrote it, before it was built as a literal: the bytes it must keep. */
  const spreadStoredJob = (job: Job): Record<string, unknown> => {
    const { attempts, backoff, claims, history, priority, runAt, ...rest } = job
    const stored: Record<string, unknown> = rest
    if (priority !== 0) stored.priority = priority
    if (attempts !== 0) stored.attempts = attempts
    if (claims !== 0) stored.claims = claims
    const usual = backoff._tag === "exponential" && backoff.baseMs === defaultBackoff.baseMs &&
      backoff.maxMs === defaultBackoff.maxMs && backoff.jitter === defaultBackoff.jitter
    if (!usual) stored.backoff = backoff
    if (runAt !== job.createdAt) stored.runAt = runAt
    if (history.length > 0) stored.history = history
    return stored
  }

  it("writes any job, its fields in `Job`'s order, as the rest spread did", () => {
    // The usual values of the fields left out come up often, so that both sides of each rule are met.
    const job = fc.tuple(
      Arbitrary.make(Job),
      fc.record({ zero: fc.boolean(), usualBackoff: fc.boolean(), runAtCreated: fc.boolean(), noHistory: fc.boolean() })
    ).map(([job, usual]): Job => ({
      ...job,
      ...(usual.zero ? { priority: 0, attempts: 0, claims: 0 } : {}),
      ...(usual.usualBackoff ? { backoff: { ...defaultBackoff } } : {}),
      ...(usual.runAtCreated ? { runAt: job.createdAt } : {}),
      ...(usual.noHistory ? { history: [] } : {})
    }))
    fc.assert(
      fc.property(job, (j) => {
        expect(JSON.stringify(storedJob(j))).toBe(JSON.stringify(spreadStoredJob(j)))
      }),
      { numRuns: 2_000 }
    )
  })
})
