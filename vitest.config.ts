import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/nats/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Crash and server tests spawn processes; two cores: keep file parallelism modest.
    maxWorkers: 2,
    reporters: ["default"],
  },
});
