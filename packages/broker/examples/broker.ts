/**
 * A broker on the file store at http://localhost:8080 (run from the repo root:
 * `pnpm exec tsx packages/broker/examples/broker.ts`; Ctrl-C hands leadership over and exits).
 * BROKER_PORT, BROKER_URL, OSQUEUE_TOKEN, … are read from the environment.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Broker } from "@osqueue/broker"
import { EngineConfig } from "@osqueue/core"
import { FileStore } from "@osqueue/storage"
import { Layer } from "effect"

const BrokerLive = Broker.layerConfig.pipe(
  Layer.provide(Broker.layerEngine),
  Layer.provide(EngineConfig.layerConfig),
  Layer.provide(FileStore.layer({ directory: ".osqueue" }))
)

Layer.launch(BrokerLive).pipe(NodeRuntime.runMain)
