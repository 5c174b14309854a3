/**
 * One broker as the client sees it: every operation of the contract, failing with the broker's
 * errors or `BrokerUnreachable`. RPC (HTTP, WebSocket, any custom protocol) and REST both
 * produce this shape, so leader discovery and retries are written once, above it.
 */
import type * as RpcClient from "@effect/rpc/RpcClient"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import type {
  ClaimedJob,
  ClaimRequest,
  CompleteRequest,
  EnqueueOptions,
  FailRequest,
  HeartbeatRequest,
  HeartbeatResult,
  IdRequest,
  Job,
  JobPage,
  LeaderInfo,
  ListQuery,
  OsqueueError,
  OsqueueRpcs,
  Paused,
  Stats,
  TokenRequest,
  TypeRequest,
  WatchEvent,
  WatchRequest
} from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { BrokerUnreachable, type ClientError } from "./Errors.js"

type Call<P, A> = (payload: P) => Effect.Effect<A, ClientError>

export interface BrokerApi {
  /** Where this broker is reached (its base URL, or a label for a custom protocol). */
  readonly url: string
  readonly Enqueue: Call<EnqueueOptions, Job>
  readonly EnqueueMany: Call<{ readonly jobs: ReadonlyArray<EnqueueOptions> }, ReadonlyArray<Job>>
  readonly Claim: Call<ClaimRequest, ReadonlyArray<ClaimedJob>>
  readonly Heartbeat: Call<typeof HeartbeatRequest.Type, HeartbeatResult>
  readonly Complete: Call<typeof CompleteRequest.Type, Job>
  readonly Fail: Call<typeof FailRequest.Type, Job>
  readonly Release: Call<typeof TokenRequest.Type, Job>
  readonly Cancel: Call<typeof IdRequest.Type, Job>
  readonly Retry: Call<typeof IdRequest.Type, Job>
  readonly RetryDead: Call<typeof TypeRequest.Type, { readonly count: number }>
  readonly Pause: Call<typeof TypeRequest.Type, Paused>
  readonly Resume: Call<typeof TypeRequest.Type, Paused>
  readonly Get: Call<typeof IdRequest.Type, Job>
  readonly List: Call<ListQuery, JobPage>
  readonly Stats: Effect.Effect<Stats, ClientError>
  readonly Leader: Effect.Effect<LeaderInfo, ClientError>
  readonly Watch: (request: typeof WatchRequest.Type) => Stream.Stream<WatchEvent, ClientError>
}

export type OsqueueRpcClient = RpcClient.FromGroup<typeof OsqueueRpcs, RpcClientError>

/** Adapts a typed RPC client; protocol failures become `BrokerUnreachable`. */
export const fromRpcClient = (url: string, client: OsqueueRpcClient): BrokerApi => {
  const unreachable = (error: OsqueueError | RpcClientError): ClientError =>
    error._tag === "RpcClientError" ? new BrokerUnreachable({ url, reason: error.message, cause: error.cause }) : error
  const lift = <P, A>(f: (payload: P) => Effect.Effect<A, OsqueueError | RpcClientError>): Call<P, A> => (payload) =>
    Effect.mapError(f(payload), unreachable)
  return {
    url,
    Enqueue: lift((p) => client.Enqueue(p)),
    EnqueueMany: lift((p) => client.EnqueueMany(p)),
    Claim: lift((p) => client.Claim(p)),
    Heartbeat: lift((p) => client.Heartbeat(p)),
    Complete: lift((p) => client.Complete(p)),
    Fail: lift((p) => client.Fail(p)),
    Release: lift((p) => client.Release(p)),
    Cancel: lift((p) => client.Cancel(p)),
    Retry: lift((p) => client.Retry(p)),
    RetryDead: lift((p) => client.RetryDead(p)),
    Pause: lift((p) => client.Pause(p)),
    Resume: lift((p) => client.Resume(p)),
    Get: lift((p) => client.Get(p)),
    List: lift((p) => client.List(p)),
    Stats: Effect.mapError(client.Stats(), unreachable),
    Leader: Effect.mapError(client.Leader(), unreachable),
    Watch: (p) => Stream.mapError(client.Watch(p), unreachable)
  }
}
