/**
 * A few helpers to build DOM without a framework: `h` makes an element from a tag, attributes
 * (`on…` functions become listeners) and children; views build their parts once and replace
 * only what changes.
 */
import { timeZone } from "./config.js"

type Child = Node | string | number | null | undefined | false
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener | ((event: never) => void)>

export const h = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: ReadonlyArray<Child | ReadonlyArray<Child>>
): HTMLElementTagNameMap[K] => {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue
    if (typeof value === "function") element.addEventListener(name.slice(2).toLowerCase(), value as EventListener)
    else if (value === true) element.setAttribute(name, "")
    else element.setAttribute(name, String(value))
  }
  append(element, children)
  return element
}

const append = (parent: Node, children: ReadonlyArray<Child | ReadonlyArray<Child>>): void => {
  for (const child of children) {
    if (Array.isArray(child)) append(parent, child)
    else if (child instanceof Node) parent.appendChild(child)
    else if (child !== null && child !== undefined && child !== false) {
      parent.appendChild(document.createTextNode(String(child)))
    }
  }
}

/** Replaces the element's children. */
export const replace = (parent: Element, ...children: ReadonlyArray<Child | ReadonlyArray<Child>>): void => {
  parent.replaceChildren()
  append(parent, children)
}

/** "3 s ago", "in 2 min": times are the leader's clock, compared with ours (close enough to read). */
export const relative = (at: number, now = Date.now()): string => {
  const seconds = Math.round((at - now) / 1000)
  const abs = Math.abs(seconds)
  const text = abs < 1 ? "now" : abs < 60 ? `${abs} s` : abs < 3600 ? `${Math.round(abs / 60)} min` : abs < 86_400
    ? `${Math.round(abs / 3600)} h`
    : `${Math.round(abs / 86_400)} d`
  return text === "now" ? text : seconds < 0 ? `${text} ago` : `in ${text}`
}

/** 850 ms, 4.2 s, 3 min 5 s, 2 h 10 min: how long something took. */
export const duration = (ms: number): string => {
  if (ms < 1_000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1_000).toFixed(ms < 10_000 ? 1 : 0)} s`
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1_000)} s`
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`
}

/** 13:05:09 in the page's time zone (`timeZone`): activity rows, submitted and handled jobs. */
export const clock = (at: number): string => dateTime(at).slice(11, 19)

const pad = (n: number) => String(n).padStart(2, "0")

/** 2026-12-05 13:05:09Z (UTC) or 2026-12-05 14:05:09 (local): every time on every page, in one zone. */
export const dateTime = (at: number): string => {
  if (timeZone.value === "utc") return new Date(at).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z")
  const d = new Date(at)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${
    pad(d.getSeconds())
  }`
}

export const json = (value: unknown): string => JSON.stringify(value, null, 2) ?? "undefined"

/** A state's badge; the class picks its colour. */
export const badge = (text: string, kind: string = text): HTMLSpanElement =>
  h("span", { class: `badge badge-${kind}` }, text)

export const field = (label: string, control: HTMLElement, hint?: string): HTMLLabelElement =>
  h(
    "label",
    { class: "field" },
    h("span", { class: "field-label" }, label),
    control,
    hint === undefined ? null : h("small", {}, hint)
  )
