import type { JobContext } from "@osqueue/worker"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/** The demo job types that `osqueue produce` enqueues and `osqueue worker` runs by default. */
export const demoTypes = ["email", "thumbnail", "report"] as const

export const demoPayload = (type: string, n: number): unknown => {
  switch (type) {
    case "email":
      return { to: `user${n}@example.com`, subject: `Hello #${n}` }
    case "thumbnail":
      return { image: `photos/${n}.jpg`, width: 256 }
    default:
      return { report: `daily-${n}`, rows: n % 1000 }
  }
}

export interface DemoWork {
  /** Average time a demo job takes. */
  readonly workMs: number
  /** Share of attempts that fail (they are retried, then dead-lettered). */
  readonly failRate: number
}

/** A handler per demo type: works for a while, reports progress, fails at the given rate. */
export const demoHandlers = (work: DemoWork) => {
  const run = (_payload: unknown, ctx: JobContext) =>
    Effect.gen(function*() {
      const total = Math.max(1, Math.round(work.workMs * (0.5 + Math.random())))
      for (let step = 1; step <= 4; step++) {
        yield* Effect.sleep(Duration.millis(total / 4))
        if (step < 4) yield* ctx.progress({ percent: step * 25 })
      }
      if (Math.random() < work.failRate) return yield* Effect.fail(new Error(`demo failure on attempt ${ctx.attempt}`))
      return { tookMs: total }
    })
  return Object.fromEntries(demoTypes.map((type) => [type, run]))
}
