/**
 * Tracing for the `osqueue` command (docs/tracing.md). With OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set, spans are exported over OTLP/HTTP by
 * `@effect/opentelemetry`, and jobs carry their trace from the producer through the broker to
 * the worker. Unset, the tracer is disabled: spans cost no ids, clocks or attributes, and jobs
 * carry no trace context.
 */
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

/**
 * An endpoint's URL, checked when the command starts: a typo should not silently export nothing.
 * Empty means unset, as the OpenTelemetry specification reads its variables.
 */
const httpUrl = (text: string): Either.Either<string, ConfigError.ConfigError> => {
  const url = URL.canParse(text) ? new URL(text) : undefined
  return text === "" || url?.protocol === "http:" || url?.protocol === "https:"
    ? Either.right(text)
    : Either.left(
      ConfigError.InvalidData(
        [],
        `it must be an http(s) URL, such as http://localhost:4318; got ${JSON.stringify(text)}`
      )
    )
}

/** `key=value,key=value`, values percent-encoded, as the OpenTelemetry specification writes OTLP headers. */
const parseHeaders = (text: string): Either.Either<Record<string, string>, string> => {
  const headers: Record<string, string> = {}
  for (const pair of text.split(",")) {
    if (pair.trim() === "") continue
    const at = pair.indexOf("=")
    const key = pair.slice(0, at).trim()
    if (at <= 0 || key === "") return Either.left("each header is key=value (comma-separated)")
    try {
      headers[key] = decodeURIComponent(pair.slice(at + 1).trim())
    } catch {
      return Either.left(`the value of ${key} is not percent-encoded text`)
    }
  }
  return Either.right(headers)
}

export const TracingConfig = Config.all({
  /** The collector's base URL: traces go to `<it>/v1/traces`. */
  endpoint: Config.string("OTEL_EXPORTER_OTLP_ENDPOINT").pipe(
    Config.mapOrFail(httpUrl),
    Config.option
  ),
  /** The traces URL itself; wins over `endpoint`. */
  tracesEndpoint: Config.string("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").pipe(
    Config.mapOrFail(httpUrl),
    Config.option
  ),
  protocol: Config.literal("http/protobuf", "http/json")("OTEL_EXPORTER_OTLP_PROTOCOL").pipe(
    Config.withDefault("http/protobuf" as const)
  ),
  /** Often an API key: the errors name the header, never its value. */
  headers: Config.string("OTEL_EXPORTER_OTLP_HEADERS").pipe(
    Config.mapOrFail((text) => Either.mapLeft(parseHeaders(text), (reason) => ConfigError.InvalidData([], reason))),
    Config.withDefault({})
  ),
  serviceName: Config.string("OTEL_SERVICE_NAME").pipe(Config.option)
})

/** Where spans go, or none: an empty variable counts as unset. */
const tracesUrl = (config: Config.Config.Success<typeof TracingConfig>): Option.Option<string> =>
  Option.orElse(
    Option.filter(config.tracesEndpoint, (url) => url !== ""),
    () =>
      Option.map(Option.filter(config.endpoint, (url) => url !== ""), (base) => `${base.replace(/\/+$/, "")}/v1/traces`)
  )

/**
 * The tracer of an `osqueue` process: OTLP export when an endpoint is set, else none at all.
 * `serviceName` is the resource's `service.name` unless OTEL_SERVICE_NAME names one.
 */
export const layer = (serviceName: string): Layer.Layer<never, ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(TracingConfig, (config) =>
    Option.match(tracesUrl(config), {
      onNone: () => Layer.setTracerEnabled(false),
      onSome: (url) =>
        OtlpTracer.layer({
          url,
          resource: { serviceName: Option.getOrElse(config.serviceName, () => serviceName) },
          headers: config.headers
        }).pipe(
          Layer.provide(
            config.protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf
          ),
          Layer.provide(FetchHttpClient.layer)
        )
    })))
