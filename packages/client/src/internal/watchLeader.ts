/** The leader's event stream: a follower's would miss job events, so the watch is redirected. */
import { NotLeader, type WatchEvent, type WatchRequest } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { ClientError } from "../Errors.js"
import { trimUrl } from "../Protocols.js"
import type { BrokerApi } from "../Transport.js"

export const watchLeader = (
  api: BrokerApi,
  request: typeof WatchRequest.Type
): Stream.Stream<WatchEvent, ClientError> =>
  Stream.unwrap(
    Effect.map(api.Leader, (info) =>
      info.role === "follower" && info.leaderUrl !== null && trimUrl(info.leaderUrl) !== api.url
        ? Stream.fail(new NotLeader({ leaderUrl: info.leaderUrl }))
        : api.Watch(request))
  )
