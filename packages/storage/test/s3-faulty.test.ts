// FaultyStore over the S3 layer on a real S3 server: writes that land but report OutcomeUnknown,
// and writes that are lost but report the same. Reading back (what Cas does to resolve an unknown
// outcome) must tell the two apart. The Cas-level version of this test lives with Cas in
// @osqueue/core, which depends on this package.
import { expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as FaultyStore from "../src/FaultyStore.js"
import { ObjectStore } from "../src/ObjectStore.js"
import * as S3Store from "../src/S3Store.js"
import { describeS3, s3Config } from "./support/s3.js"

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array) => new TextDecoder().decode(data)

/** "commit 1" straight to S3, "commit 2" over it through the faults, then what S3 holds. */
const secondCommitThrough = (faults: FaultyStore.FaultOptions) => {
  const direct = S3Store.layer(s3Config())
  const faulty = FaultyStore.layer(faults).pipe(Layer.provide(direct))
  return Effect.gen(function*() {
    const v1 = yield* Effect.flatMap(ObjectStore, (s) => s.put("queue.json", bytes("commit 1"), { ifAbsent: true }))
      .pipe(
        Effect.provide(direct)
      )
    const error = yield* Effect.flatMap(
      ObjectStore,
      (s) => Effect.flip(s.put("queue.json", bytes("commit 2"), { ifMatch: v1 }))
    ).pipe(
      Effect.provide(faulty)
    )
    const back = yield* Effect.flatMap(ObjectStore, (s) => s.get("queue.json")).pipe(Effect.provide(direct))
    return { v1, error, back }
  })
}

describeS3("FaultyStore over S3Store", () => {
  it.live("an ambiguous write lands on S3 and reports OutcomeUnknown; reading back shows it landed", () =>
    Effect.gen(function*() {
      const { back, error, v1 } = yield* secondCommitThrough({ ambiguousWriteRate: 1 })
      expect(error._tag).toBe("OutcomeUnknown")
      expect(back.pipe(Option.map((o) => text(o.bytes)))).toEqual(Option.some("commit 2"))
      expect(back.pipe(Option.map((o) => o.version))).not.toEqual(Option.some(v1))
    }))

  it.live("a lost write does not reach S3 and reports OutcomeUnknown; reading back shows the old state", () =>
    Effect.gen(function*() {
      const { back, error, v1 } = yield* secondCommitThrough({ lostWriteRate: 1 })
      expect(error._tag).toBe("OutcomeUnknown")
      expect(back.pipe(Option.map((o) => [text(o.bytes), o.version]))).toEqual(Option.some(["commit 1", v1]))
    }))
})
