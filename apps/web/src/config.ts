/**
 * Where the dashboard's broker is and how to reach it. The page talks to the broker that served
 * it (its own origin); the Vite dev server proxies that origin to `VITE_BROKER_URL`. The
 * transport is `VITE_OSQUEUE_TRANSPORT` (`ws`, the default, or `http`), or `?transport=` in the
 * page's URL. The queue shown is `?queue=` in the page's URL (the header's picker sets it; none:
 * the default queue). The token lives in this tab's session storage only; the time zone the page
 * shows times in (local or UTC) in local storage.
 */
import type { Transport } from "./connection.js"
import { Signal } from "./signal.js"

const transports: ReadonlyArray<Transport> = ["ws", "http"]

const asTransport = (value: string | null | undefined): Transport | undefined =>
  transports.find((transport) => transport === value?.trim().toLowerCase())

export const brokerUrl: string = window.location.origin

export const transport: Transport = asTransport(new URLSearchParams(window.location.search).get("transport")) ??
  asTransport(import.meta.env.VITE_OSQUEUE_TRANSPORT) ?? "ws"

/** The queue this page shows (`?queue=`), undefined for the broker's default queue. */
export const queue: string | undefined = new URLSearchParams(window.location.search).get("queue")?.trim() || undefined

/** Shows `name` instead: the page loads again for it, so no view keeps another queue's data. */
export const showQueue = (name: string): void => {
  const params = new URLSearchParams(window.location.search)
  params.set("queue", name)
  window.location.search = params.toString()
}

const tokenKey = "osqueue.token"

export const savedToken = (): string | undefined => sessionStorage.getItem(tokenKey) ?? undefined

export const saveToken = (token: string | undefined): void =>
  token === undefined || token === "" ? sessionStorage.removeItem(tokenKey) : sessionStorage.setItem(tokenKey, token)

export type TimeZone = "local" | "utc"

const timeZoneKey = "osqueue.timeZone"

/** The zone every time on the page is shown in (the header's toggle), kept across visits. */
export const timeZone = new Signal<TimeZone>(localStorage.getItem(timeZoneKey) === "utc" ? "utc" : "local")
timeZone.subscribe((zone) => localStorage.setItem(timeZoneKey, zone))
