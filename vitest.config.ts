import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/globalSetup.ts"],
    // Two cores: at most two test files (and so two TCG guests) at a time.
    pool: "forks",
    // --expose-gc: memory-bound tests measure what is retained, not garbage not yet collected.
    poolOptions: { forks: { maxForks: 2, minForks: 1, execArgv: ["--expose-gc"] } },
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ["default"]
  }
})
