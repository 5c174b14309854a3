/**
 * Effect's metric snapshot in the Prometheus text exposition format (version 0.0.4), following
 * Prometheus's naming conventions so that `promtool check metrics` passes: base units (seconds,
 * bytes), counters ending in `_total`, help text on every family. osqueue's own instruments are
 * named so at their definition; the Effect runtime's fiber metrics, on by default in every Effect
 * program, are renamed here (`runtimeMetrics`), and any other metric an embedding app registers
 * still gets a `_total` on a counter and a help line.
 */
import type * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"

const sanitize = (name: string): string => name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/^([0-9])/, "_$1")

const escapeLabel = (value: string): string => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")

const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const labels = (pairs: ReadonlyArray<readonly [string, string]>): string =>
  pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${sanitize(k)}="${escapeLabel(v)}"`).join(",")}}`

const number = (n: number | bigint): string =>
  typeof n === "bigint"
    ? n.toString()
    : Number.isNaN(n)
    ? "NaN"
    : n === Infinity
    ? "+Inf"
    : n === -Infinity
    ? "-Inf"
    : String(n)

interface Renamed {
  readonly name: string
  readonly help: string
  /** Exposed as a gauge although Effect keeps it as a counter (it goes down too). */
  readonly gauge?: boolean
  /** Divides a histogram's bounds and sum: Effect measures fiber lifetimes in milliseconds. */
  readonly divisor?: number
  /** A label made redundant by the name (`time_unit`, once the unit is in the name). */
  readonly dropLabel?: string
}

/** The Effect runtime's fiber metrics (`effect/Metric` `fiberStarted` …), under conforming names. */
const runtimeMetrics: ReadonlyMap<string, Renamed> = new Map([
  ["effect_fiber_started", { name: "effect_fiber_started_total", help: "Fibers started by the Effect runtime" }],
  ["effect_fiber_successes", { name: "effect_fiber_successes_total", help: "Fibers that ended in success" }],
  ["effect_fiber_failures", { name: "effect_fiber_failures_total", help: "Fibers that ended in failure" }],
  ["effect_fiber_active", { name: "effect_fibers_active", help: "Fibers running now", gauge: true }],
  ["effect_fiber_lifetimes", {
    name: "effect_fiber_lifetime_seconds",
    help: "How long fibers lived",
    divisor: 1000,
    dropLabel: "time_unit"
  }]
])

interface Family {
  readonly type: string
  readonly help: string
  readonly lines: Array<string>
}

export const format = (snapshot: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  const family = (name: string, type: string, help: string): Array<string> => {
    let found = families.get(name)
    if (found === undefined) {
      found = { type, help, lines: [] }
      families.set(name, found)
    }
    return found.lines
  }

  for (const { metricKey, metricState } of snapshot) {
    const renamed = runtimeMetrics.get(metricKey.name)
    const base = sanitize(renamed?.name ?? metricKey.name)
    const help = renamed?.help ?? Option.getOrElse(metricKey.description, () => `${base} (no description given)`)
    const tags = metricKey.tags
      .filter((label) => label.key !== renamed?.dropLabel)
      .map((label) => [label.key, label.value] as const)
    const divisor = renamed?.divisor ?? 1

    if (MetricState.isCounterState(metricState)) {
      if (renamed?.gauge === true) {
        family(base, "gauge", help).push(`${base}${labels(tags)} ${number(metricState.count)}`)
      } else {
        const name = base.endsWith("_total") ? base : `${base}_total`
        family(name, "counter", help).push(`${name}${labels(tags)} ${number(metricState.count)}`)
      }
    } else if (MetricState.isGaugeState(metricState)) {
      family(base, "gauge", help).push(`${base}${labels(tags)} ${number(metricState.value)}`)
    } else if (MetricState.isHistogramState(metricState)) {
      const lines = family(base, "histogram", help)
      // Effect's buckets are cumulative already, and its boundaries end with +Inf (which
      // MetricBoundaries appends): the +Inf bucket is written once, below, as the count.
      for (const [bound, count] of metricState.buckets) {
        if (bound !== Infinity) {
          lines.push(`${base}_bucket${labels([...tags, ["le", number(bound / divisor)]])} ${count}`)
        }
      }
      lines.push(`${base}_bucket${labels([...tags, ["le", "+Inf"]])} ${metricState.count}`)
      lines.push(`${base}_sum${labels(tags)} ${number(metricState.sum / divisor)}`)
      lines.push(`${base}_count${labels(tags)} ${metricState.count}`)
    } else if (MetricState.isFrequencyState(metricState)) {
      const name = base.endsWith("_total") ? base : `${base}_total`
      const lines = family(name, "counter", help)
      for (const [value, count] of metricState.occurrences) {
        lines.push(`${name}${labels([...tags, ["value", value]])} ${count}`)
      }
    } else if (MetricState.isSummaryState(metricState)) {
      const lines = family(base, "summary", help)
      for (const [quantile, value] of metricState.quantiles) {
        if (Option.isSome(value)) {
          lines.push(`${base}${labels([...tags, ["quantile", String(quantile)]])} ${number(value.value / divisor)}`)
        }
      }
      lines.push(`${base}_sum${labels(tags)} ${number(metricState.sum / divisor)}`)
      lines.push(`${base}_count${labels(tags)} ${metricState.count}`)
    }
  }

  const out: Array<string> = []
  for (const [name, { help, lines, type }] of [...families].sort(([a], [b]) => a.localeCompare(b))) {
    out.push(`# HELP ${name} ${escapeHelp(help)}`)
    out.push(`# TYPE ${name} ${type}`)
    out.push(...lines)
  }
  return out.join("\n") + "\n"
}
