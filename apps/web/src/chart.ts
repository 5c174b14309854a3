/** Small SVG line charts for the overview: no library, scaled to the largest value shown. */
import { h } from "./dom.js"
import type { Sample } from "./model.js"

export interface Series {
  readonly label: string
  /** Picks the line's colour from the stylesheet (`.series-<name>`). */
  readonly name: string
  readonly values: ReadonlyArray<number>
}

const svgNs = "http://www.w3.org/2000/svg"
const width = 300
const height = 80

const svg = <K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] => {
  const element = document.createElementNS(svgNs, tag)
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value))
  return element
}

const format = (value: number): string =>
  value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2).replace(/\.?0+$/, "") || "0"

export const lineChart = (title: string, unit: string, series: ReadonlyArray<Series>): HTMLElement => {
  const longest = Math.max(2, ...series.map((s) => s.values.length))
  const top = Math.max(1, ...series.flatMap((s) => s.values)) * 1.1
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img", "aria-label": title })
  for (const fraction of [0.25, 0.5, 0.75]) {
    chart.appendChild(svg("line", { x1: 0, x2: width, y1: height * fraction, y2: height * fraction, class: "grid" }))
  }
  for (const s of series) {
    const offset = longest - s.values.length
    const points = s.values.map((v, i) => `${(((i + offset) / (longest - 1)) * width).toFixed(1)},${(height - (v / top) * height).toFixed(1)}`)
    if (points.length > 1) chart.appendChild(svg("polyline", { points: points.join(" "), class: `series series-${s.name}` }))
  }
  return h(
    "figure",
    { class: "chart" },
    h("figcaption", {}, h("strong", {}, title), h("span", { class: "muted" }, ` max ${format(top / 1.1)} ${unit}`)),
    chart,
    h(
      "ul",
      { class: "legend" },
      series.map((s) =>
        h("li", {}, h("span", { class: `swatch series-${s.name}` }), `${s.label} `, h("strong", {}, format(s.values.at(-1) ?? 0)))
      )
    )
  )
}

/** Per-second rate of a counter between consecutive samples. */
export const rate = (samples: ReadonlyArray<Sample>, counter: (sample: Sample) => number): Array<number> =>
  samples.slice(1).map((sample, i) => {
    const previous = samples[i]!
    const seconds = Math.max(0.001, (sample.at - previous.at) / 1000)
    return Math.max(0, (counter(sample) - counter(previous)) / seconds)
  })
