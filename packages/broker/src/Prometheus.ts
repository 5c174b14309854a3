/** Effect's metric snapshot in the Prometheus text exposition format (version 0.0.4). */
import * as MetricState from "effect/MetricState"
import type * as MetricPair from "effect/MetricPair"
import * as Option from "effect/Option"

const sanitize = (name: string): string => name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/^([0-9])/, "_$1")

const escapeLabel = (value: string): string => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")

const labels = (pairs: ReadonlyArray<readonly [string, string]>): string =>
  pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${sanitize(k)}="${escapeLabel(v)}"`).join(",")}}`

const number = (n: number | bigint): string =>
  typeof n === "bigint" ? n.toString() : Number.isNaN(n) ? "NaN" : n === Infinity ? "+Inf" : n === -Infinity ? "-Inf" : String(n)

export const format = (snapshot: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, { type: string; help: string; lines: Array<string> }>()
  const family = (name: string, type: string, help: string) => {
    let found = families.get(name)
    if (found === undefined) {
      found = { type, help, lines: [] }
      families.set(name, found)
    }
    return found
  }

  for (const { metricKey, metricState } of snapshot) {
    const name = sanitize(metricKey.name)
    const help = Option.getOrElse(metricKey.description, () => "")
    const tags = metricKey.tags.map((label) => [label.key, label.value] as const)
    if (MetricState.isCounterState(metricState)) {
      family(name, "counter", help).lines.push(`${name}${labels(tags)} ${number(metricState.count)}`)
    } else if (MetricState.isGaugeState(metricState)) {
      family(name, "gauge", help).lines.push(`${name}${labels(tags)} ${number(metricState.value)}`)
    } else if (MetricState.isHistogramState(metricState)) {
      const lines = family(name, "histogram", help).lines
      // Effect's buckets are already cumulative; Prometheus wants that plus +Inf.
      for (const [bound, count] of metricState.buckets) {
        lines.push(`${name}_bucket${labels([...tags, ["le", number(bound)]])} ${count}`)
      }
      lines.push(`${name}_bucket${labels([...tags, ["le", "+Inf"]])} ${metricState.count}`)
      lines.push(`${name}_sum${labels(tags)} ${number(metricState.sum)}`)
      lines.push(`${name}_count${labels(tags)} ${metricState.count}`)
    } else if (MetricState.isFrequencyState(metricState)) {
      const lines = family(name, "counter", help).lines
      for (const [value, count] of metricState.occurrences) {
        lines.push(`${name}${labels([...tags, ["value", value]])} ${count}`)
      }
    } else if (MetricState.isSummaryState(metricState)) {
      const lines = family(name, "summary", help).lines
      for (const [quantile, value] of metricState.quantiles) {
        if (Option.isSome(value)) lines.push(`${name}${labels([...tags, ["quantile", String(quantile)]])} ${number(value.value)}`)
      }
      lines.push(`${name}_sum${labels(tags)} ${number(metricState.sum)}`)
      lines.push(`${name}_count${labels(tags)} ${metricState.count}`)
    }
  }

  const out: Array<string> = []
  for (const [name, { type, help, lines }] of [...families].sort(([a], [b]) => a.localeCompare(b))) {
    if (help !== "") out.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`)
    out.push(`# TYPE ${name} ${type}`)
    out.push(...lines)
  }
  return out.join("\n") + "\n"
}
