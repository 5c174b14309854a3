/**
 * Flows in the state machine (docs/flows.md): a parent job waits in `waiting-children` until each
 * of its children finished; each child's end is copied into the parent's `childResults` as it
 * happens, so the parent's handler reads them whatever retention, a delete or a purge later does
 * to the children, and the parent is the only place that grows (bounded: see `recordChild`).
 *
 * The rules run after each command and after each batch's tick, on the jobs the command changed
 * (`settle`): a child that finished tells its parent, a cancelled parent cancels its unfinished
 * children, a child run again takes its end back. Their own changes are commands' changes too,
 * journaled and logged like any other, so a replica replays them from the log and never runs
 * these rules itself.
 */
import {
  type ChildFailurePolicy,
  type ChildResult,
  defaultChildFailurePolicy,
  flowOrder,
  flowProblem,
  type FlowRequest,
  InvalidRequest,
  type Job,
  type JobId,
  type JobState,
  type OsqueueError
} from "@osqueue/types"
import * as Either from "effect/Either"
import { isJobUndo } from "./journal.js"
import { cancel } from "./operatorRules.js"
import { enqueue, finalStates, type JobChanges, jobWith } from "./rules.js"
import type { StateCore } from "./stateCore.js"

/** The fields a job of a flow gets at its enqueue, in `Job`'s order. */
export interface FlowFields {
  readonly parentId?: string
  readonly children?: ReadonlyArray<string>
  readonly onChildFailure?: ChildFailurePolicy
}

/** A parent that keeps its children's latest ends: any but one running or completed (it keeps what it ran with). */
const recording: ReadonlySet<JobState> = new Set([
  "waiting-children",
  "queued",
  "delayed",
  "failed-waiting-retry",
  "dead",
  "cancelled"
])

/** A parent that takes a child's end back when the child is run again: it is not claimable. */
const reopening: ReadonlySet<JobState> = new Set(["waiting-children", "dead", "cancelled"])

/**
 * Enqueues a flow whole, or refuses it whole: its shape first (`flowProblem`), then the
 * idempotency keys (the root's key held already answers that flow as it stands; any other key
 * held already is refused, as half a flow cannot be new), then what every enqueue checks
 * (payloads, the state's cap). The jobs come back in `flowOrder`: each before its children.
 */
export const enqueueFlow = (
  core: StateCore,
  request: FlowRequest,
  now: number
): Either.Either<ReadonlyArray<Job>, OsqueueError> => {
  const problem = flowProblem(request.job)
  if (problem !== undefined) return Either.left(new InvalidRequest({ message: problem }))
  const rootKey = request.job.idempotencyKey
  const existing = rootKey === undefined ? undefined : core.jobs.byKey.get(rootKey)
  if (existing !== undefined) return Either.right(heldFlow(core, existing))
  const order = flowOrder(request.job)
  for (const { job } of order) {
    const holder = job.idempotencyKey === undefined ? undefined : core.jobs.byKey.get(job.idempotencyKey)
    if (holder !== undefined) {
      return Either.left(
        new InvalidRequest({
          message: `the idempotency key ${
            JSON.stringify(job.idempotencyKey)
          } is held by ${holder}, outside this flow: a flow's jobs are all new, or (with the root's key) the flow enqueued before`
        })
      )
    }
  }
  // No key is held: the jobs get the next ids in this order.
  const first = core.meta.nextJobSeq
  const ids = order.map((_, i) => `job-${first + i}`)
  const children = order.map((): Array<string> => [])
  order.forEach(({ parent }, i) => {
    if (parent !== undefined) children[parent]!.push(ids[i]!)
  })
  const onChildFailure = request.onChildFailure ?? defaultChildFailurePolicy
  const options = order.map(({ job }) => {
    const { children: _, ...rest } = job
    return rest
  })
  return enqueue(core, options, now, (i) => {
    const { parent } = order[i]!
    const own = children[i]!
    if (parent === undefined && own.length === 0) return undefined
    return {
      ...(parent === undefined ? {} : { parentId: ids[parent]! }),
      ...(own.length === 0 ? {} : { children: own, onChildFailure })
    }
  })
}

/** The flow under `rootId` as the state holds it now: each job before its children, those gone left out. */
const heldFlow = (core: StateCore, rootId: JobId): ReadonlyArray<Job> => {
  const jobs: Array<Job> = []
  const stack: Array<JobId> = [rootId]
  for (let id = stack.pop(); id !== undefined; id = stack.pop()) {
    const job = core.jobs.entries.get(id)?.job
    if (job === undefined) continue
    jobs.push(job)
    const children = job.children ?? []
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i] as JobId)
  }
  return jobs
}

type Kind = "finished" | "reopened"

/** What a change from `before` to `after` means to a flow: a job that finished (or left unfinished), or one run again. */
const kindOf = (before: JobState, after: JobState | undefined): Kind | undefined => {
  const wasFinal = finalStates.has(before)
  if (!wasFinal && (after === undefined || finalStates.has(after))) return "finished"
  if (wasFinal && after !== undefined && !finalStates.has(after)) return "reopened"
  return undefined
}

interface Settling {
  readonly kind: Kind
  readonly job: Job
  /** The job's state now; undefined when it left the state. */
  readonly state: JobState | undefined
}

/**
 * Applies the flow rules to the jobs changed since the `from`-th change of the open batch, in
 * rounds: the jobs one round changes are the next round's, until none is of a flow. Within a
 * round the jobs go in enqueue order (`seq`), and each job is settled once per command: a
 * deterministic order, which the reference model follows.
 */
export const settle = (core: StateCore, from: number, now: number): void => {
  let settled: Set<JobId> | undefined
  const changes = () => core.journal?.length ?? 0
  for (let start = from, end = changes(); start < end; start = end, end = changes()) {
    let seen: Set<JobId> | undefined
    let round: Array<Settling> | undefined
    for (let i = start; i < end; i++) {
      const change = core.journal![i]!
      if (!isJobUndo(change) || change.prev === undefined) continue
      const before = change.prev
      const current = core.jobs.entries.get(change.id)
      if (!before.inFlow && !(current?.inFlow ?? false)) continue
      // The first change of a job in the round saw it as the round found it.
      if (seen?.has(change.id) || settled?.has(change.id)) continue
      ;(seen ??= new Set()).add(change.id)
      const kind = kindOf(before.state, current?.state)
      if (kind === undefined) continue
      ;(settled ??= new Set()).add(change.id)
      ;(round ??= []).push({ kind, job: (current ?? before).job, state: current?.state })
    }
    if (round === undefined) continue
    round.sort((a, b) => a.job.seq - b.job.seq)
    for (const { job, kind, state } of round) {
      if (kind === "reopened") {
        if (job.parentId !== undefined) takeBack(core, job)
        continue
      }
      if (job.parentId !== undefined) recordChild(core, job, state, now)
      if (state === "cancelled") {
        for (const child of job.children ?? []) {
          const childState = core.jobs.entries.get(child as JobId)?.state
          if (childState !== undefined && !finalStates.has(childState)) cancel(core, child as JobId, now)
        }
      }
    }
  }
}

/** How a child that finished ended, as its parent keeps it (without the result: `recordChild` adds it if it fits). */
const endOf = (job: Job, state: JobState | undefined): ChildResult =>
  state === undefined
    ? { state: "deleted" }
    : state === "dead"
    ? { state: "dead", ...(job.lastError === undefined ? {} : { error: job.lastError }) }
    : state === "cancelled"
    ? { state: "cancelled" }
    : { state: "completed" }

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value))

/** `results` with `id`'s end set (or removed, when undefined), in the order of the parent's children. */
const withEnd = (parent: Job, id: string, end: ChildResult | undefined): Record<string, ChildResult> => {
  const results: Record<string, ChildResult> = {}
  for (const child of parent.children ?? []) {
    const kept = child === id ? end : parent.childResults?.[child]
    if (kept !== undefined) results[child] = kept
  }
  return results
}

/** The parent with new `childResults` (none when empty), in `Job`'s field order. */
const withResults = (parent: Job, results: Record<string, ChildResult>, changes: JobChanges = {}): Job =>
  jobWith(parent, { ...changes, childResults: Object.keys(results).length === 0 ? undefined : results })

/**
 * A child finished: its parent keeps how it ended, with the result if the parent's results stay
 * within the payload limit in all (else `resultOmitted`: a parent's size stays bounded by the
 * limit, whatever its children return). A parent waiting for its children then dies, when the
 * child failed and the flow says `fail`, or becomes claimable once every child ended (delayed
 * while its own `runAt` is later). A parent that started keeps what it started with.
 */
const recordChild = (core: StateCore, child: Job, state: JobState | undefined, now: number): void => {
  const parent = core.jobs.entries.get(child.parentId as JobId)?.job
  if (parent === undefined || !recording.has(parent.state) || !(parent.children ?? []).includes(child.id)) return
  const end = endOf(child, state)
  let results = withEnd(parent, child.id, end)
  if (end.state === "completed" && child.result !== undefined) {
    const withResult = withEnd(parent, child.id, { state: "completed", result: child.result })
    results = jsonBytes(withResult) <= core.limits.maxPayloadBytes
      ? withResult
      : withEnd(parent, child.id, { state: "completed", resultOmitted: true })
  }
  if (parent.state !== "waiting-children") {
    core.put(withResults(parent, results))
    return
  }
  if (end.state !== "completed" && (parent.onChildFailure ?? defaultChildFailurePolicy) === "fail") {
    const error = `child ${child.id} (${child.type}) ${
      end.state === "dead"
        ? `died: ${child.lastError ?? "no error given"}`
        : end.state === "cancelled"
        ? "was cancelled"
        : "was deleted before it finished"
    }`
    core.setMeta({ ...core.meta, totals: { ...core.meta.totals, dead: core.meta.totals.dead + 1 } })
    const dead = core.put(withResults(parent, results, { state: "dead", finishedAt: now, lastError: error }))
    core.emit("dead", dead, now, error)
    return
  }
  const ready = (parent.children ?? []).every((id) => results[id] !== undefined)
  core.put(withResults(parent, results, ready ? { state: parent.runAt > now ? "delayed" : "queued" } : {}))
}

/** A child run again (a retry, a redrive): a parent that is not claimable waits for it again. */
const takeBack = (core: StateCore, child: Job): void => {
  const parent = core.jobs.entries.get(child.parentId as JobId)?.job
  if (parent === undefined || !reopening.has(parent.state) || parent.childResults?.[child.id] === undefined) return
  core.put(withResults(parent, withEnd(parent, child.id, undefined)))
}
