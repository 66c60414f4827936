/**
 * Without the optional Kafka client package, importing statelog/kafka
 * still works, and opening anything says what to install (and how to
 * build the native binding offline), instead of failing with a bare
 * module-not-found error.
 */
import { describe, expect, it, vi } from "vitest";
import { ErrorCode, isPeerMissingError } from "../../src/index.js";

vi.mock("@confluentinc/kafka-javascript", () => {
  throw new Error("Cannot find package '@confluentinc/kafka-javascript'");
});

describe("statelog/kafka without @confluentinc/kafka-javascript", () => {
  it("imports, and open throws PeerMissingError with the install line and the build hint", async () => {
    const kafka = await import("../../src/kafka/index.js");
    const error = await kafka.KafkaStore.open({ brokers: "localhost:1", topic: "t", partitions: 1 }).catch(
      (e: unknown) => e,
    );
    expect(isPeerMissingError(error), String(error)).toBe(true);
    expect(error).toMatchObject({
      code: ErrorCode.PeerMissing,
      module: "statelog/kafka",
      packages: ["@confluentinc/kafka-javascript"],
    });
    const message = (error as Error).message;
    expect(message).toContain('statelog/kafka needs the package "@confluentinc/kafka-javascript"');
    expect(message).toContain("`npm install @confluentinc/kafka-javascript`");
    expect(message).toContain("CKJS_LINKING=dynamic npm rebuild @confluentinc/kafka-javascript");
    // Why loading failed: the loader's own error, kept as the cause.
    expect((error as Error).cause).toBeInstanceOf(Error);
    expect(message).toContain(`could not be loaded: ${((error as Error).cause as Error).message}`);
    // The writer and the reader load the client on open too.
    const writer = await kafka.ChangelogWriter.open({ brokers: "localhost:1", topic: "t", partitions: 1 }).catch(
      (e: unknown) => e,
    );
    expect(isPeerMissingError(writer), String(writer)).toBe(true);
    const reader = await kafka.ChangelogReader.open({ brokers: "localhost:1", topic: "t", partitions: 1 }).catch(
      (e: unknown) => e,
    );
    expect(isPeerMissingError(reader), String(reader)).toBe(true);
  });
});
