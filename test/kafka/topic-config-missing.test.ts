/**
 * Without the optional peer dependency @platformatic/kafka, the check of an
 * existing topic's cleanup.policy says what to install (or how to skip it),
 * instead of failing with a bare module-not-found error.
 */
import { describe, expect, it, vi } from "vitest";

vi.mock("@platformatic/kafka", () => {
  throw new Error("Cannot find package '@platformatic/kafka'");
});

describe("describeTopicConfig without @platformatic/kafka", () => {
  it("throws KafkaAdminUnsupportedError naming the package and the way out", async () => {
    const { describeTopicConfig } = await import("../../src/kafka/topic-config.js");
    const { isKafkaAdminUnsupportedError } = await import("../../src/kafka/index.js");
    const error = await describeTopicConfig("127.0.0.1:9", "orders", ["cleanup.policy"], { timeoutMs: 1000 }).catch(
      (e: unknown) => e,
    );
    expect(isKafkaAdminUnsupportedError(error)).toBe(true);
    expect((error as Error).message).toContain("npm install @platformatic/kafka");
    expect((error as Error).message).toContain('checkConfig: "skip"');
    expect((error as Error).message).toContain("--entity-name orders");
  });
});
