/** `osqueue flow enqueue|show`: a parent job with children, enqueued whole, and a job's place in its flow (docs/flows.md). */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import type { OsqueueClient } from "@osqueue/client"
import { ChildFailurePolicy, FlowJob, type Job, type JobId, maxFlowJobs } from "@osqueue/types"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { connection, json } from "../Connection.js"
import { oneLine } from "../JsonOption.js"
import { jobLine, printJson } from "../Output.js"
import { withClient } from "./jobs.js"

const decodeFlow = Schema.decode(Schema.parseJson(FlowJob))

const flowFile = Args.fileText({ name: "file" }).pipe(
  Args.withDescription(
    `A JSON file of the flow's root job: its enqueue options and "children", each a job of the same shape, e.g. {"type":"report","children":[{"type":"fetch","payload":{"region":"eu"}}]}.`
  ),
  Args.mapEffect(([path, text]) =>
    decodeFlow(text).pipe(
      Effect.mapError((error) => HelpDoc.p(`${path} is not a flow: ${oneLine(error)}`))
    )
  )
)

const enqueue = Command.make(
  "enqueue",
  {
    ...connection,
    json,
    flow: flowFile,
    onChildFailure: Options.choice("on-child-failure", ChildFailurePolicy.literals).pipe(
      Options.withDescription(
        "What a child that dies, is cancelled or deleted does to its parent: fail sends the parent to the dead-letter list naming the child; ignore lets it run without that child's result. Default: fail."
      ),
      Options.optional
    )
  },
  (args) =>
    withClient(
      args,
      (client) =>
        client.enqueueFlow(args.flow, { onChildFailure: Option.getOrUndefined(args.onChildFailure) }).pipe(
          Effect.flatMap((jobs) =>
            args.json ? printJson(jobs) : Effect.forEach(jobs, (job) => Console.log(treeLine(job, depthIn(jobs, job))))
          )
        )
    )
).pipe(
  Command.withDescription(
    "Enqueue a flow from a JSON file, all or nothing: a parent runs once each of its children ended, and reads their results"
  )
)

/** How deep `job` sits in `jobs` (the answer of an enqueue, each job before its children). */
const depthIn = (jobs: ReadonlyArray<Job>, job: Job): number => {
  let depth = 0
  for (let parent = job.parentId; parent !== undefined; parent = jobs.find((other) => other.id === parent)?.parentId) {
    depth++
  }
  return depth
}

const treeLine = (job: Job, depth: number) => `${"  ".repeat(depth)}${jobLine(job)}`

/** The job's end as its parent keeps it, in a few words. */
const endText = (parent: Job | undefined, id: string): string => {
  const end = parent?.childResults?.[id]
  if (end === undefined) return ""
  if (end.state === "completed") {
    return end.resultOmitted === true
      ? "  → completed (result too large to keep in the parent)"
      : `  → completed ${JSON.stringify(end.result) ?? ""}`
  }
  return `  → ${end.state}${end.error === undefined ? "" : `: ${end.error}`}`
}

interface FlowTree {
  readonly job: Job
  readonly children: ReadonlyArray<FlowTree | { readonly id: string; readonly gone: true }>
}

/** The job and its descendants still held (at most a flow's worth), read one by one. */
const treeOf = (client: OsqueueClient["Type"], job: Job): Effect.Effect<FlowTree> =>
  Effect.gen(function*() {
    let budget = maxFlowJobs
    const walk = (at: Job): Effect.Effect<FlowTree> =>
      Effect.forEach(at.children ?? [], (id) =>
        budget-- <= 0
          ? Effect.succeed({ id, gone: true as const })
          : client.get(id as JobId).pipe(
            Effect.flatMap(walk),
            Effect.orElseSucceed(() => ({ id, gone: true as const }))
          )).pipe(Effect.map((children) => ({ job: at, children })))
    return yield* walk(job)
  })

const printTree = (tree: FlowTree, depth: number, parent: Job | undefined): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* Console.log(`${treeLine(tree.job, depth)}${endText(parent, tree.job.id)}`)
    for (const child of tree.children) {
      if ("gone" in child) {
        yield* Console.log(`${"  ".repeat(depth + 1)}${child.id} (no longer held)${endText(tree.job, child.id)}`)
      } else yield* printTree(child, depth + 1, tree.job)
    }
  })

const show = Command.make(
  "show",
  {
    ...connection,
    json,
    id: Args.text({ name: "id" }).pipe(
      Args.withDescription("A job of a flow, e.g. job-42: its parent, then it and its children, nested.")
    )
  },
  (args) =>
    withClient(args, (client) =>
      Effect.gen(function*() {
        const job = yield* client.get(args.id as JobId)
        const parent = job.parentId === undefined
          ? undefined
          : yield* client.get(job.parentId as JobId).pipe(Effect.option, Effect.map(Option.getOrUndefined))
        const tree = yield* treeOf(client, job)
        if (args.json) return yield* printJson({ parentId: job.parentId, parent, tree })
        if (job.parentId !== undefined) {
          yield* Console.log(`parent: ${parent === undefined ? `${job.parentId} (no longer held)` : jobLine(parent)}`)
        }
        yield* printTree(tree, 0, parent)
      }))
).pipe(Command.withDescription("Show a job's parent and its children (theirs too), with how each child ended"))

export const flowSubcommands = [enqueue, show] as const

export const flow = Command.make("flow").pipe(
  Command.withDescription("Flows: a parent job that runs once its children ended (docs/flows.md)"),
  Command.withSubcommands(flowSubcommands)
)
