/**
 * Builds the dashboard into a temporary directory before the browser test runs, so the test
 * serves what the sources are now (and never overwrites the `dashboard/` of the `osqueue`
 * package that a running `npm start` serves).
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "vite"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    dashboardDir: string
  }
}

export default async function setup(project: TestProject) {
  const root = fileURLToPath(new URL("..", import.meta.url))
  const outDir = await mkdtemp(join(tmpdir(), "osqueue-dashboard-"))
  await build({ root, logLevel: "warn", build: { outDir, emptyOutDir: true } })
  project.provide("dashboardDir", outDir)
  return () => rm(outDir, { recursive: true, force: true })
}
