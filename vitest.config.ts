import { defineConfig } from "vitest/config"

// Every package and app with a test/ folder is a vitest project; each has its own vitest.config.ts.
export default defineConfig({ test: { projects: ["packages/*", "apps/*"] } })
