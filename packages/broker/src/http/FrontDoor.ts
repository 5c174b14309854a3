/**
 * A slot on a Node HTTP server for one listener that may answer a request before the Effect app
 * sees it (the edge, `Edge`). Node calls every "request" listener in turn, so a request the
 * front answers must not reach the others: the slot sits in the server's `emit`.
 */
import * as Context from "effect/Context"
import type * as Http from "node:http"

/** Answers the request and returns true, or returns false having touched nothing. */
export type Listener = (request: Http.IncomingMessage, response: Http.ServerResponse) => boolean

export interface FrontDoorShape {
  /** Puts `listener` in front of the server's own listeners until the returned function is called. */
  readonly open: (listener: Listener) => () => void
}

export class FrontDoor extends Context.Tag("@osqueue/broker/FrontDoor")<FrontDoor, FrontDoorShape>() {}

export const attach = (server: Http.Server): FrontDoorShape => {
  let front: Listener | undefined
  const emit = server.emit
  server.emit = function(this: Http.Server, event: string | symbol, ...args: Array<unknown>): boolean {
    if (event === "request" && front?.(args[0] as Http.IncomingMessage, args[1] as Http.ServerResponse) === true) {
      return true
    }
    return Reflect.apply(emit, this, [event, ...args]) as boolean
  }
  return {
    open: (listener) => {
      front = listener
      return () => {
        if (front === listener) front = undefined
      }
    }
  }
}
