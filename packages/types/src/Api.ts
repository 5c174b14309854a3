/**
 * The broker's REST contract (`/v1/…`), shared by the broker (handlers, OpenAPI) and by REST
 * clients (`HttpApiClient.make(OsqueueApi)`). The operations are those of `OsqueueRpcs`; the
 * broker serves both from one handler set. Every `OsqueueError` answers with the status
 * `httpStatus` gives it and its tagged JSON body.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Schema from "effect/Schema"
import { ClaimLimit, SetLimitRequest } from "./ClaimLimits.js"
import {
  CommitFailed,
  Forbidden,
  InvalidRequest,
  InvalidTransition,
  JobNotFound,
  LeaseLost,
  MethodNotAllowed,
  NoSuchRoute,
  NotLeader,
  Overloaded,
  PayloadTooLarge,
  QueueFull,
  RequestTimeout,
  ScheduleNotFound,
  StateCorrupt,
  Unauthorized,
  UnknownQueue
} from "./Errors.js"
import { FlowRequest } from "./Flow.js"
import { JobState, Priority, strictFields } from "./Job.js"
import { JobPage, ListOrder, ListSearch, maxPageSize } from "./JobList.js"
import { ClaimedJobsOnWire, EnqueueOptionsOnWire, JobIdOnWire, JobOnWire } from "./JobOnWire.js"
import { Role } from "./Roles.js"
import {
  ClaimRequestOnWire,
  CompleteAndClaimRequestOnWire,
  CompleteManyRequest,
  CompleteOutcomes,
  CompleteRequestOnWire,
  Count,
  EnqueueManyRequestOnWire,
  FailRequest,
  HeartbeatRequest,
  HeartbeatResult,
  LeaderInfo,
  PurgeRequest,
  TokenRequest,
  TypeRequest,
  WorkerInfo
} from "./Rpcs.js"
import { Schedule, ScheduleId, ScheduleSpec } from "./Schedule.js"
import { LimitStatus, Paused, Stats } from "./Stats.js"

const id = HttpApiSchema.param("id", JobIdOnWire)

/** `GET /v1/whoami`: the role of the token sent. */
export const WhoAmI = Schema.Struct({ role: Role })

/** `POST` bodies that may be left out (`curl -X POST …/v1/pause`): an empty body reads as null. */
const OptionalTypeBody = Schema.NullOr(TypeRequest)

/** `POST /v1/jobs/:id/priority`: the id is the path's. */
const PriorityBody = Schema.Struct({ priority: Priority }).annotations(strictFields)

/** Query strings carry text: numbers are parsed from it. */
const IntFromString = Schema.NumberFromString.pipe(Schema.int())

export const ListParams = Schema.Struct({
  state: Schema.optionalWith(JobState, { exact: true }),
  type: Schema.optionalWith(Schema.String, { exact: true }),
  after: Schema.optionalWith(IntFromString, { exact: true }),
  limit: Schema.optionalWith(IntFromString.pipe(Schema.between(1, maxPageSize)), { exact: true }),
  order: Schema.optionalWith(ListOrder, { exact: true }),
  search: Schema.optionalWith(ListSearch, { exact: true })
})

export class JobsApi extends HttpApiGroup.make("jobs")
  .add(
    HttpApiEndpoint.post("enqueue", "/jobs")
      .setPayload(EnqueueOptionsOnWire)
      .addSuccess(JobOnWire, { status: 201 })
      .annotate(OpenApi.Summary, "Enqueue a job (an existing idempotency key returns the existing job)")
  )
  .add(
    HttpApiEndpoint.post("enqueueMany", "/jobs/batch")
      .setPayload(EnqueueManyRequestOnWire)
      .addSuccess(Schema.Array(JobOnWire), { status: 201 })
      .annotate(OpenApi.Summary, "Enqueue several jobs in one commit")
  )
  .add(
    HttpApiEndpoint.post("enqueueFlow", "/flows")
      .setPayload(FlowRequest)
      .addSuccess(Schema.Array(JobOnWire), { status: 201 })
      .annotate(
        OpenApi.Summary,
        "Enqueue a flow in one commit, all or nothing: a parent runs once each of its children ended and reads their ends in `childResults` (docs/flows.md); answers the jobs, each before its children"
      )
  )
  .add(
    HttpApiEndpoint.post("claim", "/jobs/claim")
      .setPayload(ClaimRequestOnWire)
      .addSuccess(ClaimedJobsOnWire)
      .annotate(OpenApi.Summary, "Claim up to `max` jobs, waiting up to `waitMs` for one (long poll)")
  )
  .add(
    HttpApiEndpoint.post("heartbeat")`/jobs/${id}/heartbeat`
      .setPayload(HeartbeatRequest)
      .addSuccess(HeartbeatResult)
      .annotate(OpenApi.Summary, "Extend a lease (and report progress)")
  )
  .add(
    HttpApiEndpoint.post("complete")`/jobs/${id}/complete`
      .setPayload(CompleteRequestOnWire)
      .addSuccess(JobOnWire)
      .annotate(OpenApi.Summary, "Complete a claimed job")
  )
  .add(
    HttpApiEndpoint.post("completeAndClaim")`/jobs/${id}/complete-and-claim`
      .setPayload(CompleteAndClaimRequestOnWire)
      .addSuccess(ClaimedJobsOnWire)
      .annotate(
        OpenApi.Summary,
        "Complete a claimed job and claim up to `max` jobs in the same commit (a worker's next); none when none is claimable, without waiting"
      )
  )
  .add(
    HttpApiEndpoint.post("completeMany", "/jobs/batch/complete")
      .setPayload(CompleteManyRequest)
      .addSuccess(CompleteOutcomes)
      .annotate(
        OpenApi.Summary,
        "Complete several claimed jobs in one request; each item answers on its own (`Right` with the job, or `Left` with its error)"
      )
  )
  .add(
    HttpApiEndpoint.post("fail")`/jobs/${id}/fail`
      .setPayload(FailRequest)
      .addSuccess(JobOnWire)
      .annotate(OpenApi.Summary, "Fail a claimed job (retried with backoff unless retryable is false)")
  )
  .add(
    HttpApiEndpoint.post("release")`/jobs/${id}/release`
      .setPayload(TokenRequest)
      .addSuccess(JobOnWire)
      .annotate(OpenApi.Summary, "Give a claimed job back without counting an attempt")
  )
  .add(
    HttpApiEndpoint.post("cancel")`/jobs/${id}/cancel`
      .addSuccess(JobOnWire)
      .annotate(OpenApi.Summary, "Cancel a job that has not finished")
  )
  .add(
    HttpApiEndpoint.post("retry")`/jobs/${id}/retry`
      .addSuccess(JobOnWire)
      .annotate(OpenApi.Summary, "Run a dead, cancelled or failed job again")
  )
  .add(
    HttpApiEndpoint.post("promote")`/jobs/${id}/promote`
      .addSuccess(JobOnWire)
      .annotate(OpenApi.Summary, "Make a delayed or retry-waiting job claimable now")
  )
  .add(
    HttpApiEndpoint.post("setPriority")`/jobs/${id}/priority`
      .setPayload(PriorityBody)
      .addSuccess(JobOnWire)
      .annotate(
        OpenApi.Summary,
        "Change the priority of a job that has not started (queued, delayed or waiting to retry)"
      )
  )
  .add(
    HttpApiEndpoint.del("delete")`/jobs/${id}`
      .addSuccess(JobOnWire)
      .annotate(
        OpenApi.Summary,
        "Remove a job for good (any state but running: cancel a running job first); answers the job as it was"
      )
  )
  .add(
    HttpApiEndpoint.post("purge", "/jobs/purge")
      .setPayload(PurgeRequest)
      .addSuccess(Count)
      .annotate(
        OpenApi.Summary,
        "Remove every job in one state (not running), of one type or all, for good; answers how many"
      )
  )
  .add(
    HttpApiEndpoint.get("get")`/jobs/${id}`
      .addSuccess(JobOnWire)
      .annotate(OpenApi.Summary, "One job")
  )
  .add(
    HttpApiEndpoint.get("list", "/jobs")
      .setUrlParams(ListParams)
      .addSuccess(JobPage)
      .annotate(
        OpenApi.Summary,
        "Jobs in enqueue order (oldest or newest first), by state, type and a text search, paged by `after`"
      )
  )
  .prefix("/v1")
{}

export class QueueApi extends HttpApiGroup.make("queue")
  .add(
    HttpApiEndpoint.post("retryDead", "/dead/retry")
      .setPayload(OptionalTypeBody)
      .addSuccess(Count)
      .annotate(OpenApi.Summary, "Send dead jobs (of one type, or all) back to the queue")
  )
  .add(
    HttpApiEndpoint.post("pause", "/pause")
      .setPayload(OptionalTypeBody)
      .addSuccess(Paused)
      .annotate(OpenApi.Summary, "Stop claims (of one type, or all)")
  )
  .add(
    HttpApiEndpoint.post("resume", "/resume")
      .setPayload(OptionalTypeBody)
      .addSuccess(Paused)
      .annotate(OpenApi.Summary, "Undo a pause")
  )
  .add(
    HttpApiEndpoint.get("limits", "/limits")
      .addSuccess(Schema.Array(LimitStatus))
      .annotate(OpenApi.Summary, "The limits on claims, each with its scope's running jobs and starts in its window")
  )
  .add(
    HttpApiEndpoint.post("setLimit", "/limits")
      .setPayload(SetLimitRequest)
      .addSuccess(Schema.Array(ClaimLimit))
      .annotate(
        OpenApi.Summary,
        "Set the limit on claims of a type (or of the whole queue, without `type`): at most `concurrency` running at once, at most `rate.max` starts per `rate.windowMs`; answers every limit"
      )
  )
  .add(
    HttpApiEndpoint.post("clearLimit", "/limits/clear")
      .setPayload(OptionalTypeBody)
      .addSuccess(Schema.Array(ClaimLimit))
      .annotate(OpenApi.Summary, "Remove the limit on claims of a type (or of the whole queue); answers every limit")
  )
  .add(HttpApiEndpoint.get("stats", "/stats").addSuccess(Stats).annotate(OpenApi.Summary, "Counts by state and type"))
  .add(
    HttpApiEndpoint.get("workers", "/workers")
      .addSuccess(Schema.Array(WorkerInfo))
      .annotate(OpenApi.Summary, "Workers seen in the last lease TTL: the jobs each holds and when it was last seen")
  )
  .add(
    HttpApiEndpoint.get("leader", "/leader")
      .addSuccess(LeaderInfo)
      .annotate(OpenApi.Summary, "This broker's role and where the leader is")
  )
  .add(
    HttpApiEndpoint.get("whoami", "/whoami")
      .addSuccess(WhoAmI)
      .annotate(OpenApi.Summary, "The role of the token sent (`admin` when the broker has no token)")
  )
  .prefix("/v1")
{}

const scheduleId = HttpApiSchema.param("id", ScheduleId)

export class SchedulesApi extends HttpApiGroup.make("schedules")
  .add(
    HttpApiEndpoint.post("upsertSchedule", "/schedules")
      .setPayload(ScheduleSpec)
      .addSuccess(Schedule)
      .annotate(
        OpenApi.Summary,
        "Set a schedule: a job enqueued at each slot of `cron` (in `timezone`, UTC by default) or every `everyMs`; an id that exists is replaced, keeping its last run"
      )
  )
  .add(
    HttpApiEndpoint.del("removeSchedule")`/schedules/${scheduleId}`
      .addSuccess(Schedule)
      .annotate(OpenApi.Summary, "Remove a schedule (its runs already enqueued stay); answers it as it was")
  )
  .add(
    HttpApiEndpoint.get("listSchedules", "/schedules")
      .addSuccess(Schema.Array(Schedule))
      .annotate(OpenApi.Summary, "Every schedule, by id, with its next slot and last run")
  )
  .prefix("/v1")
{}

export class OsqueueApi extends HttpApi.make("osqueue")
  .add(JobsApi)
  .add(QueueApi)
  .add(SchedulesApi)
  .addError(InvalidRequest, { status: 400 })
  .addError(Unauthorized, { status: 401 })
  .addError(Forbidden, { status: 403 })
  .addError(JobNotFound, { status: 404 })
  .addError(ScheduleNotFound, { status: 404 })
  .addError(NoSuchRoute, { status: 404 })
  .addError(UnknownQueue, { status: 404 })
  .addError(MethodNotAllowed, { status: 405 })
  .addError(RequestTimeout, { status: 408 })
  .addError(LeaseLost, { status: 409 })
  .addError(InvalidTransition, { status: 409 })
  .addError(PayloadTooLarge, { status: 413 })
  .addError(NotLeader, { status: 421 })
  .addError(Overloaded, { status: 429 })
  .addError(QueueFull, { status: 503 })
  .addError(CommitFailed, { status: 503 })
  .addError(StateCorrupt, { status: 500 })
  .annotate(OpenApi.Title, "osqueue")
  .annotate(OpenApi.Version, "0.1.0")
  .annotate(
    OpenApi.Description,
    "A job queue whose only infrastructure is object storage. Send `Authorization: Bearer <token>` when the broker has tokens (OSQUEUE_TOKEN, OSQUEUE_TOKENS); a token's role decides which operations it may run (403 `Forbidden` otherwise), and `GET /v1/whoami` tells it."
  )
{}
