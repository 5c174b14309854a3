/**
 * A value decided once, by whichever comes first, and awaited by one fiber. The job's outcome
 * (its handler ended, its lease was lost, shutdown took it back) is one of these per job; a
 * `Deferred` would do, but building one copies a large prototype, a cost paid on every job.
 */
import * as Effect from "effect/Effect"

export interface FirstOf<A> {
  /** Decides the value unless it is decided already. */
  readonly decide: (value: A) => void
  /** The value, once decided. */
  readonly await: Effect.Effect<A>
}

export const firstOf = <A>(): FirstOf<A> => {
  let decided: { readonly value: A } | undefined
  let waiting: ((effect: Effect.Effect<A>) => void) | undefined
  return {
    decide: (value) => {
      if (decided !== undefined) return
      decided = { value }
      waiting?.(Effect.succeed(value))
      waiting = undefined
    },
    await: Effect.async<A>((resume) => {
      if (decided !== undefined) return resume(Effect.succeed(decided.value))
      waiting = resume
      return Effect.sync(() => {
        waiting = undefined
      })
    })
  }
}
