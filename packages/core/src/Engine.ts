/**
 * The engine as one layer (docs/architecture.md, "The service graph"): GroupCommit and Election
 * over the Replica, which sits over the checkpoint (Cas) and the Log, over whatever ObjectStore
 * and EngineConfig are provided. GroupCommit and Election are what a broker serves from.
 */
import * as Layer from "effect/Layer"
import * as Cas from "./Cas.js"
import * as Election from "./Election.js"
import * as GroupCommit from "./GroupCommit.js"
import * as Log from "./Log.js"
import * as Replica from "./Replica.js"

export const layer = GroupCommit.layer.pipe(
  Layer.provideMerge(Election.layer),
  Layer.provide(Replica.layer),
  Layer.provide(Layer.merge(Cas.layer(), Log.layer))
)
