import * as Effect from "effect/Effect"

/**
 * Resumes once the event loop has handled what is ready now: `setImmediate` in Node, the next
 * timer turn in browsers (the dashboard runs a worker in the page), which have none.
 */
export const nextTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const go = () => resume(Effect.void)
  if (typeof setImmediate === "function") {
    const handle = setImmediate(go)
    return Effect.sync(() => clearImmediate(handle))
  }
  const handle = setTimeout(go, 0)
  return Effect.sync(() => clearTimeout(handle))
})
