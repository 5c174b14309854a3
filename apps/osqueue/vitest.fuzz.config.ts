import { defineConfig } from "vitest/config"
import { shared } from "../../vitest.shared.js"

/** The fuzz suite alone (`pnpm test:fuzz`): see vitest.config.ts for why it is apart. */
export default defineConfig({ ...shared, test: { ...shared.test, include: ["test/fuzz.test.ts"] } })
