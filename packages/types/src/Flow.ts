/**
 * Flows (docs/flows.md): a parent job with children, enqueued together. The parent becomes
 * claimable once every child finished, and reads their results in `childResults`; a child may
 * itself be a parent. The whole tree is one command: it is refused whole or enqueued whole.
 */
import * as Schema from "effect/Schema"
import { ChildFailurePolicy, EnqueueOptions, strictFields } from "./Job.js"

/** Most levels of a flow: the root alone is one level. */
export const maxFlowDepth = 10

/** Most jobs in one flow, the root and every descendant counted. */
export const maxFlowJobs = 1_000

/** A job of a flow: an enqueue's options, and the jobs that must finish before it runs. */
export interface FlowJob extends EnqueueOptions {
  readonly children?: ReadonlyArray<FlowJob>
}

/** `FlowJob` as JSON carries it. */
export interface FlowJobEncoded extends Schema.Schema.Encoded<typeof EnqueueOptions> {
  readonly children?: ReadonlyArray<FlowJobEncoded>
}

export const FlowJob: Schema.Schema<FlowJob, FlowJobEncoded> = Schema.Struct({
  ...EnqueueOptions.fields,
  children: Schema.optionalWith(
    Schema.Array(Schema.suspend((): Schema.Schema<FlowJob, FlowJobEncoded> => FlowJob)).pipe(
      Schema.maxItems(maxFlowJobs)
    ),
    { exact: true }
  )
}).annotations({ identifier: "FlowJob", ...strictFields })

/**
 * What is wrong with a flow's shape (too deep, too many jobs, an idempotency key named twice),
 * or undefined. Walks the tree with a stack of its own, never by recursion: it runs on requests.
 */
export const flowProblem = (root: FlowJob): string | undefined => {
  const stack: Array<{ readonly job: FlowJob; readonly depth: number }> = [{ job: root, depth: 1 }]
  const keys = new Set<string>()
  let jobs = 0
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const { depth, job } = top
    if (depth > maxFlowDepth) {
      return `a flow has at most ${maxFlowDepth} levels (the root is one): flatten it, or enqueue the deepest part as a flow of its own`
    }
    if (++jobs > maxFlowJobs) {
      return `a flow has at most ${maxFlowJobs} jobs, the root and every descendant counted: split it into several flows`
    }
    const key = job.idempotencyKey
    if (key !== undefined) {
      if (keys.has(key)) {
        return `the idempotency key ${JSON.stringify(key)} is named twice in the flow: each job needs its own`
      }
      keys.add(key)
    }
    for (const child of job.children ?? []) stack.push({ job: child, depth: depth + 1 })
  }
  return undefined
}

/** `EnqueueFlow`: a flow's root, with its children inside, and what a child's failure does to its parent. */
export const FlowRequest = Schema.Struct({
  job: FlowJob,
  /** For every parent of the flow; `fail` when absent. */
  onChildFailure: Schema.optionalWith(ChildFailurePolicy, { exact: true })
}).pipe(
  Schema.filter((request) => flowProblem(request.job)),
  Schema.annotations({ identifier: "FlowRequest", ...strictFields })
)
export type FlowRequest = typeof FlowRequest.Type

/** A flow's jobs in the order `EnqueueFlow` answers them: each job before its children, children in their order. */
export const flowOrder = <A extends { readonly children?: ReadonlyArray<A> }>(
  root: A
): Array<{ readonly job: A; readonly parent: number | undefined }> => {
  const out: Array<{ readonly job: A; readonly parent: number | undefined }> = []
  // Pre-order with an explicit stack: children pushed in reverse come off in their order.
  const stack: Array<{ readonly job: A; readonly parent: number | undefined }> = [{ job: root, parent: undefined }]
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const index = out.push(top) - 1
    const children = top.job.children ?? []
    for (let i = children.length - 1; i >= 0; i--) stack.push({ job: children[i]!, parent: index })
  }
  return out
}
