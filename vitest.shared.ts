import type { UserWorkspaceConfig } from "vitest/config"

// Tests import workspace packages from source (the "source" export condition), so `vitest`
// needs no build first; `tsc -b` still type-checks and builds dist/ for publishing.
export const shared: UserWorkspaceConfig = {
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"], externalConditions: ["source"] } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
}
