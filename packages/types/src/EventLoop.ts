/**
 * The turn of the event loop that the broker's commit loop, the broker's and the client's call
 * gathering and the worker's claim loop wait for, so that what is already on its way joins what
 * is waiting (docs/architecture.md, "Event-loop turns", says how many turns each waits and why).
 * It lives here because this is the one package all of them depend on. Browsers have no
 * `setImmediate` (the dashboard runs a client and a worker in the page): there it is the next
 * timer turn.
 */
import * as Effect from "effect/Effect"

/** Runs `f` once the event loop has handled the I/O that is ready now; returns a cancel. */
export const afterIo: (f: () => void) => () => void = typeof setImmediate === "function"
  ? (f) => {
    const handle = setImmediate(f)
    return () => clearImmediate(handle)
  }
  : (f) => {
    const handle = setTimeout(f, 0)
    return () => clearTimeout(handle)
  }

/** Resumes once the event loop has handled the I/O that is ready now. */
export const nextTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const cancel = afterIo(() => resume(Effect.void))
  return Effect.sync(cancel)
})
