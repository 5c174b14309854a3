/**
 * A job's JSON written field by field: its stored text (`storedText`, what `JSON.stringify
 * (storedJob(job))` gives) and each field's value (`fieldTexts`, what a log entry's patch sets).
 * V8's `JSON.stringify` spent 0.6–0.9 µs on each small object a claim or a completion writes (a
 * lease, a history), where a template takes a third to a fifth of that, and a job's lease and
 * history are written several times a job: the claim's patch, each heartbeat's, the completion's,
 * the completed job's bytes (docs/performance.md, "A job's leases and attempts written by template").
 *
 * Only called on a job `checkJobsSince` checked (`isJob`), whose numbers are integers: they are
 * written as `String` writes them, which is JSON's text for them. A lease's and an attempt's
 * fields go in the order the rules build them (internal/rules.ts: `claim`, `appendHistory`,
 * `endAttempt`), so the text is `JSON.stringify`'s for every job the state made; an object read
 * from bytes that held its fields in another order is written in this one, the same JSON.
 */
import {
  type Attempt,
  type HeldLease,
  type Job,
  Job as JobSchema,
  leftOutRules,
  optionalJobFields
} from "@osqueue/types"

const leaseText = (lease: HeldLease): string =>
  `{"workerId":${
    JSON.stringify(lease.workerId)
  },"epoch":${lease.epoch},"expiresAt":${lease.expiresAt},"ttlMs":${lease.ttlMs}${
    lease.secret === undefined ? "" : `,"secret":${JSON.stringify(lease.secret)}`
  }}`

const attemptText = (attempt: Attempt): string => {
  let text = `{"attempt":${attempt.attempt},"workerId":${
    JSON.stringify(attempt.workerId)
  },"startedAt":${attempt.startedAt},"outcome":"${attempt.outcome}"`
  if (attempt.endedAt !== undefined) text += `,"endedAt":${attempt.endedAt}`
  if (attempt.error !== undefined) text += `,"error":${JSON.stringify(attempt.error)}`
  return text + "}"
}

const historyText = (history: ReadonlyArray<Attempt>): string => {
  let text = "["
  for (let i = 0; i < history.length; i++) text += (i === 0 ? "" : ",") + attemptText(history[i]!)
  return text + "]"
}

const numberText = (value: number): string => String(value)
/** A state is one of `JobState`'s literals, which need no escapes. */
const stateText = (state: string): string => `"${state}"`
/** Undefined where JSON leaves the value out, as `JSON.stringify` does. */
const anyText = (value: unknown): string | undefined => JSON.stringify(value)

type FieldText = (value: never) => string | undefined

const textOf: { readonly [K in keyof Job]?: FieldText } = {
  state: stateText,
  priority: numberText,
  attempts: numberText,
  maxAttempts: numberText,
  claims: numberText,
  seq: numberText,
  createdAt: numberText,
  runAt: numberText,
  startedAt: numberText,
  finishedAt: numberText,
  timeoutMs: numberText,
  lease: leaseText,
  history: historyText
}

const textFor = (field: keyof Job): FieldText => textOf[field] ?? anyText

/** Each of `Job`'s fields, in its order (a log entry's patch goes by index): how its value is written. */
export const fieldTexts: ReadonlyArray<FieldText> = (Object.keys(JobSchema.fields) as Array<keyof Job>).map(textFor)

/** `Job`'s optional fields as `storedText` writes each: its name, then its value's text. */
const optionalTexts = optionalJobFields.map((field) => ({ field, name: `,"${field}":`, text: textFor(field) }))

/**
 * `JSON.stringify(storedJob(job))`, with the payload's JSON given (`payloadJson`). Undefined
 * when a value has no JSON (`JSON.stringify` would leave its key out): the caller writes that
 * job with `JSON.stringify`, as before.
 */
export const storedText = (job: Job, payloadJson: string): string | undefined => {
  let text = `{"id":${JSON.stringify(job.id)},"type":${
    JSON.stringify(job.type)
  },"payload":${payloadJson},"state":"${job.state}","maxAttempts":${job.maxAttempts},"seq":${job.seq},"createdAt":${job.createdAt}`
  for (let i = 0; i < optionalTexts.length; i++) {
    const { field, name, text: write } = optionalTexts[i]!
    const value = job[field]
    if (value === undefined) continue
    const json = write(value as never)
    if (json === undefined) return undefined
    text += name + json
  }
  if (!leftOutRules.priority(job)) text += `,"priority":${job.priority}`
  if (!leftOutRules.attempts(job)) text += `,"attempts":${job.attempts}`
  if (!leftOutRules.claims(job)) text += `,"claims":${job.claims}`
  if (!leftOutRules.backoff(job)) text += `,"backoff":${JSON.stringify(job.backoff)}`
  if (!leftOutRules.runAt(job)) text += `,"runAt":${job.runAt}`
  if (!leftOutRules.history(job)) text += `,"history":${historyText(job.history)}`
  return text + "}"
}
