/**
 * The WebSocket constructor outside browsers: Node's global one when it has it (22+), else the
 * `ws` package. Chosen by the `#webSocketConstructor` import (package.json `imports`), so a
 * browser bundle never pulls in Node's socket modules.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import type * as Socket from "@effect/platform/Socket"
import type * as Layer from "effect/Layer"

export const layer: Layer.Layer<Socket.WebSocketConstructor> = NodeSocket.layerWebSocketConstructor
