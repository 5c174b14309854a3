import { describe, expect, it } from "@effect/vitest"
import { BrokerConfig } from "@osqueue/broker"
import { ConfigProvider, Effect, Option, Redacted } from "effect"

const read = (env: Record<string, string>) =>
  BrokerConfig.config.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

describe("BrokerConfig", () => {
  it.effect("defaults: all interfaces, port 8080, no token, 8 MiB bodies, the REST fast path on", () =>
    Effect.gen(function*() {
      const settings = yield* read({})
      expect(settings).toMatchObject({ host: "0.0.0.0", port: 8080, maxBodyBytes: 8 * 1024 * 1024 })
      expect(Option.isNone(settings.token)).toBe(true)
    }))

  it.effect("reads BROKER_HOST, BROKER_PORT, OSQUEUE_TOKEN, OSQUEUE_MAX_BODY_BYTES", () =>
    Effect.gen(function*() {
      const settings = yield* read({
        BROKER_HOST: "127.0.0.1",
        BROKER_PORT: "9090",
        OSQUEUE_TOKEN: "s3cret",
        OSQUEUE_MAX_BODY_BYTES: "1024"
      })
      expect(settings).toMatchObject({ host: "127.0.0.1", port: 9090, maxBodyBytes: 1024 })
      expect(Option.map(settings.token, Redacted.value)).toEqual(Option.some("s3cret"))
      expect(String(settings.token)).not.toContain("s3cret")
    }))

  it.effect("an empty OSQUEUE_TOKEN means no auth; a bad size is refused", () =>
    Effect.gen(function*() {
      expect(Option.isNone((yield* read({ OSQUEUE_TOKEN: "" })).token)).toBe(true)
      const error = yield* read({ OSQUEUE_MAX_BODY_BYTES: "0" }).pipe(Effect.flip)
      expect(String(error)).toContain("OSQUEUE_MAX_BODY_BYTES must be positive")
    }))

  it.effect("timeouts: defaults that answer a stalled request within 10 s; OSQUEUE_*_TIMEOUT_MS set them, headers within the request's", () =>
    Effect.gen(function*() {
      expect(yield* read({})).toMatchObject({
        headersTimeoutMs: 5_000,
        requestTimeoutMs: 8_000,
        keepAliveTimeoutMs: 5_000
      })
      expect(
        yield* read({
          OSQUEUE_HEADERS_TIMEOUT_MS: "1000",
          OSQUEUE_REQUEST_TIMEOUT_MS: "60000",
          OSQUEUE_KEEP_ALIVE_TIMEOUT_MS: "2000"
        })
      ).toMatchObject({ headersTimeoutMs: 1_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 2_000 })
      expect(String(yield* read({ OSQUEUE_REQUEST_TIMEOUT_MS: "0" }).pipe(Effect.flip))).toContain(
        "positive number of milliseconds"
      )
      expect(String(yield* read({ OSQUEUE_HEADERS_TIMEOUT_MS: "9000" }).pipe(Effect.flip))).toContain(
        "must not be longer than"
      )
    }))

  it.effect("OSQUEUE_ALLOWED_ORIGINS: comma-separated origins or *, each checked", () =>
    Effect.gen(function*() {
      expect((yield* read({})).allowedOrigins).toEqual([])
      expect(
        (yield* read({
          OSQUEUE_ALLOWED_ORIGINS: " https://App.example.com , http://localhost:5173/,https://x.example:443"
        })).allowedOrigins
      )
        .toEqual(["https://app.example.com", "http://localhost:5173", "https://x.example"])
      expect((yield* read({ OSQUEUE_ALLOWED_ORIGINS: "*" })).allowedOrigins).toEqual(["*"])
      for (const bad of ["app.example.com", "https://app.example.com/path", "ftp://x.example", "null"]) {
        const error = yield* read({ OSQUEUE_ALLOWED_ORIGINS: bad }).pipe(Effect.flip)
        expect(String(error), bad).toContain("is not an origin")
      }
    }))
})
