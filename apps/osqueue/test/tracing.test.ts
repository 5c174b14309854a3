/**
 * Tracing end to end (docs/tracing.md): an OTLP/HTTP receiver in this process, a real `osqueue
 * broker` process exporting to it (protobuf, the default), and a producer and a worker exporting
 * to it from here (JSON and protobuf). One trace must follow each job: the producer's enqueue →
 * the broker's enqueue span, until the commit is durable → the worker's span → the handler's.
 */
import { OsqueueClient } from "@osqueue/client"
import { type Job, JobTrace } from "@osqueue/types"
import { Worker } from "@osqueue/worker"
import { ConfigProvider, Effect, Layer } from "effect"
import { mkdtemp } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import * as Tracing from "../src/Tracing.js"
import { type ReceivedSpan, receiver, SpanKind } from "./support/otlp.js"
import { eventually, freePort, getJson, killAll, leading, osqueue } from "./support/processes.js"

afterEach(killAll)

/** `Tracing.layer` reading `env` instead of the process's environment. */
const tracingFrom = (serviceName: string, env: Record<string, string>) =>
  Tracing.layer(serviceName).pipe(
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
  )

const only = (spans: ReadonlyArray<ReceivedSpan>, what: string, predicate: (span: ReceivedSpan) => boolean) => {
  const found = spans.filter(predicate)
  expect(found.length, `exactly one ${what} among ${spans.map((s) => `${s.service}/${s.name}`).join(", ")}`).toBe(1)
  return found[0]!
}

describe("tracing", () => {
  it("one trace follows a job from the producer through the broker's commit to the worker's handler", async () => {
    const otlp = await receiver()
    try {
      const port = await freePort()
      const url = `http://127.0.0.1:${port}`
      const dir = await mkdtemp(join(tmpdir(), "osqueue-tracing-"))
      const broker = osqueue(["broker", "--port", String(port), "--host", "127.0.0.1", "--url", url, "--dir", dir], {
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url
      })
      await leading(url)

      // A producer with tracing on, inside a span of its own program; then a batch.
      const [produced, batch] = await Effect.runPromise(
        Effect.flatMap(OsqueueClient, (client) =>
          Effect.zip(
            client.enqueue("email", { to: "a@example.com" }).pipe(Effect.withSpan("checkout")),
            client.enqueueMany([{ type: "email", payload: { to: "c@example.com" } }, {
              type: "email",
              payload: { to: "d@example.com" }
            }])
          )).pipe(
            Effect.provide(OsqueueClient.layerHttp({ urls: url })),
            Effect.provide(
              tracingFrom("shop", { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" })
            )
          )
      )

      // A producer that traces on its own (no Effect): its traceparent is the parent of the broker's span.
      const external = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" }
      const rest = await fetch(`${url}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          type: "email",
          payload: { to: "b@example.com" },
          traceparent: `00-${external.traceId}-${external.spanId}-01`
        })
      })
      expect(rest.status).toBe(201)
      const fromRest = (await rest.json()) as Job

      // A traceparent that is not one is refused (400, naming the field) and creates nothing.
      const before = ((await getJson(`${url}/v1/stats`)) as { enqueuedTotal: number }).enqueuedTotal
      for (
        const traceparent of [
          "00-xyz",
          `00-${external.traceId.toUpperCase()}-${external.spanId}-01`,
          "x".repeat(10_000),
          42
        ]
      ) {
        const refused = await fetch(`${url}/v1/jobs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ type: "email", traceparent })
        })
        expect(refused.status).toBe(400)
        expect(await refused.text()).toContain("traceparent")
      }
      expect(((await getJson(`${url}/v1/stats`)) as { enqueuedTotal: number }).enqueuedTotal).toBe(before)

      // A worker with tracing on handles both jobs.
      await Effect.runPromise(
        Effect.gen(function*() {
          yield* Worker.make({
            handlers: { email: (_payload: unknown) => Effect.void.pipe(Effect.withSpan("send-email")) },
            pollWaitMs: 500
          })
          for (const id of [produced.id, fromRest.id, ...batch.map((job) => job.id)]) {
            yield* Effect.promise(() =>
              eventually(
                `${id} completed`,
                async () => ((await getJson(`${url}/v1/jobs/${id}`)) as Job).state === "completed" ? true : undefined
              )
            )
          }
        }).pipe(
          Effect.scoped,
          Effect.provide(OsqueueClient.layerHttp({ urls: url })),
          Effect.provide(tracingFrom("osqueue-worker", { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url }))
        )
      )

      const stored = (await getJson(`${url}/v1/jobs/${produced.id}`)) as Job
      // The broker exports what it has when it stops.
      broker.child.kill("SIGTERM")
      await broker.exited
      expect(otlp.contentTypes).toContain("application/json")
      expect(otlp.contentTypes).toContain("application/x-protobuf")
      const spans = otlp.spans

      // The producer's trace: checkout → Producer.enqueue → Broker.enqueue → Worker.job → send-email.
      const checkout = only(spans, "checkout span", (s) => s.name === "checkout")
      expect(checkout.service).toBe("shop")
      const trace = spans.filter((s) => s.traceId === checkout.traceId)
      const enqueue = only(trace, "Producer.enqueue", (s) => s.name === "Producer.enqueue")
      expect(enqueue).toMatchObject({ service: "shop", parentSpanId: checkout.spanId, kind: SpanKind.producer })
      expect(enqueue.attributes).toMatchObject({ "job.id": produced.id, "job.type": "email" })
      const committed = only(trace, "Broker.enqueue", (s) => s.name === "Broker.enqueue")
      expect(committed).toMatchObject({
        service: "osqueue-broker",
        parentSpanId: enqueue.spanId,
        kind: SpanKind.server
      })
      expect(committed.attributes).toMatchObject({ "job.id": produced.id, "job.type": "email" })
      const handled = only(trace, "Worker.job", (s) => s.name === "Worker.job")
      expect(handled).toMatchObject({
        service: "osqueue-worker",
        parentSpanId: committed.spanId,
        kind: SpanKind.consumer
      })
      expect(handled.attributes).toMatchObject({ "job.id": produced.id, "job.type": "email", "job.attempt": 1 })
      const handler = only(trace, "send-email", (s) => s.name === "send-email")
      expect(handler.parentSpanId).toBe(handled.spanId)

      // The job carries the broker's span, which is how the worker found its parent.
      expect(stored.traceparent).toBe(`00-${committed.traceId}-${committed.spanId}-01`)

      // The batch: one Producer.enqueueMany, and under it a Broker.enqueue and a Worker.job per job.
      const many = only(spans, "Producer.enqueueMany", (s) => s.name === "Producer.enqueueMany")
      expect(many.attributes).toMatchObject({ jobs: 2 })
      for (const job of batch) {
        const jobCommitted = only(
          spans,
          `Broker.enqueue of ${job.id}`,
          (s) => s.name === "Broker.enqueue" && s.attributes["job.id"] === job.id
        )
        expect(jobCommitted).toMatchObject({ traceId: many.traceId, parentSpanId: many.spanId })
        const jobHandled = only(
          spans,
          `Worker.job of ${job.id}`,
          (s) => s.name === "Worker.job" && s.attributes["job.id"] === job.id
        )
        expect(jobHandled).toMatchObject({ traceId: many.traceId, parentSpanId: jobCommitted.spanId })
      }

      // The REST producer's trace: its own span → Broker.enqueue → Worker.job.
      const restTrace = spans.filter((s) => s.traceId === external.traceId)
      const restCommitted = only(restTrace, "Broker.enqueue of the REST job", (s) => s.name === "Broker.enqueue")
      expect(restCommitted.parentSpanId).toBe(external.spanId)
      expect(restCommitted.attributes["job.id"]).toBe(fromRest.id)
      const restHandled = only(restTrace, "Worker.job of the REST job", (s) => s.name === "Worker.job")
      expect(restHandled.parentSpanId).toBe(restCommitted.spanId)
      expect(restHandled.attributes["job.id"]).toBe(fromRest.id)
    } finally {
      await otlp.close()
    }
  }, 90_000)

  it("without an endpoint the tracer is off: no span is exported and jobs carry no trace context", async () => {
    const exporting = await Effect.runPromise(
      JobTrace.exporting.pipe(Effect.provide(tracingFrom("osqueue-broker", {})))
    )
    expect(exporting).toBe(false)
    const on = await Effect.runPromise(
      JobTrace.exporting.pipe(
        Effect.provide(tracingFrom("osqueue-broker", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1" }))
      )
    )
    expect(on).toBe(true)
    // Effect's built-in tracer (a program that set none) exports nothing either.
    expect(await Effect.runPromise(JobTrace.exporting)).toBe(false)
  })

  it("a bad OTEL_* variable stops the command with one line naming it", async () => {
    const run = osqueue(["stats", "-b", "http://127.0.0.1:1"], { OTEL_EXPORTER_OTLP_ENDPOINT: "localhost:4318" })
    expect(await run.exited).toBe(1)
    expect(run.stderr()).toContain("OTEL_EXPORTER_OTLP_ENDPOINT: \"it must be an http(s) URL")
    const headers = osqueue(["stats", "-b", "http://127.0.0.1:1"], {
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1",
      OTEL_EXPORTER_OTLP_HEADERS: "api-key"
    })
    expect(await headers.exited).toBe(1)
    expect(headers.stderr()).toContain("OTEL_EXPORTER_OTLP_HEADERS: \"each header is key=value")
  }, 60_000)
})
