import { defineProject, mergeConfig } from "vitest/config"
import { shared } from "../../vitest.shared.js"

export default mergeConfig(
  shared,
  defineProject({
    test: {
      // The browser test serves a fresh build of the dashboard: made once, before it runs.
      globalSetup: ["./test/build.ts"],
      testTimeout: 120_000
    }
  })
)
