/**
 * A small stand-in for the Google Cloud Storage JSON API, for tests only (never shipped).
 *
 * Why it exists: no GCS server that honours preconditions installs on these machines (the Firebase
 * emulator accepts `ifGenerationMatch` and ignores it), and a CAS test against a server that ignores
 * preconditions passes with broken locking. This one checks generations atomically: the check and
 * the write happen in one synchronous step of the event loop, after the whole body has arrived.
 *
 * It covers what @google-cloud/storage 7 sends for the calls GcsStore makes, under both base paths
 * the client uses (`/storage/v1/...` with `apiEndpoint`, `/...` with STORAGE_EMULATOR_HOST):
 *   POST   /upload/storage/v1/b/:bucket/o?uploadType=multipart|media&name=...   (+ preconditions)
 *   GET    /b/:bucket/o/:object[?generation=N]           metadata
 *   GET    /b/:bucket/o/:object?alt=media[&generation=N]  bytes (x-goog-hash, x-goog-generation)
 *   DELETE /b/:bucket/o/:object[?ifGenerationMatch=N]
 *   GET    /b/:bucket/o?prefix=&pageToken=&maxResults=&delimiter=
 *   POST   /b?project=   GET /b/:bucket                 (bucket create / metadata)
 * Preconditions: ifGenerationMatch (0 = must not exist), ifGenerationNotMatch, ifMetagenerationMatch,
 * ifMetagenerationNotMatch. Like a bucket without versioning, only the live generation is kept.
 * Resumable uploads are refused with 501: GcsStore uploads with `resumable: false`.
 *
 * Faults (for ambiguous outcomes) and hooks are injected per request, see `inject`.
 */
import { CRC32C } from "@google-cloud/storage"
import { createHash } from "node:crypto"
import * as http from "node:http"
import type { AddressInfo, Socket } from "node:net"

interface StoredObject {
  readonly name: string
  readonly bytes: Buffer
  readonly generation: string
  readonly metageneration: string
  readonly contentType: string
  readonly metadata: Record<string, string>
  readonly md5Hash: string
  readonly crc32c: string
  readonly created: string
}

export interface GcsRequest {
  readonly method: string
  /** Path without the optional /storage/v1 prefix, e.g. /b/bkt/o/queue.json */
  readonly path: string
  readonly query: Readonly<Record<string, string>>
}

export type GcsFault =
  /** Answer with `status` without doing anything. */
  | { readonly kind: "respond"; readonly status: number; readonly reason?: string }
  /** Do the request (a write lands), then answer `status` instead. */
  | { readonly kind: "apply-then-respond"; readonly status: number }
  /** Do the request, then close the connection without an answer. */
  | { readonly kind: "apply-then-reset" }
  /** Do the request, then answer only after `delayMs`. */
  | { readonly kind: "apply-then-delay"; readonly delayMs: number }
  /** Run `action` (e.g. change the object) before the request is handled normally. */
  | { readonly kind: "before"; readonly action: () => void }

export type GcsMatcher = (request: GcsRequest) => boolean

export interface GcsStandIn {
  /** Give this to `new Storage({ apiEndpoint })`. */
  readonly url: string
  readonly requests: Array<GcsRequest>
  readonly createBucket: (name: string) => void
  /** The next request that `match`es (any when omitted) meets `fault`. */
  readonly inject: (fault: GcsFault, match?: GcsMatcher) => void
  /** Writes an object directly, as another client would (returns its generation). */
  readonly putObject: (bucket: string, name: string, bytes: Uint8Array) => string
  readonly objectNames: (bucket: string) => ReadonlyArray<string>
  readonly close: () => Promise<void>
}

export interface GcsStandInOptions {
  readonly buckets?: ReadonlyArray<string>
  readonly port?: number
  /** List page size when the client asks for none (GCS: 1000); small values exercise paging. */
  readonly pageSize?: number
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly reason: string) {
    super(message)
  }
}

const preconditionFailed = () =>
  new HttpError(412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet")

const md5Of = (bytes: Buffer) => createHash("md5").update(bytes).digest("base64")
const crc32cOf = (bytes: Buffer) => {
  const crc = new CRC32C()
  crc.update(bytes)
  return crc.toString()
}

/** Splits a multipart/related body into its parts (headers lowercased, body bytes). */
const parseMultipart = (body: Buffer, contentType: string) => {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1]
  if (boundary === undefined) throw new HttpError(400, "multipart upload without a boundary", "invalid")
  const delimiter = Buffer.from(`--${boundary}`)
  const parts: Array<{ headers: Record<string, string>; body: Buffer }> = []
  let start = body.indexOf(delimiter)
  while (start >= 0) {
    const after = start + delimiter.length
    if (body.subarray(after, after + 2).toString() === "--") break
    const next = body.indexOf(delimiter, after)
    if (next < 0) break
    // each part: CRLF headers CRLF CRLF body CRLF
    const part = body.subarray(after + 2, next - 2)
    const split = part.indexOf("\r\n\r\n")
    const headers: Record<string, string> = {}
    for (const line of part.subarray(0, split).toString("utf8").split("\r\n")) {
      const colon = line.indexOf(":")
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    parts.push({ headers, body: part.subarray(split + 4) })
    start = next
  }
  return parts
}

export const startGcsServer = async (options: GcsStandInOptions = {}): Promise<GcsStandIn> => {
  const buckets = new Map<string, Map<string, StoredObject>>()
  for (const name of options.buckets ?? []) buckets.set(name, new Map())
  const faults: Array<{ fault: GcsFault; match: GcsMatcher | undefined }> = []
  const requests: Array<GcsRequest> = []
  const sockets = new Set<Socket>()
  const pageSize = options.pageSize ?? 1000
  // GCS generations are microsecond timestamps; strictly increasing across the server here.
  let lastGeneration = BigInt(Date.now()) * 1000n
  let baseUrl = ""

  const nextGeneration = () => {
    const now = BigInt(Date.now()) * 1000n
    lastGeneration = now > lastGeneration ? now : lastGeneration + 1n
    return lastGeneration.toString()
  }

  const bucketOf = (name: string) => {
    const bucket = buckets.get(name)
    if (bucket === undefined) throw new HttpError(404, "The specified bucket does not exist.", "notFound")
    return bucket
  }

  const resource = (bucket: string, o: StoredObject) => ({
    kind: "storage#object",
    id: `${bucket}/${o.name}/${o.generation}`,
    selfLink: `${baseUrl}/storage/v1/b/${bucket}/o/${encodeURIComponent(o.name)}`,
    mediaLink: `${baseUrl}/download/storage/v1/b/${bucket}/o/${
      encodeURIComponent(o.name)
    }?generation=${o.generation}&alt=media`,
    name: o.name,
    bucket,
    generation: o.generation,
    metageneration: o.metageneration,
    contentType: o.contentType,
    storageClass: "STANDARD",
    size: String(o.bytes.length),
    md5Hash: o.md5Hash,
    crc32c: o.crc32c,
    etag: Buffer.from(`${o.generation}/${o.metageneration}`).toString("base64"),
    timeCreated: o.created,
    updated: o.created,
    ...(Object.keys(o.metadata).length > 0 ? { metadata: o.metadata } : {})
  })

  const checkPreconditions = (query: Record<string, string>, current: StoredObject | undefined) => {
    const { ifGenerationMatch, ifGenerationNotMatch, ifMetagenerationMatch, ifMetagenerationNotMatch } = query
    if (ifGenerationMatch !== undefined) {
      const holds = ifGenerationMatch === "0" ? current === undefined : current?.generation === ifGenerationMatch
      if (!holds) throw preconditionFailed()
    }
    if (ifGenerationNotMatch !== undefined) {
      const holds = ifGenerationNotMatch === "0" ? current !== undefined : current?.generation !== ifGenerationNotMatch
      if (!holds) throw preconditionFailed()
    }
    if (ifMetagenerationMatch !== undefined && current?.metageneration !== ifMetagenerationMatch) {
      throw preconditionFailed()
    }
    if (ifMetagenerationNotMatch !== undefined && current?.metageneration === ifMetagenerationNotMatch) {
      throw preconditionFailed()
    }
  }

  /** The object at the requested generation (live one when none is asked for), or 404. */
  const lookup = (bucketName: string, name: string, query: Record<string, string>) => {
    const object = bucketOf(bucketName).get(name)
    if (object === undefined || (query.generation !== undefined && query.generation !== object.generation)) {
      throw new HttpError(404, `No such object: ${bucketName}/${name}`, "notFound")
    }
    return object
  }

  // The atomic step: no await between reading `current` and storing the new object.
  const write = (
    bucketName: string,
    name: string,
    bytes: Buffer,
    resourceIn: Record<string, unknown>,
    query: Record<string, string>
  ) => {
    const bucket = bucketOf(bucketName)
    const md5Hash = md5Of(bytes)
    const crc32c = crc32cOf(bytes)
    if (typeof resourceIn.md5Hash === "string" && resourceIn.md5Hash !== md5Hash) {
      throw new HttpError(
        400,
        `Provided MD5 hash "${resourceIn.md5Hash}" doesn't match calculated MD5 hash "${md5Hash}".`,
        "invalid"
      )
    }
    if (typeof resourceIn.crc32c === "string" && resourceIn.crc32c !== crc32c) {
      throw new HttpError(
        400,
        `Provided CRC32C "${resourceIn.crc32c}" doesn't match calculated CRC32C "${crc32c}".`,
        "invalid"
      )
    }
    checkPreconditions(query, bucket.get(name))
    const metadata: Record<string, string> = {}
    if (typeof resourceIn.metadata === "object" && resourceIn.metadata !== null) {
      for (const [k, v] of Object.entries(resourceIn.metadata)) {
        if (v !== null && v !== undefined) metadata[k] = String(v)
      }
    }
    const object: StoredObject = {
      name,
      bytes,
      generation: nextGeneration(),
      metageneration: "1",
      contentType: typeof resourceIn.contentType === "string" ? resourceIn.contentType : "application/octet-stream",
      metadata,
      md5Hash,
      crc32c,
      created: new Date().toISOString()
    }
    bucket.set(name, object)
    return resource(bucketName, object)
  }

  type Answer =
    | { readonly json: unknown; readonly status?: number }
    | { readonly media: StoredObject }
    | { readonly empty: number }

  const handle = (
    method: string,
    path: string,
    query: Record<string, string>,
    headers: http.IncomingHttpHeaders,
    body: Buffer
  ): Answer => {
    let m: RegExpExecArray | null
    if (method === "POST" && (m = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(path))) {
      const bucketName = decodeURIComponent(m[1] ?? "")
      const uploadType = query.uploadType ?? "media"
      if (uploadType === "resumable") {
        throw new HttpError(
          501,
          "resumable uploads are not supported by this stand-in (GcsStore uses resumable: false)",
          "notImplemented"
        )
      }
      if (uploadType === "multipart") {
        const parts = parseMultipart(body, headers["content-type"] ?? "")
        const [meta, media] = parts
        if (meta === undefined || media === undefined) {
          throw new HttpError(400, "multipart upload needs two parts", "invalid")
        }
        const resourceIn = JSON.parse(meta.body.toString("utf8")) as Record<string, unknown>
        const name = query.name ?? (typeof resourceIn.name === "string" ? resourceIn.name : undefined)
        if (name === undefined) throw new HttpError(400, "Required parameter: name", "required")
        if (resourceIn.contentType === undefined && media.headers["content-type"] !== undefined) {
          resourceIn.contentType = media.headers["content-type"]
        }
        return { json: write(bucketName, name, media.body, resourceIn, query) }
      }
      if (uploadType === "media") {
        if (query.name === undefined) throw new HttpError(400, "Required parameter: name", "required")
        return { json: write(bucketName, query.name, body, { contentType: headers["content-type"] }, query) }
      }
      throw new HttpError(400, `unknown uploadType ${uploadType}`, "invalid")
    }
    if ((m = /^\/b\/([^/]+)\/o\/(.+)$/.exec(path))) {
      const bucketName = decodeURIComponent(m[1] ?? "")
      const name = decodeURIComponent(m[2] ?? "")
      if (method === "GET") {
        const object = lookup(bucketName, name, query)
        checkPreconditions(query, object)
        return query.alt === "media" ? { media: object } : { json: resource(bucketName, object) }
      }
      if (method === "DELETE") {
        const object = lookup(bucketName, name, query)
        checkPreconditions(query, object)
        bucketOf(bucketName).delete(name)
        return { empty: 204 }
      }
    }
    if (method === "GET" && (m = /^\/b\/([^/]+)\/o$/.exec(path))) {
      const bucketName = decodeURIComponent(m[1] ?? "")
      const prefix = query.prefix ?? ""
      const delimiter = query.delimiter
      const max = Math.min(Number(query.maxResults ?? pageSize) || pageSize, pageSize)
      const names = [...bucketOf(bucketName).keys()].filter((n) => n.startsWith(prefix)).sort()
      const items: Array<unknown> = []
      const prefixes = new Set<string>()
      let nextPageToken: string | undefined
      let last: string | undefined
      for (const n of names) {
        if (query.pageToken !== undefined && n <= Buffer.from(query.pageToken, "base64url").toString()) continue
        if (delimiter !== undefined) {
          const cut = n.indexOf(delimiter, prefix.length)
          if (cut >= 0) {
            prefixes.add(n.slice(0, cut + delimiter.length))
            last = n
            continue
          }
        }
        if (items.length === max) {
          nextPageToken = Buffer.from(last ?? "").toString("base64url")
          break
        }
        const object = bucketOf(bucketName).get(n)
        if (object !== undefined) items.push(resource(bucketName, object))
        last = n
      }
      return {
        json: {
          kind: "storage#objects",
          ...(items.length > 0 ? { items } : {}),
          ...(prefixes.size > 0 ? { prefixes: [...prefixes] } : {}),
          ...(nextPageToken !== undefined ? { nextPageToken } : {})
        }
      }
    }
    if (method === "POST" && path === "/b") {
      const { name } = JSON.parse(body.toString("utf8") || "{}") as { name?: string }
      if (name === undefined) throw new HttpError(400, "Required parameter: name", "required")
      if (buckets.has(name)) {
        throw new HttpError(
          409,
          "Your previous request to create the named bucket succeeded and you already own it.",
          "conflict"
        )
      }
      buckets.set(name, new Map())
      return { json: { kind: "storage#bucket", id: name, name } }
    }
    if (method === "GET" && (m = /^\/b\/([^/]+)$/.exec(path))) {
      const name = decodeURIComponent(m[1] ?? "")
      bucketOf(name)
      return { json: { kind: "storage#bucket", id: name, name } }
    }
    throw new HttpError(404, `stand-in: no route for ${method} ${path}`, "notFound")
  }

  const send = (res: http.ServerResponse, answer: Answer) => {
    if ("empty" in answer) {
      res.writeHead(answer.empty)
      res.end()
    } else if ("media" in answer) {
      const o = answer.media
      res.writeHead(200, {
        "content-type": o.contentType,
        "content-length": String(o.bytes.length),
        "x-goog-generation": o.generation,
        "x-goog-metageneration": o.metageneration,
        "x-goog-hash": `crc32c=${o.crc32c},md5=${o.md5Hash}`,
        "x-goog-stored-content-encoding": "identity",
        "x-goog-stored-content-length": String(o.bytes.length),
        ...Object.fromEntries(Object.entries(o.metadata).map(([k, v]) => [`x-goog-meta-${k}`, v]))
      })
      res.end(o.bytes)
    } else {
      const text = JSON.stringify(answer.json)
      res.writeHead(answer.status ?? 200, { "content-type": "application/json; charset=UTF-8" })
      res.end(text)
    }
  }

  const sendError = (res: http.ServerResponse, status: number, message: string, reason: string) => {
    res.writeHead(status, { "content-type": "application/json; charset=UTF-8" })
    res.end(JSON.stringify({ error: { code: status, message, errors: [{ message, domain: "global", reason }] } }))
  }

  const server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://stand-in")
      const path = url.pathname.startsWith("/storage/v1/") ? url.pathname.slice("/storage/v1".length) : url.pathname
      const query = Object.fromEntries(url.searchParams)
      const method = req.method ?? "GET"
      const request: GcsRequest = { method, path, query }
      requests.push(request)
      const index = faults.findIndex((f) => f.match === undefined || f.match(request))
      const fault = index >= 0 ? faults.splice(index, 1)[0]?.fault : undefined
      if (fault?.kind === "respond") {
        sendError(res, fault.status, `injected ${fault.status}`, fault.reason ?? "backendError")
        return
      }
      if (fault?.kind === "before") fault.action()
      let answer: Answer
      try {
        answer = handle(method, path, query, req.headers, Buffer.concat(chunks))
      } catch (e) {
        if (e instanceof HttpError) sendError(res, e.status, e.message, e.reason)
        else sendError(res, 500, String(e), "backendError")
        return
      }
      if (fault === undefined || fault.kind === "before") send(res, answer)
      else if (fault.kind === "apply-then-respond") {
        sendError(res, fault.status, `injected ${fault.status}`, "backendError")
      } else if (fault.kind === "apply-then-reset") req.socket.destroy()
      else setTimeout(() => req.socket.destroy(), fault.delayMs)
    })
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  return {
    url: baseUrl,
    requests,
    createBucket: (name) => void buckets.set(name, buckets.get(name) ?? new Map()),
    inject: (fault, match) => void faults.push({ fault, match }),
    putObject: (bucket, name, bytes) => {
      const created = write(bucket, name, Buffer.from(bytes), {}, {})
      return created.generation
    },
    objectNames: (bucket) => [...bucketOf(bucket).keys()].sort(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}
