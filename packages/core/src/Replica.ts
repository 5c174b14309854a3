/**
 * This broker's copy of the queue: the decoded state, the version it was read or written at,
 * and the one path by which a change becomes durable (apply → encode → CAS write → keep or
 * undo). Shared by Election (takeover) and GroupCommit (every other commit); only one of them
 * writes at a time, under `lock`.
 */
import type { JobEvent, Stats } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { CasShape, CommitError } from "./Cas.js"
import type { QueueState } from "./QueueState.js"

export interface Written<A> {
  readonly result: A
  readonly events: ReadonlyArray<JobEvent>
  readonly bytes: number
  /** Time spent applying the change and encoding the state, in ms. */
  readonly encodeMs: number
}

export class Replica {
  /** True while a batch is applied in memory but not yet durable: reads wait. */
  private dirty = false
  private readonly waiters: Array<() => void> = []
  /** The counts of the last durable state, taken as each write begins (the state is then changed in place). */
  private durableStats: Stats | undefined

  constructor(
    public state: QueueState,
    /** undefined when the object does not exist yet. */
    public version: string | undefined,
    readonly lock: Effect.Semaphore,
    private readonly cas: CasShape
  ) {}

  /** Runs `f` on committed state only: at once, or right after the write in flight settles. */
  read<A>(f: (state: QueueState) => A): Effect.Effect<A> {
    // Decided when it runs, not when it is built: a read built once and run many times (the
    // broker's stats) once waited, every time, for the commit after the one in flight when it was
    // built (up to TTL/3 on an idle broker).
    return Effect.suspend(() => {
      if (!this.dirty) return Effect.succeed(f(this.state))
      return Effect.async<A>((resume) => {
        this.waiters.push(() => resume(Effect.succeed(f(this.state))))
      })
    })
  }

  /**
   * The counts of the last durable state, at once: while a write is in flight, those from before
   * it. Stats and metrics never wait on the store (a put that hangs would hold them with it).
   */
  stats(): Stats {
    return this.dirty && this.durableStats !== undefined ? this.durableStats : this.state.stats()
  }

  replace(state: QueueState, version: string | undefined): void {
    this.state = state
    this.version = version
  }

  /**
   * Applies `mutate`, writes the result if the object is still at our version, and keeps the
   * change only if the write succeeded. Callers hold `lock`.
   */
  write<A>(
    leaderId: string,
    metadata: (state: QueueState) => Record<string, string>,
    mutate: (state: QueueState) => A
  ): Effect.Effect<Written<A>, CommitError> {
    return Effect.suspend(() => {
      const cas = this.cas
      const state = this.state
      this.durableStats = state.stats()
      this.dirty = true
      state.begin()
      let result: A
      let encoded: { readonly parts: ReadonlyArray<Uint8Array>; readonly length: number }
      const seq = state.seq + 1
      const commitId = `${leaderId}:${seq}`
      const started = performance.now()
      try {
        result = mutate(state)
        encoded = state.encodeParts(seq, commitId)
      } catch (defect) {
        state.rollback()
        this.settle()
        return Effect.die(defect)
      }
      const encodeMs = performance.now() - started
      return cas.commit(encoded.parts, this.version, commitId, metadata(state)).pipe(
        Effect.map((version) => {
          this.version = version
          const events = state.committed(seq, commitId, encoded.length)
          return { result, events, bytes: encoded.length, encodeMs }
        }),
        Effect.onExit((exit) =>
          Effect.sync(() => {
            if (Exit.isFailure(exit)) state.rollback()
            this.settle()
          })
        ),
        // Once sent, a write's outcome must be learnt: an interrupted one would leave us unsure.
        Effect.uninterruptible
      )
    })
  }

  private settle(): void {
    this.dirty = false
    const waiters = this.waiters.splice(0)
    for (const wake of waiters) wake()
  }
}
