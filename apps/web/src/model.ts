/**
 * What the dashboard knows, fed by the `watch` stream: the latest stats (every second), the
 * broker's history of 5 s samples for the charts and the per-type table, the activity log, and a notice to the views when jobs changed (they
 * reload what they show; nothing polls the job list). Job events are taken in batches, four
 * times a second: at 100 jobs/s a busy queue sends hundreds a second, and each one told to the
 * views on its own would cost the page more than the broker.
 */
import type { JobEvent, LeaderInfo, Stats, StatsSample, WatchEvent } from "@osqueue/types"
import { Signal } from "./signal.js"

export type Activity =
  | { readonly _tag: "Job"; readonly event: JobEvent }
  | { readonly _tag: "Leader"; readonly at: number; readonly leader: LeaderInfo }

/** The broker's ring: half an hour of 5 s samples. */
const maxSamples = 360
const maxActivity = 1_000
/** How often job events reach the views, at most. */
const flushMs = 250

export class Model {
  readonly stats = new Signal<Stats | undefined>(undefined)
  /** The broker's samples (`watch({ history: true })`), oldest first: the charts and the per-type table. */
  readonly samples = new Signal<ReadonlyArray<StatsSample>>([])
  /** Newest first. */
  readonly activity = new Signal<ReadonlyArray<Activity>>([])
  /** Job types seen in stats or events, for the filters and the worker. */
  readonly types = new Signal<ReadonlyArray<string>>([])
  /** The ids of jobs that changed since the views last looked, emitted in bursts. */
  readonly changed = new Signal<ReadonlySet<string>>(new Set())
  /** Job events not yet told to the views, oldest first. */
  private pending: Array<Activity> = []
  private flushTimer: ReturnType<typeof setTimeout> | undefined

  readonly onEvent = (event: WatchEvent): void => {
    switch (event._tag) {
      case "Stats": {
        this.stats.set(event.stats)
        this.learnTypes(Object.keys(event.stats.queuedByType))
        return
      }
      case "History": {
        // On a reconnect the broker sends its whole ring again: keep what is newer than ours.
        const last = this.samples.value.at(-1)?.at ?? 0
        const fresh = event.samples.filter((sample) => sample.at > last)
        if (fresh.length === 0) return
        this.samples.set([...this.samples.value, ...fresh].slice(-maxSamples))
        this.learnTypes(Object.keys(fresh.at(-1)!.byType))
        return
      }
      case "Leader":
        return this.log({ _tag: "Leader", at: Date.now(), leader: event.leader })
      case "Job":
        return this.log({ _tag: "Job", event: event.event })
    }
  }

  clearActivity(): void {
    this.pending = []
    this.activity.set([])
  }

  private log(entry: Activity): void {
    this.pending.push(entry)
    this.flushTimer ??= setTimeout(() => this.flush(), flushMs)
  }

  private flush(): void {
    this.flushTimer = undefined
    const fresh = this.pending.slice(-maxActivity).reverse()
    this.pending = []
    const jobs = fresh.flatMap((entry) => (entry._tag === "Job" ? [entry.event] : []))
    this.activity.set([...fresh, ...this.activity.value.slice(0, maxActivity - fresh.length)])
    this.learnTypes(jobs.map((event) => event.type))
    if (jobs.length > 0) this.changed.set(new Set(jobs.map((event) => event.jobId)))
  }

  private learnTypes(types: ReadonlyArray<string>): void {
    const known = this.types.value
    const fresh = new Set(types.filter((type) => !known.includes(type)))
    if (fresh.size > 0) this.types.set([...known, ...fresh].sort())
  }
}
