/**
 * A slot on a Node HTTP server for one front that may take a request, or an upgrade request,
 * before the Effect app sees it (the edge, `Edge`). Node calls every "request" (and "upgrade")
 * listener in turn, so what the front takes must not reach the others: the slot sits in the
 * server's `emit`.
 */
import * as Context from "effect/Context"
import type * as Http from "node:http"
import type { Duplex } from "node:stream"

export interface Front {
  /** Answers the request and returns true, or returns false having touched nothing. */
  readonly request: (request: Http.IncomingMessage, response: Http.ServerResponse) => boolean
  /** Takes the upgrade request (its socket and the bytes read past its head) and returns true, or returns false having touched nothing. */
  readonly upgrade: (request: Http.IncomingMessage, socket: Duplex, head: Buffer) => boolean
}

export interface FrontDoorShape {
  /** Puts `front` before the server's own listeners until the returned function is called. */
  readonly open: (front: Front) => () => void
}

export class FrontDoor extends Context.Tag("@osqueue/broker/FrontDoor")<FrontDoor, FrontDoorShape>() {}

export const attach = (server: Http.Server): FrontDoorShape => {
  let front: Front | undefined
  const emit = server.emit
  server.emit = function(this: Http.Server, event: string | symbol, ...args: Array<unknown>): boolean {
    if (
      event === "request" && front?.request(args[0] as Http.IncomingMessage, args[1] as Http.ServerResponse) === true
    ) {
      return true
    }
    if (
      event === "upgrade" &&
      front?.upgrade(args[0] as Http.IncomingMessage, args[1] as Duplex, args[2] as Buffer) === true
    ) {
      return true
    }
    return Reflect.apply(emit, this, [event, ...args]) as boolean
  }
  return {
    open: (opened) => {
      front = opened
      return () => {
        if (front === opened) front = undefined
      }
    }
  }
}
