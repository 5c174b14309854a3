import { defineProject, mergeConfig } from "vitest/config"
import { shared } from "../../vitest.shared.js"

export default mergeConfig(
  shared,
  defineProject({
    test: {
      // The browser test serves a fresh build of the dashboard: made once, before it runs.
      globalSetup: ["./test/build.ts"],
      testTimeout: 120_000,
      // The page learns most of what it shows from the stats, pushed once a second: a poll's
      // default 1 s races the next push, and lost that race on a busy CI machine.
      expect: { poll: { timeout: 5_000 } }
    }
  })
)
