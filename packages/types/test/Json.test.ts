import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { Json } from "../src/index.js"

/** Levels of arrays and objects in a value (recursive: only for the small values made here). */
const depthOf = (value: unknown): number =>
  typeof value !== "object" || value === null
    ? 0
    : 1 + Math.max(0, ...Object.values(value as Record<string, unknown>).map(depthOf))

describe("Json.textNestsDeeperThan", () => {
  it("agrees with the value's depth for any JSON, strings with brackets and escapes included", () => {
    const text = fc.string({ unit: fc.constantFrom("[", "]", "{", "}", "\"", "\\", "a", "\u00e9") })
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        text,
        fc.integer(),
        fc.constant(null),
        fc.array(tie("node"), { maxLength: 3 }),
        fc.dictionary(text, tie("node"), { maxKeys: 3 })
      )
    })).node
    fc.assert(
      fc.property(value, fc.integer({ min: 0, max: 8 }), (v, limit) => {
        expect(Json.textNestsDeeperThan(JSON.stringify(v), limit)).toBe(depthOf(v) > limit)
      }),
      { numRuns: 2_000 }
    )
  })

  it("stops at the first level too many of 100,000 nested arrays, without recursing", () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000)
    expect(Json.textNestsDeeperThan(deep, Json.defaultMaxJsonDepth)).toBe(true)
    expect(Json.textNestsDeeperThan(deep, 100_000)).toBe(false)
  })

  it("gives a character-by-character scan's verdict on any text, malformed JSON included", () => {
    /** The scan the strings' skip must agree with: a backslash in a string takes the next character. */
    const scan = (text: string, limit: number): boolean => {
      let depth = 0
      let inString = false
      for (let i = 0; i < text.length; i++) {
        const c = text[i]
        if (inString) {
          if (c === "\\") i++
          else if (c === "\"") inString = false
        } else if (c === "\"") inString = true
        else if (c === "[" || c === "{") {
          if (++depth > limit) return true
        } else if (c === "]" || c === "}") depth--
      }
      return false
    }
    const text = fc.string({ unit: fc.constantFrom("[", "]", "{", "}", "\"", "\\", "a", ":"), maxLength: 60 })
    fc.assert(
      fc.property(text, fc.integer({ min: 0, max: 6 }), (t, limit) => {
        expect(Json.textNestsDeeperThan(t, limit)).toBe(scan(t, limit))
      }),
      { numRuns: 20_000 }
    )
  })

  it("counts no bracket inside a string, however many", () => {
    expect(Json.textNestsDeeperThan(JSON.stringify({ a: "[[[[{{{{\\\"[[[" }), 1)).toBe(false)
  })
})
