/**
 * Property test: `splitArray` finds the elements of one array in an object exactly as a parse of
 * the whole document does, whatever the strings hold (quotes, backslashes, brackets, commas,
 * non-ASCII) and however the document is spaced; bytes laid out otherwise give undefined.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { elementText, splitArray } from "../src/JsonElements.js"

const tricky = fc.oneof(
  fc.string(),
  fc.constantFrom("\"", "\\", "\\\"", "[", "]", "{", "}", ",", "\"jobs\":[", "é ✓ 𝄞", "\\\\\"")
)
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    tricky,
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(tricky, tie("value"), { maxKeys: 3 })
  )
})).value

/** JSON.stringify with random whitespace around structural bytes (a reformatted document). */
const spaced = (json: string, seed: number): string => {
  let out = ""
  let inString = false
  let n = seed
  for (let i = 0; i < json.length; i++) {
    const c = json[i]!
    out += c
    if (inString) {
      if (c === "\\") out += json[++i]!
      else if (c === "\"") inString = false
      continue
    }
    if (c === "\"") inString = true
    else if ("[]{},:".includes(c)) {
      n = (n * 1103515245 + 12345) & 0x7fffffff
      out += ["", " ", "\n  ", "\t"][n % 4]
    }
  }
  return out
}

describe("splitArray", () => {
  it("gives each element and the header as a parse of the whole does", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string().filter((k) => k !== "jobs"), value, { maxKeys: 3 }),
        fc.array(value, { maxLength: 6 }),
        fc.dictionary(fc.string().filter((k) => k !== "jobs"), value, { maxKeys: 2 }),
        fc.nat(),
        fc.boolean(),
        (before, jobs, after, seed, pretty) => {
          const whole = { ...before, jobs, ...after }
          const text = pretty ? spaced(JSON.stringify(whole), seed) : JSON.stringify(whole)
          const split = splitArray(Buffer.from(text), "jobs")
          expect(split).toBeDefined()
          expect(split!.elements.map((e) => JSON.parse(elementText(e)))).toEqual(jobs)
          expect(JSON.parse(split!.header)).toEqual({ ...whole, jobs: [] })
          // Every element reads as a job's cached bytes do: a comma, then the JSON.
          for (const e of split!.elements) expect(e[0]).toBe(0x2c)
          // Joined back the way a checkpoint writes them, they are the array again.
          const joined = `[${split!.elements.map((e) => Buffer.from(e).toString("utf8")).join("").slice(1)}]`
          expect(JSON.parse(joined)).toEqual(jobs)
        }
      ),
      { numRuns: 500 }
    )
  })

  it("gives undefined when the array is missing, named twice or not an array", () => {
    for (
      const text of [
        `{"format":3}`,
        `{"jobs":[1],"jobs":[2]}`,
        `{"jobs":{"a":1}}`,
        `{"jobs":"[1,2]"}`,
        `{"a":{"jobs":[1]}}`,
        `[{"jobs":[1]}]`,
        `{"jobs":[1,2}`,
        `{"jobs":[1,"2]}`
      ]
    ) {
      expect(splitArray(Buffer.from(text), "jobs"), text).toBeUndefined()
    }
  })

  it("leaves element errors to the element's parse", () => {
    const split = splitArray(Buffer.from(`{"jobs":[1,,2]}`), "jobs")
    expect(split?.elements.length).toBe(3)
    expect(() => JSON.parse(elementText(split!.elements[1]!))).toThrow()
  })
})
