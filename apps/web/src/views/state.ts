/** The decoded `queue.json` as the broker holds it, with the version, epoch and seq it is at. */
import type { RawState } from "@osqueue/types"
import { type App, describeError, type View } from "../app.js"
import { h, json, replace } from "../dom.js"
import { throttle } from "../signal.js"

export const stateView = (app: App): View => {
  const facts = h("dl", { class: "facts" })
  const text = h("pre", { class: "raw-state", tabindex: 0 })
  const follow = h("input", { type: "checkbox", name: "follow" })
  const element = h(
    "section",
    { "aria-labelledby": "state-title" },
    h("h2", { id: "state-title" }, "Raw state"),
    h("p", { class: "muted" }, "queue.json as the broker last committed it (a follower's copy may lag a moment)."),
    h(
      "div",
      { class: "toolbar" },
      h("button", { type: "button", onclick: () => void load() }, "Refresh"),
      h("label", { class: "check" }, follow, " Refresh on every change (at most once a second)"),
      h("button", {
        type: "button",
        onclick: () => void navigator.clipboard?.writeText(text.textContent ?? "").then(() => app.toast("Copied", "ok"))
      }, "Copy JSON")
    ),
    facts,
    text
  )
  let visible = false

  const render = (raw: RawState) => {
    const row = (label: string, value: string) => [h("dt", {}, label), h("dd", { class: "mono" }, value)]
    const size = new TextEncoder().encode(JSON.stringify(raw.state)).length
    replace(
      facts,
      row("Version", raw.version ?? "none yet"),
      row("Epoch", String(raw.epoch)),
      row("Seq", String(raw.seq)),
      row("Commit", raw.commitId),
      row("Read from", raw.role),
      row("Size", `${size.toLocaleString()} bytes`)
    )
    text.textContent = json(raw.state)
  }

  const load = async () => {
    try {
      render(await app.connection.run((c) => c.state))
    } catch (error) {
      replace(facts)
      text.textContent = describeError(error)
    }
  }
  const reload = throttle(1_000, () => void (visible && follow.checked && load()))
  app.model.changed.subscribe(reload)

  return {
    element,
    show: () => {
      visible = true
      void load()
    },
    hide: () => {
      visible = false
    }
  }
}
