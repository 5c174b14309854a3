/**
 * The dashboard: a header (connection, leader, pause, token), one view per route
 * (`#/`, `#/jobs`, `#/jobs/<id>`, `#/activity`, `#/workers`, `#/schedules`, `#/produce`, `#/work`, `#/state`), and a
 * banner that says what is wrong when the broker cannot be used. Views are built once and
 * kept, so a running worker or auto-submit goes on while another view is shown. What the token's
 * role may not do (`GET /v1/whoami`, `Roles`) is not offered: its tabs and buttons are hidden.
 */
import "./style.css"
import { Roles, type Stats } from "@osqueue/types"
import { type App, describeError, type View } from "./app.js"
import { brokerUrl, queue, savedToken, saveToken, showQueue, timeZone, transport } from "./config.js"
import { Connection, type Status } from "./connection.js"
import { h, relative, replace } from "./dom.js"
import { Model } from "./model.js"
import { activityView } from "./views/activity.js"
import { jobView } from "./views/job.js"
import { jobsView } from "./views/jobs.js"
import { overviewView } from "./views/overview.js"
import { producerView } from "./views/producer.js"
import { schedulesView } from "./views/schedules.js"
import { stateView } from "./views/state.js"
import { workerView } from "./views/worker.js"
import { workersView } from "./views/workers.js"

const model = new Model()
const connection = new Connection({ url: brokerUrl, transport, token: savedToken, queue, onEvent: model.onEvent })

const toasts = h("div", { class: "toasts", role: "status", "aria-live": "polite" })
const toast: App["toast"] = (message, kind = "ok") => {
  const item = h("div", { class: `toast toast-${kind}` }, message)
  toasts.appendChild(item)
  // A burst of actions shows its latest few, not a wall over the page.
  while (toasts.childElementCount > 3) toasts.firstElementChild?.remove()
  setTimeout(() => item.remove(), kind === "error" ? 8_000 : 3_000)
}

const app: App = {
  connection,
  model,
  toast,
  act: async (f) => {
    try {
      return await connection.run(f)
    } catch (error) {
      // While disconnected the banner already says why; a toast per refused load would be noise.
      if (connection.status.value._tag === "Connected") toast(describeError(error), "error")
      return undefined
    }
  },
  may: (operation) => {
    const role = connection.role.value
    return role === undefined || Roles.may(role, operation)
  }
}

/** A route whose `needs` the role may not run is hidden, and its path shows the overview. */
const routes: ReadonlyArray<
  { readonly path: string; readonly label: string; readonly view: View; readonly needs?: Roles.Operation }
> = [
  { path: "", label: "Overview", view: overviewView(app) },
  { path: "jobs", label: "Jobs", view: jobsView(app) },
  { path: "activity", label: "Activity", view: activityView(app) },
  { path: "workers", label: "Workers", view: workersView(app), needs: "Workers" },
  { path: "schedules", label: "Schedules", view: schedulesView(app), needs: "ListSchedules" },
  { path: "produce", label: "Producer", view: producerView(app), needs: "EnqueueMany" },
  { path: "work", label: "Worker", view: workerView(app), needs: "Claim" },
  { path: "state", label: "Raw state", view: stateView(app) }
]
const detail = jobView(app)

// The header.
const pill = h("span", { class: "pill", "data-status": "Connecting" }, "connecting…")
const leaderText = h("span", { class: "leader muted" })
const roleText = h("span", { class: "role muted", hidden: true })
const pauseButton = h("button", { type: "button", class: "small", disabled: true }, "Pause all")
const tokenButton = h("button", { type: "button", class: "small" }, "Token")
// The queue picker: shown when the broker serves more than one queue (docs/architecture.md, "Named queues").
const queuePicker = h("select", {
  class: "small",
  "aria-label": "Queue",
  title: "The queue this page shows",
  hidden: true,
  onchange: (event: Event) => showQueue((event.target as HTMLSelectElement).value)
})
connection.queues.subscribe((names) => {
  const current = queue ?? "default"
  queuePicker.hidden = names.length < 2 && names.every((name) => name === current)
  replace(queuePicker, ...names.map((name) => h("option", { value: name, selected: name === current }, name)))
})
const zoneButton = h("button", {
  type: "button",
  class: "small",
  title: "Show times in UTC or in this browser's time zone",
  onclick: () => timeZone.update((zone) => (zone === "utc" ? "local" : "utc"))
})
timeZone.subscribe((zone) => {
  zoneButton.textContent = zone === "utc" ? "UTC" : "local time"
  zoneButton.setAttribute("aria-label", `Times in ${zone === "utc" ? "UTC" : "local time"}: switch`)
})
const nav = h(
  "nav",
  { class: "tabs", "aria-label": "Views" },
  routes.map((r) => h("a", { href: `#/${r.path}`, "data-route": r.path }, r.label))
)
const banner = h("div", { class: "banner", role: "alert", hidden: true })

/** The status whose banner the reader closed: it stays closed until the status changes, or they act. */
let dismissed: Status["_tag"] | undefined

/** Connects again at the reader's asking: what comes of it is shown even if they closed the banner before. */
const reconnect = () => {
  dismissed = undefined
  void connection.connect()
}

/** Says what is wrong above the view; the reader may close it (the pill still says it, and Token reopens the form). */
const showBanner = (...content: ReadonlyArray<Node | string>) => {
  banner.hidden = false
  replace(
    banner,
    h("div", { class: "banner-body" }, content),
    h("button", {
      type: "button",
      class: "small dismiss",
      "aria-label": "Dismiss this message",
      title: "Dismiss",
      onclick: () => void (banner.hidden = true)
    }, "×")
  )
}
const main = h("main", { id: "main", tabindex: -1 }, routes.map((r) => r.view.element), detail.element)

document.body.append(
  // Not a #main link: the hash is the route.
  h("a", {
    href: "#/",
    class: "skip",
    onclick: (event: Event) => {
      event.preventDefault()
      main.focus()
    }
  }, "Skip to content"),
  h(
    "header",
    { class: "top" },
    h("h1", {}, h("a", { href: "#/" }, "osqueue")),
    nav,
    h("div", { class: "status" }, queuePicker, pill, leaderText, roleText, pauseButton, zoneButton, tokenButton)
  ),
  banner,
  main,
  toasts
)

// The token form: shown in the banner when the broker asks for one, or from the header.
const tokenForm = (reason: string | undefined) => {
  const input = h("input", {
    type: "password",
    name: "token",
    autocomplete: "off",
    placeholder: "OSQUEUE_TOKEN",
    "aria-label": "Broker token",
    value: savedToken() ?? ""
  })
  return h(
    "form",
    {
      class: "token-form",
      onsubmit: (event: Event) => {
        event.preventDefault()
        saveToken(input.value.trim())
        reconnect()
      }
    },
    h(
      "p",
      {},
      reason === undefined
        ? "The token is sent as a bearer token and kept in this tab only."
        : [
          "The broker refused this page: ",
          h("strong", {}, reason),
          ". Enter the broker's token (its OSQUEUE_TOKEN); it is kept in this tab only."
        ]
    ),
    input,
    h("button", { type: "submit", class: "primary" }, "Connect"),
    savedToken() === undefined ? null : h("button", {
      type: "button",
      onclick: () => {
        saveToken(undefined)
        reconnect()
      }
    }, "Forget the token")
  )
}

tokenButton.addEventListener("click", () => {
  showBanner(tokenForm(undefined))
  banner.querySelector("input")?.focus()
})

banner.addEventListener("click", (event) => {
  if (event.target instanceof HTMLElement && event.target.classList.contains("dismiss")) {
    dismissed = connection.status.value._tag
  }
})

/** "in 3 s", counting down while the page waits to reconnect. */
const countdown = (retryAt: number) => h("span", { class: "countdown", "data-at": retryAt }, retryIn(retryAt))
const retryIn = (retryAt: number) => (retryAt - Date.now() < 1_000 ? "now" : relative(retryAt))
setInterval(() => {
  for (const element of banner.querySelectorAll<HTMLElement>(".countdown")) {
    element.textContent = retryIn(Number(element.dataset["at"]))
  }
}, 1_000)

const renderStatus = (status: Status) => {
  pill.dataset["status"] = status._tag
  // What the page shows was true when it last heard from the broker: dimmed while it cannot hear.
  document.body.classList.toggle("stale", status._tag === "Unreachable" || status._tag === "NoLeader")
  // A retry passes through Connecting: that does not bring a closed banner back.
  if (status._tag !== dismissed && status._tag !== "Connecting") dismissed = undefined
  const show = (...content: ReadonlyArray<Node | string>) => dismissed === undefined && showBanner(...content)
  switch (status._tag) {
    case "Connecting":
      pill.textContent = "connecting…"
      break
    case "Connected":
      pill.textContent = status.transport === "ws" ? "live · WebSocket" : "live · HTTP"
      banner.hidden = true
      if (status.fellBack) {
        show("The WebSocket did not open (a proxy may block it): the dashboard uses RPC over HTTP instead.")
      }
      break
    case "Unreachable":
      pill.textContent = "broker unreachable"
      show(
        h(
          "p",
          {},
          h("strong", {}, "Cannot reach the broker. "),
          `${status.reason}. Trying again `,
          countdown(status.retryAt),
          `; is it running at ${brokerUrl}? The numbers below are from before, not live.`,
          " ",
          h("button", { type: "button", class: "small", onclick: reconnect }, "Retry now")
        )
      )
      break
    case "Unauthorized":
      pill.textContent = "token needed"
      show(tokenForm(status.reason))
      banner.querySelector("input")?.focus()
      break
    case "NoLeader":
      pill.textContent = "no leader"
      show(
        h(
          "p",
          {},
          h("strong", {}, "No leader yet. "),
          "This broker follows, and no broker leads the queue right now (one takes over within the election TTL). Trying again ",
          countdown(status.retryAt),
          "."
        )
      )
  }
  pauseButton.disabled = status._tag !== "Connected"
}
connection.status.subscribe(renderStatus)

const renderLeader = () => {
  const broker = connection.broker.value
  const leader = connection.leader.value
  if (broker === undefined || leader === undefined) return void (leaderText.textContent = "")
  leaderText.textContent = broker.role === "leader"
    ? `leader · epoch ${leader.epoch}`
    : `follower of ${leader.leaderUrl ?? "nobody yet"} · epoch ${leader.epoch}`
}
connection.broker.subscribe(renderLeader)
connection.leader.subscribe(renderLeader)

const renderPause = (stats: Stats | undefined) => {
  const paused = stats?.paused.all === true
  pauseButton.textContent = paused ? "Resume all" : "Pause all"
  pauseButton.setAttribute("aria-pressed", String(paused))
  pauseButton.classList.toggle("paused", paused)
  document.body.classList.toggle("queue-paused", paused)
}
model.stats.subscribe(renderPause)
model.stats.subscribe((stats) => {
  document.title = stats === undefined
    ? "osqueue dashboard"
    : `${stats.paused.all ? "paused · " : ""}${stats.counts.queued} queued · ${stats.counts.running} running · ${
      queue === undefined ? "" : `${queue} · `
    }osqueue`
})
pauseButton.addEventListener("click", () => {
  const paused = model.stats.value?.paused.all === true
  void app.act((c) => (paused ? c.resume() : c.pause())).then((result) => {
    if (result === undefined) return
    toast(result.all ? "Claiming is paused: workers get no jobs until you resume" : "Claiming resumed", "ok")
    if (model.stats.value !== undefined) renderPause({ ...model.stats.value, paused: result })
  })
})

const allowed = (r: (typeof routes)[number]) => r.needs === undefined || app.may(r.needs)

connection.role.subscribe((role) => {
  roleText.hidden = role === undefined || role === "admin"
  roleText.textContent = role === "read" ? "read-only token" : `${role ?? ""} token`
  pauseButton.hidden = !app.may("Pause")
  for (const r of routes) {
    const link = nav.querySelector(`a[data-route="${r.path}"]`)
    if (link instanceof HTMLElement) link.hidden = !allowed(r)
  }
})

// Routing: `#/jobs/job-3?x=y` → route "jobs", params ["job-3"], query x=y.
let shown: View | undefined
const route = () => {
  const [path = "", search = ""] = window.location.hash.replace(/^#\/?/, "").split("?")
  const [name = "", ...params] = path.split("/").filter((part) => part !== "")
  const found = routes.find((r) => r.path === name && allowed(r)) ?? routes[0]!
  const target = name === "jobs" && params.length > 0 ? detail : found.view
  if (shown !== target) shown?.hide?.()
  for (const view of [...routes.map((r) => r.view), detail]) view.element.hidden = view !== target
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset["route"] === (target === detail ? "jobs" : found.path)) link.setAttribute("aria-current", "page")
    else link.removeAttribute("aria-current")
  }
  shown = target
  target.show(params, new URLSearchParams(search))
}
window.addEventListener("hashchange", route)
route()
// What the shown view loaded before the connection was up failed: load it again.
connection.status.subscribe((status) => status._tag === "Connected" && route())
void connection.connect()
