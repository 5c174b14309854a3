/**
 * A list the broker answers only when asked (no event carries it: schedules, workers). While its
 * view is shown, it is read when jobs change (at most once a second) and every 5 s, and drawn
 * again with the last answer when the time zone changes.
 */
import type { ClientError, OsqueueClientShape } from "@osqueue/client"
import type { Effect } from "effect"
import type { App } from "../app.js"
import { timeZone } from "../config.js"
import { throttle } from "../signal.js"

const refreshEveryMs = 5_000

export interface Polled {
  /** Reads the list now (after a change this page made) and draws it if the view is still shown. */
  readonly load: () => Promise<void>
  readonly show: () => void
  readonly hide: () => void
}

export const polled = <A>(
  app: App,
  read: (client: OsqueueClientShape) => Effect.Effect<A, ClientError>,
  render: (value: A) => void
): Polled => {
  let visible = false
  let latest: { readonly value: A } | undefined
  let timer: ReturnType<typeof setInterval> | undefined

  const draw = () => {
    if (latest !== undefined) render(latest.value)
  }
  const load = async () => {
    const result = await app.act(read)
    if (result === undefined || !visible) return
    latest = { value: result }
    draw()
  }
  const reload = throttle(1_000, () => void (visible && load()))
  app.model.changed.subscribe(reload)
  timeZone.subscribe(draw)

  return {
    load,
    show: () => {
      visible = true
      void load()
      clearInterval(timer)
      timer = setInterval(reload, refreshEveryMs)
    },
    hide: () => {
      visible = false
      clearInterval(timer)
    }
  }
}
