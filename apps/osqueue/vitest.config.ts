import { configDefaults, defineProject } from "vitest/config"
import { shared } from "../../vitest.shared.js"

// The fuzz suite runs on its own (`pnpm test:fuzz`, vitest.fuzz.config.ts; .ci/run runs it after
// `npm test`): it holds answers to a 2 s budget, which other test files on the same two cores
// would eat into.
export default defineProject({
  ...shared,
  test: { ...shared.test, exclude: [...configDefaults.exclude, "test/fuzz.test.ts"] }
})
