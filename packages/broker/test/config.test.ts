import { describe, expect, it } from "@effect/vitest"
import { BrokerConfig } from "@osqueue/broker"
import { ConfigProvider, Effect, Option, Redacted } from "effect"

const read = (env: Record<string, string>) =>
  BrokerConfig.config.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

describe("BrokerConfig", () => {
  it.effect("defaults: all interfaces, port 8080, no token, 8 MiB bodies, the REST fast path on", () =>
    Effect.gen(function*() {
      const settings = yield* read({})
      expect(settings).toMatchObject({ host: "0.0.0.0", port: 8080, maxBodyBytes: 8 * 1024 * 1024, fastRest: true })
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

  it.effect("OSQUEUE_FAST_REST=false sends every REST request through HttpApi", () =>
    Effect.gen(function*() {
      expect((yield* read({ OSQUEUE_FAST_REST: "false" })).fastRest).toBe(false)
    }))
})
