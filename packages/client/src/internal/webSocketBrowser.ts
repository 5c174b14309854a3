/** The WebSocket constructor in browsers: the global one (see webSocketNode.ts for the rest). */
import * as Socket from "@effect/platform/Socket"
import type * as Layer from "effect/Layer"

export const layer: Layer.Layer<Socket.WebSocketConstructor> = Socket.layerWebSocketConstructorGlobal
