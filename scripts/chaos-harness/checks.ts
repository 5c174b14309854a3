/**
 * What a chaos run must prove, checked from the fleets' records and the final queue.json (read
 * straight from the store and decoded with the broker's own Schema). Every check returns the
 * violations it found, with enough detail to start an investigation.
 */
import { Schema } from "effect"
import { type Job, QueueFile } from "../../packages/types/src/index.js"
import {
  chaosSchedule,
  type ChildRun,
  flowParentType,
  type HandlerRun,
  Journal,
  type LeaseOp,
  type LeaseRecord,
  limitedConcurrency,
  limitedType,
  type ParentRun,
  parseToken
} from "./fleet.js"

export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
  readonly violations: ReadonlyArray<string>
}

const check = (name: string, violations: ReadonlyArray<string>, detail: string): Check => ({
  name,
  ok: violations.length === 0,
  detail,
  violations: violations.slice(0, 20)
})

const settled = new Set(["completed", "queued", "running", "delayed", "failed-waiting-retry", "waiting-children"])

export const runChecks = (journal: Journal, file: QueueFile): ReadonlyArray<Check> => {
  const jobs = new Map<string, Job>(file.jobs.map((job) => [job.id, job]))
  const checks: Array<Check> = []

  // 1. Every acknowledged enqueue is completed, or still in the queue (at least once).
  {
    const violations: Array<string> = []
    const idByKey = new Map<string, string>()
    let completed = 0
    for (const { key, id } of journal.enqueued) {
      const known = idByKey.get(key)
      if (known !== undefined && known !== id) violations.push(`key ${key} acknowledged as ${known} and as ${id}`)
      idByKey.set(key, id)
      const job = jobs.get(id)
      if (job === undefined) violations.push(`${id} (key ${key}) was acknowledged but is not in the final state`)
      else if (!settled.has(job.state)) violations.push(`${id} (key ${key}) ended ${job.state}`)
      else if (job.state === "completed") completed++
    }
    const pending = idByKey.size - completed
    checks.push(
      check(
        "every acknowledged enqueue completed or is still queued/running",
        violations,
        `${idByKey.size} acknowledged: ${completed} completed, ${pending} still queued/running, ${violations.length} lost`
      )
    )
  }

  // 2. No duplicates and no phantom jobs: one job per key, every key one a producer sent.
  {
    const violations: Array<string> = []
    const byKey = new Map<string, string>()
    for (const job of file.jobs) {
      // The schedule's runs have its keys (`scheduleCheck` follows them).
      if (job.idempotencyKey?.startsWith(`schedule:${chaosSchedule.id}:`)) continue
      if (job.idempotencyKey === undefined) {
        violations.push(`${job.id} has no idempotency key: nobody in this run enqueued it`)
        continue
      }
      const other = byKey.get(job.idempotencyKey)
      if (other !== undefined) violations.push(`key ${job.idempotencyKey} made two jobs: ${other} and ${job.id}`)
      byKey.set(job.idempotencyKey, job.id)
      if (!journal.keysSent.has(job.idempotencyKey)) {
        violations.push(`${job.id} has key ${job.idempotencyKey}, never sent`)
      }
    }
    checks.push(
      check(
        "one job per idempotency key, none unaccounted for",
        violations,
        `${file.jobs.length} jobs for ${journal.keysSent.size} keys sent`
      )
    )
  }

  const byJob = new Map<string, Array<LeaseRecord>>()
  for (const record of journal.leases) {
    const list = byJob.get(record.jobId)
    if (list === undefined) byJob.set(record.jobId, [record])
    else list.push(record)
  }

  // 3. No completion accepted from a stale lease: an acknowledged completion's token is the one
  //    the job finished with, and a job is acknowledged complete at most once.
  {
    const violations: Array<string> = []
    let acked = 0
    for (const [jobId, records] of byJob) {
      const completions = records.filter((r) => r.op === "complete" && r.outcome === "ok")
      acked += completions.length
      if (completions.length > 1) {
        violations.push(
          `${jobId}: ${completions.length} completions acknowledged (${completions.map((c) => c.token).join(", ")})`
        )
      }
      const job = jobs.get(jobId)
      for (const c of completions) {
        if (job === undefined) {
          violations.push(`${jobId}: completion of ${c.token} acknowledged, job not in the final state`)
        } else if (job.state !== "completed") {
          violations.push(`${jobId}: completion of ${c.token} acknowledged, job ended ${job.state}`)
        } else if (job.claims !== c.claim) {
          violations.push(
            `${jobId}: completion acknowledged for claim ${c.claim}, the job's last claim is ${job.claims}`
          )
        }
      }
    }
    const refused = journal.leases.filter((r) => r.op === "complete" && r.outcome === "LeaseLost").length
    checks.push(
      check(
        "no completion accepted from a stale lease",
        violations,
        `${acked} completions acknowledged; ${refused} refused with LeaseLost`
      )
    )
  }

  // 4. No job ever held two valid leases: each claim number is granted once, and no operation
  //    on a lease was accepted after it was certainly sent after a later claim was granted.
  {
    const violations: Array<string> = []
    for (const [jobId, records] of byJob) {
      const claims = records.filter((r) => r.op === "claim").sort((a, b) => a.claim - b.claim)
      for (let i = 1; i < claims.length; i++) {
        if (claims[i]!.claim === claims[i - 1]!.claim) {
          violations.push(
            `${jobId}: claim ${claims[i]!.claim} granted twice (${claims[i - 1]!.token}, ${claims[i]!.token})`
          )
        }
      }
      for (const op of records) {
        if (op.op === "claim" || op.outcome !== "ok") continue
        const later = claims.find((c) => c.claim > op.claim && c.ackAt < op.sentAt)
        if (later !== undefined) {
          violations.push(
            `${jobId}: ${op.op} on ${op.token} accepted, sent ${
              op.sentAt - later.ackAt
            } ms after ${later.token} was granted`
          )
        }
      }
    }
    const granted = journal.leases.filter((r) => r.op === "claim").length
    checks.push(check("no job ever held two valid leases", violations, `${granted} leases granted`))
  }

  // 5. The final state's own counts agree with itself and with the records.
  {
    const violations: Array<string> = []
    const completed = file.jobs.filter((j) => j.state === "completed")
    const dead = file.jobs.filter((j) => j.state === "dead").length
    if (file.totals.enqueued !== file.jobs.length) {
      violations.push(
        `totals.enqueued is ${file.totals.enqueued}, the state holds ${file.jobs.length} jobs (none may leave it in a run)`
      )
    }
    if (file.totals.completed !== completed.length) {
      violations.push(`totals.completed is ${file.totals.completed}, ${completed.length} jobs are completed`)
    }
    if (file.totals.dead !== dead) violations.push(`totals.dead is ${file.totals.dead}, ${dead} jobs are dead`)
    const ackedIds = new Set(journal.enqueued.map((e) => e.id))
    const unacked =
      file.jobs.filter((j) =>
        !ackedIds.has(j.id) && !j.idempotencyKey?.startsWith(`schedule:${chaosSchedule.id}:`) &&
        // A flow's children are acknowledged with their root.
        !(j.parentId !== undefined && ackedIds.has(j.parentId))
      ).length
    // A completion can land and its answer be lost (a kill between commit and reply): the
    // worker then saw an error. A completed job no worker tried to complete is a violation.
    const tried = journal.completeSent
    const ackedDone = new Set(
      journal.leases.filter((r) => r.op === "complete" && r.outcome === "ok").map((r) => r.jobId)
    )
    let unackedDone = 0
    for (const job of completed) {
      if (ackedDone.has(job.id)) continue
      unackedDone++
      if (!tried.has(job.id)) violations.push(`${job.id} is completed but no worker ever sent its completion`)
    }
    checks.push(
      check(
        "the final state decodes and its counts match the logs",
        violations,
        `format ${file.format}, epoch ${file.epoch}, seq ${file.seq}: ${file.jobs.length} jobs ` +
          `(${completed.length} completed, ${dead} dead); ${unacked} enqueued without an acknowledgement ` +
          `(in flight when the producers stopped), ${unackedDone} completed whose acknowledgement was lost`
      )
    )
  }

  // 6. The limit on claims of the limited type: never more of its handlers running at once than
  // it allows, from the workers' own records of their handler runs. A run counts only if its
  // lease held to the end: its completion, failure or release was acknowledged ("ok"). A run
  // whose lease was lost (it expired while the handler ran on) is not counted: the broker took
  // the job back when the lease expired and may then rightly start it, or another job, in that
  // slot while the first handler still runs. A run whose ending call got no answer is left out
  // too (its lease may have expired). Its handler interval lies inside the time the broker held
  // the job as running (claimed before it started, ended after it ended), so counted runs that
  // overlap were running at once in the broker's state.
  {
    const held = new Set(
      journal.leases
        .filter((r) => (r.op === "complete" || r.op === "fail" || r.op === "release") && r.outcome === "ok")
        .map((r) => r.token)
    )
    const counted = journal.limitedRuns.filter((run) => held.has(run.token))
    const { peak, at } = peakOverlap(counted)
    const violations = peak > limitedConcurrency
      ? [
        `${peak} ${limitedType} handlers ran at once at ${
          new Date(at).toISOString()
        }, the limit is ${limitedConcurrency}`
      ]
      : []
    if (journal.limitedRuns.length === 0) {
      violations.push(`no ${limitedType} job ran: the limit was never put to the test`)
    }
    checks.push(
      check(
        `at most ${limitedConcurrency} ${limitedType} jobs ran at once (a limit on claims)`,
        violations,
        `${journal.limitedRuns.length} handler runs, ${counted.length} with their lease held to the end; at most ${peak} at once`
      )
    )
  }

  // 7. No parent ran before all its children completed (docs/flows.md). Each run of a flow's
  // parent records the children's ends it was claimed with: each must be there, completed (the
  // children have attempts enough never to die, and the flow fails its parent on a failure).
  // And from the workers' clocks: a child run whose lease held to the end (its completion was
  // acknowledged) ended before its parent's handler started — the completion was committed
  // after that run ended, and the parent was claimed after the completion.
  {
    const violations = flowViolations(journal.parentRuns, journal.childRuns, journal.leases)
    if (journal.parentRuns.length === 0) {
      violations.push(`no ${flowParentType} job ran: flows were never put to the test`)
    }
    checks.push(
      check(
        "no parent ran before all its children completed (flows)",
        violations,
        `${journal.parentRuns.length} parent runs, ${journal.childRuns.length} child runs`
      )
    )
  }
  return checks
}

/** What `writerCheck` needs of a log entry left in the store. */
export interface WrittenEntry {
  readonly position: number
  readonly epoch: number
  readonly commitId: string
  /** The leader its header names, when it has a header (null: none leads). */
  readonly leaderId?: string | null
}

/**
 * Every entry was written by the leader of its epoch (docs/ha.md, "The log and the fence"): its
 * commitId begins with that leader's id, which every header of the epoch names. An entry of an
 * epoch written by another broker is one readers take for the leader's own — the counts of the
 * final state can then be off while every job looks right.
 */
export const writerCheck = (entries: ReadonlyArray<WrittenEntry>): Check => {
  const violations: Array<string> = []
  const leaders = new Map<number, string>()
  for (const entry of entries) {
    if (entry.leaderId === undefined || entry.leaderId === null) continue
    const named = leaders.get(entry.epoch)
    if (named !== undefined && named !== entry.leaderId) {
      violations.push(
        `entry ${entry.position} names ${entry.leaderId} the leader of epoch ${entry.epoch}, not ${named}`
      )
    }
    leaders.set(entry.epoch, named ?? entry.leaderId)
  }
  let checked = 0
  for (const entry of entries) {
    const leader = leaders.get(entry.epoch)
    if (leader === undefined) continue
    checked++
    if (!entry.commitId.startsWith(`${leader}:`)) {
      violations.push(
        `entry ${entry.position} of epoch ${entry.epoch} was written by ${entry.commitId}, not its leader ${leader}`
      )
    }
  }
  return check(
    "every log entry was written by the leader of its epoch",
    violations,
    `${checked} of ${entries.length} entries left checked, ${leaders.size} epochs`
  )
}

/**
 * The schedule's runs (docs/architecture.md, "Schedules"): no slot ran twice — in enqueue order
 * the runs' slots strictly increase (a slot run again after a failover would come later with
 * an earlier or equal slot), each a multiple of the interval, none before the schedule was set —
 * the schedule's last run is the latest of them, and runs kept coming (at least one per 5 s of
 * the run: missed slots are caught up, not dropped for good).
 */
export const scheduleCheck = (file: QueueFile, setAt: number): Check => {
  const violations: Array<string> = []
  const prefix = `schedule:${chaosSchedule.id}:`
  const runs = file.jobs
    .filter((job) => job.idempotencyKey?.startsWith(prefix))
    .sort((a, b) => a.seq - b.seq)
    .map((job) => ({ id: job.id, slot: Number(job.idempotencyKey!.slice(prefix.length)) }))
  for (const [i, run] of runs.entries()) {
    if (!Number.isSafeInteger(run.slot) || run.slot % chaosSchedule.everyMs !== 0) {
      violations.push(`${run.id} ran slot ${run.slot}, not a slot of the schedule`)
    }
    // The brokers' clock is this process's: one machine.
    if (run.slot <= setAt) violations.push(`${run.id} ran slot ${run.slot}, before the schedule was set at ${setAt}`)
    const before = runs[i - 1]
    if (before !== undefined && run.slot <= before.slot) {
      violations.push(
        `${run.id} ran slot ${run.slot} after ${before.id} ran slot ${before.slot}: a slot ran twice or out of order`
      )
    }
  }
  const schedule = file.schedules?.find((s) => s.id === chaosSchedule.id)
  const last = runs.at(-1)
  if (schedule === undefined) violations.push(`the schedule ${chaosSchedule.id} is not in the final state`)
  else if (last !== undefined && schedule.lastRun?.slot !== last.slot) {
    violations.push(`the schedule's last run is slot ${schedule.lastRun?.slot}, its latest job ran slot ${last.slot}`)
  }
  const span = last === undefined ? 0 : last.slot - runs[0]!.slot
  if (runs.length === 0 || runs.length < span / 5_000) {
    violations.push(`${runs.length} runs over ${span} ms of slots: the schedule stalled`)
  }
  const skipped = last === undefined ? 0 : span / chaosSchedule.everyMs + 1 - runs.length
  return check(
    "no schedule slot ran twice, and the runs kept coming",
    violations,
    `${runs.length} runs of ${chaosSchedule.id} over ${
      Math.round(span / 1000)
    } s of slots (${skipped} slots coalesced into catch-up runs)`
  )
}

/** What the runs of flows' parents and children say against "no parent ran before its children completed". */
const flowViolations = (
  parentRuns: ReadonlyArray<ParentRun>,
  childRuns: ReadonlyArray<ChildRun>,
  leases: ReadonlyArray<LeaseRecord>
): Array<string> => {
  const violations: Array<string> = []
  const completedTokens = new Set(
    leases.filter((r) => r.op === "complete" && r.outcome === "ok").map((r) => r.token)
  )
  for (const run of parentRuns) {
    const missing = run.children.filter((id) => run.ends[id] !== "completed")
    if (run.children.length === 0) violations.push(`${run.jobId} ran as a flow's parent without children`)
    if (missing.length > 0) {
      violations.push(
        `${run.jobId} ran (${run.token}) with children ${
          missing.map((id) => `${id} ${run.ends[id] ?? "not ended"}`).join(", ")
        }`
      )
    }
  }
  const firstStart = new Map<string, number>()
  for (const run of parentRuns) firstStart.set(run.jobId, Math.min(firstStart.get(run.jobId) ?? Infinity, run.startAt))
  for (const child of childRuns) {
    const started = firstStart.get(child.parentId)
    if (started === undefined || !completedTokens.has(child.token)) continue
    if (child.endAt > started) {
      violations.push(
        `${child.parentId} started at ${
          new Date(started).toISOString()
        }, before its child's run ${child.token} ended (${child.endAt - started} ms later)`
      )
    }
  }
  return violations
}

/** The most runs in progress at one instant, and when: an end at the instant another starts is no overlap. */
const peakOverlap = (runs: ReadonlyArray<HandlerRun>): { readonly peak: number; readonly at: number } => {
  const edges = runs.flatMap((run) => [{ at: run.startAt, delta: 1 }, { at: run.endAt, delta: -1 }])
    .sort((a, b) => a.at - b.at || a.delta - b.delta)
  let now = 0
  let peak = 0
  let at = 0
  for (const edge of edges) {
    now += edge.delta
    if (now > peak) {
      peak = now
      at = edge.at
    }
  }
  return { peak, at }
}

/** What one broker process logged, in order: each start logs to its own file. */
export interface ProcessLog {
  readonly name: string
  readonly lines: ReadonlyArray<{ readonly message: string; readonly timestamp: string }>
}

/** A broker that handed over must never take the queue again: it is about to exit (docs/ha.md, "Clean handoff"). */
export const handoffCheck = (processes: ReadonlyArray<ProcessLog>): Check => {
  const violations: Array<string> = []
  let handoffs = 0
  for (const { lines, name } of processes) {
    let released = false
    for (const { message, timestamp } of lines) {
      if (message === "released leadership") {
        released = true
        handoffs++
      }
      if (message === "took over as leader" && released) {
        violations.push(`${name}: took over at ${timestamp} after releasing the queue`)
      }
    }
  }
  return check(
    "a broker that handed over never took the queue back",
    violations,
    `${handoffs} clean handoffs, ${violations.length} taken back`
  )
}

/**
 * The checks must be able to fail: each run first feeds them records and a state with one
 * planted violation per check, and a clean pair, and refuses to start if any verdict is wrong.
 * Answers what went wrong (empty when the checks caught every plant and passed the clean pair).
 */
export const selfTest = (): ReadonlyArray<string> => {
  const job = (n: number, state: string, claims: number, key = `k${n}`) => ({
    id: `job-${n}`,
    type: "chaos",
    payload: {},
    state,
    priority: 0,
    attempts: claims,
    maxAttempts: 100,
    claims,
    backoff: { _tag: "fixed", delayMs: 0 },
    seq: n,
    createdAt: 0,
    runAt: 0,
    idempotencyKey: key,
    history: []
  })
  const file = (
    jobs: ReadonlyArray<ReturnType<typeof job>>,
    completed = jobs.filter((j) => j.state === "completed").length
  ) =>
    Schema.decodeUnknownSync(QueueFile)({
      format: 1,
      epoch: 2,
      seq: 10,
      commitId: "a:10",
      leader: null,
      nextJobSeq: 10,
      paused: { all: false, types: [] },
      totals: { enqueued: jobs.length, completed, dead: 0 },
      jobs
    })
  const lease = (op: LeaseOp, token: string, sentAt: number, ackAt: number, outcome = "ok"): LeaseRecord => ({
    op,
    token,
    ...parseToken(token),
    workerId: "w",
    sentAt,
    ackAt,
    outcome
  })
  const journal = (
    keys: number,
    leases: ReadonlyArray<LeaseRecord>,
    runs: ReadonlyArray<HandlerRun> = [{ token: "job-1/1/1", startAt: 1, endAt: 2 }],
    flows: { readonly parents: ReadonlyArray<ParentRun>; readonly children: ReadonlyArray<ChildRun> } = {
      parents: [{
        token: "job-9/1/1",
        jobId: "job-9",
        children: ["job-8"],
        ends: { "job-8": "completed" },
        startAt: 10
      }],
      children: [{ token: "job-8/1/1", parentId: "job-9", startAt: 1, endAt: 5 }]
    }
  ) => {
    const j = new Journal()
    j.limitedRuns.push(...runs)
    j.parentRuns.push(...flows.parents)
    j.childRuns.push(...flows.children)
    for (let n = 1; n <= keys; n++) {
      j.keysSent.add(`k${n}`)
      j.enqueued.push({ key: `k${n}`, id: `job-${n}`, sentAt: 0, ackAt: 1 })
    }
    for (const l of leases) {
      j.leases.push(l)
      if (l.op === "complete") j.completeSent.add(l.jobId)
    }
    return j
  }
  const clean = journal(1, [lease("claim", "job-1/1/1", 0, 1), lease("complete", "job-1/1/1", 2, 3)])
  const cases: ReadonlyArray<readonly [string, Journal, QueueFile]> = [
    ["every acknowledged enqueue completed or is still queued/running", journal(2, []), file([job(1, "queued", 0)])],
    [
      "one job per idempotency key, none unaccounted for",
      journal(1, []),
      file([job(1, "queued", 0), job(2, "queued", 0, "k1")])
    ],
    [
      "no completion accepted from a stale lease",
      journal(1, [lease("complete", "job-1/1/1", 5, 6)]),
      file([job(1, "completed", 2)])
    ],
    [
      "no job ever held two valid leases",
      journal(1, [
        lease("claim", "job-1/1/1", 0, 1),
        lease("claim", "job-1/2/2", 2, 3),
        lease("heartbeat", "job-1/1/1", 4, 5)
      ]),
      file([job(1, "running", 2)])
    ],
    ["the final state decodes and its counts match the logs", journal(1, []), file([job(1, "completed", 1)])],
    [
      `at most ${limitedConcurrency} ${limitedType} jobs ran at once (a limit on claims)`,
      journal(
        3,
        [1, 2, 3].map((n) => lease("complete", `job-${n}/1/1`, 10, 11)),
        [1, 2, 3].map((n) => ({ token: `job-${n}/1/1`, startAt: n, endAt: 9 }))
      ),
      file([1, 2, 3].map((n) => job(n, "completed", 1)))
    ],
    // A parent claimed with a child's end missing.
    [
      "no parent ran before all its children completed (flows)",
      journal(1, [], undefined, {
        parents: [{
          token: "job-9/1/1",
          jobId: "job-9",
          children: ["job-7", "job-8"],
          ends: { "job-8": "completed" },
          startAt: 10
        }],
        children: []
      }),
      file([job(1, "completed", 1)])
    ],
    // A parent whose handler started before its child's run (whose completion was acknowledged) ended.
    [
      "no parent ran before all its children completed (flows)",
      journal(1, [lease("complete", "job-8/1/1", 12, 13)], undefined, {
        parents: [{
          token: "job-9/1/1",
          jobId: "job-9",
          children: ["job-8"],
          ends: { "job-8": "completed" },
          startAt: 10
        }],
        children: [{ token: "job-8/1/1", parentId: "job-9", startAt: 1, endAt: 11 }]
      }),
      file([job(1, "completed", 1)])
    ]
  ]
  const problems: Array<string> = []
  for (const c of runChecks(clean, file([job(1, "completed", 1)]))) {
    if (!c.ok) problems.push(`a clean run fails "${c.name}": ${c.violations.join("; ")}`)
  }
  for (const [name, j, f] of cases) {
    const verdict = runChecks(j, f).find((c) => c.name === name)
    if (verdict === undefined || verdict.ok) problems.push(`"${name}" does not catch its planted violation`)
  }
  const logged = (...messages: ReadonlyArray<string>): ProcessLog => ({
    name: "broker-1.0.log",
    lines: messages.map((message, i) => ({ message, timestamp: new Date(i).toISOString() }))
  })
  const tick = (n: number, slot: number) => job(n, "completed", 1, `schedule:${chaosSchedule.id}:${slot}`)
  const scheduled = (slots: ReadonlyArray<number>) =>
    Schema.decodeUnknownSync(QueueFile)({
      format: 4,
      epoch: 2,
      seq: 10,
      commitId: "a:10",
      leader: null,
      nextJobSeq: 10,
      paused: { all: false, types: [] },
      totals: { enqueued: slots.length, completed: slots.length, dead: 0 },
      schedules: [{
        ...chaosSchedule,
        missed: "catch-up",
        createdAt: 0,
        updatedAt: 0,
        nextAt: 10_000,
        lastRun: { slot: slots.at(-1), at: slots.at(-1), jobId: `job-${slots.length}` }
      }],
      jobs: slots.map((slot, i) => tick(i + 1, slot))
    })
  const scheduleClean = scheduleCheck(scheduled([2_000, 3_000, 6_000]), 1_500)
  if (!scheduleClean.ok) {
    problems.push(`a clean run fails "${scheduleClean.name}": ${scheduleClean.violations.join("; ")}`)
  }
  for (const planted of [scheduled([2_000, 3_000, 3_000]), scheduled([2_000, 4_000, 3_000])]) {
    const verdict = scheduleCheck(planted, 1_500)
    if (verdict.ok) problems.push(`"${verdict.name}" does not catch its planted violation`)
  }
  const handoffClean = handoffCheck([
    logged("took over as leader", "released leadership"),
    logged("took over as leader")
  ])
  if (!handoffClean.ok) problems.push(`a clean run fails "${handoffClean.name}": ${handoffClean.violations.join("; ")}`)
  const handoffPlanted = handoffCheck([logged("took over as leader", "released leadership", "took over as leader")])
  if (handoffPlanted.ok) problems.push(`"${handoffPlanted.name}" does not catch its planted violation`)
  const written = (position: number, epoch: number, writer: string, leaderId?: string): WrittenEntry => ({
    position,
    epoch,
    commitId: `${writer}:${position}:1`,
    ...(leaderId === undefined ? {} : { leaderId })
  })
  const writersClean = writerCheck([written(1, 1, "a", "a"), written(2, 1, "a"), written(3, 2, "b", "b")])
  if (!writersClean.ok) problems.push(`a clean run fails "${writersClean.name}": ${writersClean.violations.join("; ")}`)
  // A deposed leader's entry written at the new leader's epoch, under the new leader's header.
  for (
    const planted of [[written(1, 2, "b", "b"), written(2, 2, "a", "b")], [written(1, 2, "b", "b"), written(2, 2, "a")]]
  ) {
    const verdict = writerCheck(planted)
    if (verdict.ok) problems.push(`"${verdict.name}" does not catch its planted violation`)
  }
  return problems
}
