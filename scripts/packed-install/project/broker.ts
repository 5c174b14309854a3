// A broker on the file store, as packages/broker/README.md shows it: BROKER_PORT, BROKER_URL
// and OSQUEUE_DIR from the environment; SIGTERM hands leadership over and exits.
import { NodeRuntime } from "@effect/platform-node"
import { Broker } from "@osqueue/broker"
import { EngineConfig } from "@osqueue/core"
import { FileStore } from "@osqueue/storage"
import { Layer } from "effect"

const BrokerLive = Broker.layerConfig.pipe(
  Layer.provide(Broker.layerEngine),
  Layer.provide(EngineConfig.layerConfig),
  Layer.provide(FileStore.layer({ directory: process.env.OSQUEUE_DIR ?? ".osqueue" }))
)

Layer.launch(BrokerLive).pipe(NodeRuntime.runMain)
