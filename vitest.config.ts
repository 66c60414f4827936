import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/nats/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Crash and server tests spawn processes; two cores: keep file parallelism modest.
    maxWorkers: 2,
    // Each test file in a process of its own (vitest's default, pinned): tests that block libuv's thread pool
    // (test/file/fsync-on.test.ts) or lower the descriptor limit must not reach other files' tests.
    pool: "forks",
    reporters: ["default"],
  },
});
