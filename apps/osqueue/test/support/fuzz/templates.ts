/**
 * Request bodies and paths as generated: JSON text with markers that are filled in only when the
 * request is sent. A marker stands for what is too big to hold for ten thousand requests at once
 * (a 2 MB string, 100,000 nested arrays), for what JSON.stringify cannot write (`1e400`, a raw
 * byte), or for what exists only at run time (a lease token a claim returned).
 */

/** `⟦kind:arg⟧` as a JSON string; `render` replaces the quoted string with what it stands for. */
const open = "\u27e6"
const close = "\u27e7"

export const marker = (kind: MarkerKind, arg: string | number): string => `${open}${kind}:${arg}${close}`

export type MarkerKind =
  /** A string of `n` characters (`"a…"`), cycling through a few scripts. */
  | "huge"
  /** `n` nested arrays (`[[…]]`). */
  | "deepArray"
  /** `n` nested objects (`{"a":{…}}`). */
  | "deepObject"
  /** The raw text after the colon, unquoted (a number JSON.stringify would not write). */
  | "raw"
  /** A live lease token from the pool (index modulo its size). */
  | "lease"
  /** The job id of that lease. */
  | "leaseJob"

export interface Lease {
  readonly jobId: string
  readonly token: string
}

/** Tokens claims returned during the run; generated requests name them by index. */
export class LeasePool {
  private readonly leases: Array<Lease> = []
  constructor(private readonly cap = 256) {}
  add(lease: Lease) {
    if (this.leases.length >= this.cap) this.leases.shift()
    this.leases.push(lease)
  }
  pick(n: number): Lease | undefined {
    return this.leases.length === 0 ? undefined : this.leases[n % this.leases.length]
  }
  get size() {
    return this.leases.length
  }
}

const hugeText = (n: number): string => {
  const unit = "abcdefghij-ÄÖÜ-日本語-🙂"
  return unit.repeat(Math.ceil(n / unit.length)).slice(0, n)
}

const expand = (kind: string, arg: string, leases: LeasePool, quoted: boolean): string => {
  const n = Number(arg)
  switch (kind) {
    case "huge":
      return quoted ? JSON.stringify(hugeText(n)) : encodeURIComponent(hugeText(n))
    case "deepArray":
      return "[".repeat(n) + "]".repeat(n)
    case "deepObject":
      return "{\"a\":".repeat(n) + "1" + "}".repeat(n)
    case "raw":
      return arg
    case "lease":
    case "leaseJob": {
      const lease = leases.pick(n)
      // no claim has answered yet: a well-formed token for a job that does not exist
      const value = kind === "lease" ? (lease?.token ?? "job-999999/1/1") : (lease?.jobId ?? "job-999999")
      return quoted ? JSON.stringify(value) : encodeURIComponent(value)
    }
    default:
      throw new Error(`unknown marker ${kind}`)
  }
}

const quotedMarker = new RegExp(`"${open}\\w+:[^${close}]*${close}"`, "g")
const bareMarker = new RegExp(`${open}(\\w+):([^${close}]*)${close}`, "g")

/** `template` with every marker filled in: quoted ones (in JSON) as JSON, bare ones (in paths) URL-encoded. */
export const render = (template: string, leases: LeasePool): string =>
  template
    .replace(quotedMarker, (quoted) => {
      // the marker went through JSON.stringify: its argument (a raw `"\ud800"`) is escaped in the text
      const inner = (JSON.parse(quoted) as string).slice(1, -1)
      const colon = inner.indexOf(":")
      return expand(inner.slice(0, colon), inner.slice(colon + 1), leases, true)
    })
    .replace(bareMarker, (_, kind: string, arg: string) => expand(kind, arg, leases, false))

/** How the rendered text becomes bytes: UTF-8 unless a mutation says otherwise. */
export type Encoding =
  | { readonly _tag: "utf8" }
  | { readonly _tag: "utf16le" }
  | { readonly _tag: "bom" }
  /** One byte per character (for binary frames such as a close code). */
  | { readonly _tag: "latin1" }
  /** These bytes spliced in at this fraction of the text (invalid UTF-8, NUL, …). */
  | { readonly _tag: "splice"; readonly at: number; readonly bytes: ReadonlyArray<number> }

export const utf8: Encoding = { _tag: "utf8" }

export const encode = (text: string, encoding: Encoding): Buffer => {
  switch (encoding._tag) {
    case "utf8":
      return Buffer.from(text, "utf8")
    case "utf16le":
      return Buffer.from(text, "utf16le")
    case "latin1":
      return Buffer.from(text, "latin1")
    case "bom":
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, "utf8")])
    case "splice": {
      const bytes = Buffer.from(text, "utf8")
      const at = Math.floor(bytes.length * encoding.at)
      return Buffer.concat([bytes.subarray(0, at), Buffer.from(encoding.bytes), bytes.subarray(at)])
    }
  }
}

/** `text` cut for printing: its start and end, with the length between. */
export const truncate = (text: string, max = 600): string =>
  text.length <= max ? text : `${text.slice(0, max * 0.7)}…(${text.length} chars)…${text.slice(-max * 0.2)}`
