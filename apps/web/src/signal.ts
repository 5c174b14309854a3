/** A value that views subscribe to: the dashboard's whole state is a handful of these. */
export class Signal<A> {
  private readonly listeners = new Set<(value: A) => void>()

  constructor(private current: A) {}

  get value(): A {
    return this.current
  }

  set(value: A): void {
    this.current = value
    for (const listener of this.listeners) listener(value)
  }

  update(f: (value: A) => A): void {
    this.set(f(this.current))
  }

  /** Calls `listener` now and on every change; returns the unsubscribe. */
  subscribe(listener: (value: A) => void): () => void {
    this.listeners.add(listener)
    listener(this.current)
    return () => this.listeners.delete(listener)
  }
}

/** Runs `f` at most once per `ms`, the last call winning (a burst of events → one refresh). */
export const throttle = (ms: number, f: () => void): () => void => {
  let timer: ReturnType<typeof setTimeout> | undefined
  let last = 0
  return () => {
    if (timer !== undefined) return
    const wait = Math.max(0, last + ms - Date.now())
    timer = setTimeout(() => {
      timer = undefined
      last = Date.now()
      f()
    }, wait)
  }
}
