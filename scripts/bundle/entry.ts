/**
 * Entry point of the single-file bundle of the `osqueue` command (`pnpm bundle`, docs/deploy.md).
 * Run from source or from the package, the broker finds the dashboard relative to its own module
 * (`apps/osqueue/dashboard`); in the bundle every module is one file, so the dashboard is the
 * `dashboard/` folder shipped beside it. `OSQUEUE_DASHBOARD_DIR` still wins when it is set.
 * The command is imported only after that, so it reads the variable as the user would have set it.
 */
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

if (!process.env.OSQUEUE_DASHBOARD_DIR) {
  process.env.OSQUEUE_DASHBOARD_DIR = join(dirname(fileURLToPath(import.meta.url)), "dashboard")
}

await import("../../apps/osqueue/src/bin.js")
