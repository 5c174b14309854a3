/**
 * Asks before something that cannot be undone (a delete, a purge): a modal `<dialog>` that says
 * what will go, with the count, and two buttons. It answers true only for the confirming button;
 * Escape, the cancel button or closing the dialog any other way answer false. The dialog leaves
 * the page once answered, and the keyboard goes back where it was.
 */
import { h } from "./dom.js"

export interface ConfirmOptions {
  readonly title: string
  readonly body: ReadonlyArray<Node | string>
  /** The confirming button's text: says what it does ("Delete 3 jobs"), not "OK". */
  readonly confirm: string
  readonly cancel?: string
}

export const confirmAction = (options: ConfirmOptions): Promise<boolean> =>
  new Promise((resolve) => {
    const returnTo = document.activeElement instanceof HTMLElement ? document.activeElement : undefined
    const keep = h("button", { type: "submit", value: "cancel", autofocus: true }, options.cancel ?? "Keep them")
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      h(
        "form",
        { method: "dialog" },
        h("h2", { id: "confirm-title" }, options.title),
        h(
          "div",
          { class: "confirm-body" },
          options.body.map((part) => (typeof part === "string" ? h("p", {}, part) : part))
        ),
        h(
          "div",
          { class: "form-actions" },
          h("button", { type: "submit", value: "confirm", class: "danger" }, options.confirm),
          keep
        )
      )
    )
    dialog.addEventListener("close", () => {
      dialog.remove()
      returnTo?.focus()
      resolve(dialog.returnValue === "confirm")
    })
    document.body.appendChild(dialog)
    dialog.showModal()
    // The safe choice has the keyboard: Enter keeps the jobs.
    keep.focus()
  })
