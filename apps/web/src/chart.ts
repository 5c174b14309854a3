/**
 * Small SVG line charts for the overview, no library: a time axis, y ticks on one or two axes
 * (a series in other units gets the right-hand one, so a ratio near 0.3 does not lie flat under
 * rates near 40), and a tooltip that follows the pointer with every series' value at that time.
 */
import { clock } from "./dom.js"
import { h } from "./dom.js"

export interface Series {
  readonly label: string
  /** Picks the line's colour from the stylesheet (`.series-<name>`). */
  readonly name: string
  /** One value per time; null where there is none (no job ran, so no run time). */
  readonly values: ReadonlyArray<number | null>
  /** The right-hand axis, with its own scale and unit. */
  readonly right?: boolean
}

export interface Axis {
  readonly unit: string
}

const svgNs = "http://www.w3.org/2000/svg"
const width = 600
const height = 200
const plot = { left: 52, right: 52, top: 12, bottom: 28 }

const svg = <K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  text?: string
): SVGElementTagNameMap[K] => {
  const element = document.createElementNS(svgNs, tag)
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value))
  if (text !== undefined) element.textContent = text
  return element
}

export const format = (value: number): string =>
  value >= 10_000
    ? `${(value / 1000).toFixed(0)}k`
    : value >= 100
    ? value.toFixed(0)
    : value >= 10
    ? value.toFixed(1).replace(/\.0$/, "")
    : value.toFixed(2).replace(/\.?0+$/, "") || "0"

/** A round step giving about four ticks from 0 to `max`, and the top tick. */
export const ticks = (max: number): ReadonlyArray<number> => {
  const top = max > 0 ? max : 1
  const rough = top / 4
  const power = 10 ** Math.floor(Math.log10(rough))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough)!
  return Array.from({ length: Math.ceil(top / step - 1e-9) + 1 }, (_, i) => i * step)
}

export const lineChart = (
  title: string,
  times: ReadonlyArray<number>,
  series: ReadonlyArray<Series>,
  axes: { readonly left: Axis; readonly right?: Axis }
): HTMLElement => {
  const innerWidth = width - plot.left - plot.right
  const innerHeight = height - plot.top - plot.bottom
  const start = times[0] ?? 0
  const end = times.at(-1) ?? 1
  const span = Math.max(1, end - start)
  const x = (at: number) => plot.left + ((at - start) / span) * innerWidth
  const scaleOf = (right: boolean) => {
    const values = series.filter((s) => (s.right ?? false) === right).flatMap((s) =>
      s.values.filter((v): v is number => v !== null)
    )
    const marks = ticks(Math.max(0, ...values))
    const top = marks.at(-1)!
    return { marks, y: (v: number) => plot.top + innerHeight - (v / top) * innerHeight }
  }
  const left = scaleOf(false)
  const right = axes.right === undefined ? undefined : scaleOf(true)

  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title })
  for (const mark of left.marks) {
    const y = left.y(mark)
    chart.append(svg("line", { x1: plot.left, x2: width - plot.right, y1: y, y2: y, class: "grid" }))
    chart.append(svg("text", { x: plot.left - 6, y: y + 5, class: "tick", "text-anchor": "end" }, format(mark)))
  }
  if (right !== undefined) {
    for (const mark of right.marks) {
      chart.append(
        svg("text", { x: width - plot.right + 6, y: right.y(mark) + 5, class: "tick tick-right" }, format(mark))
      )
    }
  }
  if (times.length > 1) {
    for (let i = 0; i <= 4; i++) {
      const at = start + (span * i) / 4
      // Minutes apart: hours and minutes; closer: seconds too.
      const label = span >= 10 * 60_000 ? clock(at).slice(0, 5) : clock(at)
      chart.append(
        svg("text", {
          x: x(at),
          y: height - 4,
          class: "tick",
          "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle"
        }, label)
      )
    }
  }
  for (const s of series) {
    const scale = s.right === true && right !== undefined ? right : left
    // A gap where a value is missing: the line does not invent one.
    let path = ""
    let pen = "M"
    s.values.forEach((v, i) => {
      if (v === null || times[i] === undefined) return void (pen = "M")
      path += `${pen}${x(times[i]!).toFixed(1)},${scale.y(v).toFixed(1)}`
      pen = "L"
    })
    if (path !== "") {
      chart.append(svg("path", { d: path, class: `series series-${s.name}${s.right === true ? " series-right" : ""}` }))
    }
  }
  const cursor = svg("line", { y1: plot.top, y2: plot.top + innerHeight, class: "cursor", visibility: "hidden" })
  chart.append(cursor)

  const tip = h("div", { class: "chart-tip", hidden: true, role: "status" })
  const latest = (s: Series) => [...s.values].reverse().find((v) => v !== null) ?? null
  const unitOf = (s: Series) => (s.right === true ? axes.right?.unit : axes.left.unit) ?? ""
  const figure = h(
    "figure",
    { class: "chart" },
    h(
      "figcaption",
      {},
      h("strong", {}, title),
      h("span", { class: "muted" }, axes.left.unit, axes.right === undefined ? "" : ` · right: ${axes.right.unit}`)
    ),
    h("div", { class: "chart-area" }, chart, tip),
    h(
      "ul",
      { class: "legend" },
      series.map((s) => {
        const value = latest(s)
        return h(
          "li",
          {},
          h("span", { class: `swatch series-${s.name}${s.right === true ? " series-right" : ""}` }),
          `${s.label} `,
          h("strong", {}, value === null ? "–" : `${format(value)}`),
          ` ${unitOf(s)}`
        )
      })
    )
  )

  const point = (event: PointerEvent) => {
    if (times.length === 0) return
    const box = chart.getBoundingClientRect()
    const at = start + (((event.clientX - box.left) / box.width) * width - plot.left) / innerWidth * span
    let index = 0
    for (let i = 1; i < times.length; i++) if (Math.abs(times[i]! - at) < Math.abs(times[index]! - at)) index = i
    const px = x(times[index]!)
    cursor.setAttribute("x1", String(px))
    cursor.setAttribute("x2", String(px))
    cursor.setAttribute("visibility", "visible")
    tip.hidden = false
    tip.replaceChildren(
      h("strong", {}, clock(times[index]!)),
      ...series.map((s) => {
        const v = s.values[index] ?? null
        return h(
          "div",
          {},
          h("span", { class: `swatch series-${s.name}${s.right === true ? " series-right" : ""}` }),
          `${s.label}: `,
          v === null ? "–" : `${format(v)} ${unitOf(s)}`
        )
      })
    )
    const share = (px / width) * 100
    tip.style.left = share > 60 ? "" : `${share + 2}%`
    tip.style.right = share > 60 ? `${102 - share}%` : ""
  }
  chart.addEventListener("pointermove", point)
  chart.addEventListener("pointerleave", () => {
    cursor.setAttribute("visibility", "hidden")
    tip.hidden = true
  })
  return figure
}
