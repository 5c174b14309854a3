/**
 * An OTLP/HTTP trace receiver for tests: `POST /v1/traces` with an `ExportTraceServiceRequest`
 * in protobuf (`application/x-protobuf`, the exporters' default) or JSON (`application/json`),
 * as a collector takes it. It keeps the spans it was sent, each with its resource's
 * `service.name`. The protobuf decoder reads the fields of the OTLP trace protos that the tests
 * look at and skips the others.
 */
import { createServer, type Server } from "node:http"

export interface ReceivedSpan {
  readonly service: string
  readonly traceId: string
  readonly spanId: string
  /** Absent for a root span. */
  readonly parentSpanId: string | undefined
  readonly name: string
  /** OTLP's `SpanKind`: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number
  readonly attributes: Readonly<Record<string, unknown>>
}

export const SpanKind = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const

// --- protobuf, the little of it OTLP traces need -------------------------------------------

interface Field {
  readonly number: number
  /** varint and fixed values as bigint; length-delimited ones as bytes. */
  readonly value: bigint | Uint8Array
}

const fieldsOf = (bytes: Uint8Array): Array<Field> => {
  const fields: Array<Field> = []
  let at = 0
  const varint = (): bigint => {
    let result = 0n
    let shift = 0n
    for (;;) {
      const byte = bytes[at++]
      if (byte === undefined) throw new Error("protobuf: truncated varint")
      result |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) return result
      shift += 7n
    }
  }
  const fixed = (size: number): bigint => {
    let result = 0n
    for (let i = size - 1; i >= 0; i--) result = (result << 8n) | BigInt(bytes[at + i]!)
    at += size
    return result
  }
  while (at < bytes.length) {
    const key = varint()
    const number = Number(key >> 3n)
    switch (Number(key & 7n)) {
      case 0:
        fields.push({ number, value: varint() })
        break
      case 1:
        fields.push({ number, value: fixed(8) })
        break
      case 2: {
        const length = Number(varint())
        fields.push({ number, value: bytes.subarray(at, at + length) })
        at += length
        break
      }
      case 5:
        fields.push({ number, value: fixed(4) })
        break
      default:
        throw new Error(`protobuf: wire type ${key & 7n} is not used by OTLP`)
    }
  }
  return fields
}

const text = (value: bigint | Uint8Array) => new TextDecoder().decode(value as Uint8Array)
const hex = (value: bigint | Uint8Array) => Buffer.from(value as Uint8Array).toString("hex")
const messages = (fields: ReadonlyArray<Field>, number: number) =>
  fields.filter((f) => f.number === number).map((f) => fieldsOf(f.value as Uint8Array))

/** `AnyValue`: string 1, bool 2, int 3, double 4, array 5 (of AnyValue, field 1 of ArrayValue). */
const anyValue = (fields: ReadonlyArray<Field>): unknown => {
  const field = fields[0]
  if (field === undefined) return undefined
  switch (field.number) {
    case 1:
      return text(field.value)
    case 2:
      return field.value === 1n
    case 3:
      return Number(BigInt.asIntN(64, field.value as bigint))
    case 4: {
      const view = new DataView(new ArrayBuffer(8))
      view.setBigUint64(0, field.value as bigint, true)
      return view.getFloat64(0, true)
    }
    case 5:
      return messages(fieldsOf(field.value as Uint8Array), 1).map(anyValue)
    default:
      return undefined
  }
}

/** `KeyValue`: key 1, value 2. */
const attributesOf = (keyValues: ReadonlyArray<ReadonlyArray<Field>>): Record<string, unknown> =>
  Object.fromEntries(keyValues.map((kv) => [
    text(kv.find((f) => f.number === 1)!.value),
    anyValue(messages(kv, 2)[0] ?? [])
  ]))

/** `ExportTraceServiceRequest` → ResourceSpans 1 → (Resource 1 → attributes 1), ScopeSpans 2 → Span 2. */
const fromProtobuf = (body: Uint8Array): Array<ReceivedSpan> =>
  messages(fieldsOf(body), 1).flatMap((resourceSpans) => {
    const resource = attributesOf(messages(messages(resourceSpans, 1)[0] ?? [], 1))
    return messages(resourceSpans, 2).flatMap((scopeSpans) =>
      messages(scopeSpans, 2).map((span): ReceivedSpan => {
        const one = (number: number) => span.find((f) => f.number === number)?.value
        const parent = one(4)
        return {
          service: String(resource["service.name"]),
          traceId: hex(one(1)!),
          spanId: hex(one(2)!),
          parentSpanId: parent === undefined || (parent as Uint8Array).length === 0 ? undefined : hex(parent),
          name: text(one(5)!),
          kind: Number(one(6) ?? 0n),
          attributes: attributesOf(messages(span, 9))
        }
      })
    )
  })

// --- JSON ------------------------------------------------------------------------------------

interface JsonKeyValue {
  readonly key: string
  readonly value: Record<string, unknown>
}

const jsonValue = (value: Record<string, unknown>): unknown => {
  if ("stringValue" in value) return value.stringValue
  if ("boolValue" in value) return value.boolValue
  if ("intValue" in value) return Number(value.intValue)
  if ("doubleValue" in value) return value.doubleValue
  if ("arrayValue" in value) {
    return ((value.arrayValue as { values?: Array<Record<string, unknown>> }).values ?? []).map(jsonValue)
  }
  return undefined
}

const jsonAttributes = (attributes: ReadonlyArray<JsonKeyValue> | undefined) =>
  Object.fromEntries((attributes ?? []).map((kv) => [kv.key, jsonValue(kv.value)]))

const fromJson = (body: string): Array<ReceivedSpan> => {
  const request = JSON.parse(body) as {
    resourceSpans: Array<{
      resource: { attributes: Array<JsonKeyValue> }
      scopeSpans: Array<{
        spans: Array<
          {
            traceId: string
            spanId: string
            parentSpanId?: string
            name: string
            kind: number
            attributes?: Array<JsonKeyValue>
          }
        >
      }>
    }>
  }
  return request.resourceSpans.flatMap(({ resource, scopeSpans }) =>
    scopeSpans.flatMap(({ spans }) =>
      spans.map((span): ReceivedSpan => ({
        service: String(jsonAttributes(resource.attributes)["service.name"]),
        traceId: span.traceId,
        spanId: span.spanId,
        parentSpanId: span.parentSpanId === undefined || span.parentSpanId === "" ? undefined : span.parentSpanId,
        name: span.name,
        kind: span.kind,
        attributes: jsonAttributes(span.attributes)
      }))
    )
  )
}

// --- the receiver ----------------------------------------------------------------------------

export interface Receiver {
  /** The collector's base URL, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly url: string
  readonly spans: Array<ReceivedSpan>
  /** Content types of the exports received, in order. */
  readonly contentTypes: Array<string>
  readonly close: () => Promise<void>
}

export const receiver = (): Promise<Receiver> =>
  new Promise((resolve) => {
    const spans: Array<ReceivedSpan> = []
    const contentTypes: Array<string> = []
    const server: Server = createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        const contentType = request.headers["content-type"] ?? ""
        if (request.method !== "POST" || request.url !== "/v1/traces") {
          response.writeHead(404).end()
          return
        }
        const body = Buffer.concat(chunks)
        try {
          spans.push(
            ...(contentType.startsWith("application/json") ? fromJson(body.toString("utf8")) : fromProtobuf(body))
          )
          contentTypes.push(contentType)
          response.writeHead(200, { "content-type": "application/json" }).end("{}")
        } catch (error) {
          response.writeHead(400).end(String(error))
        }
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resolve({
        url: `http://127.0.0.1:${port}`,
        spans,
        contentTypes,
        close: () => new Promise((done) => server.close(() => done()))
      })
    })
  })
