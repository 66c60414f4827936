/**
 * Without the optional NATS and Kafka client packages, the CLI's opener
 * fails with the library's PeerMissingError (what to install), and the
 * command exits with code 5; file and memory targets still open.
 */
import { describe, expect, it, vi } from "vitest";
import { ExitCode, exitCodeOf, formatError } from "../../src/cli/errors.js";
import { openTarget } from "../../src/cli/targets.js";
import { isPeerMissingError } from "../../src/index.js";

vi.mock("@nats-io/transport-node", () => {
  throw new Error("Cannot find package '@nats-io/transport-node'");
});
vi.mock("@nats-io/jetstream", () => {
  throw new Error("Cannot find package '@nats-io/jetstream'");
});
vi.mock("@nats-io/kv", () => {
  throw new Error("Cannot find package '@nats-io/kv'");
});
vi.mock("@confluentinc/kafka-javascript", () => {
  throw new Error("Cannot find package '@confluentinc/kafka-javascript'");
});

describe("openTarget without the NATS and Kafka client packages", () => {
  it("gives the PeerMissingError of statelog/nats for every NATS target", async () => {
    for (const url of ["nats://127.0.0.1:1/b", "nats+events://127.0.0.1:1/S", "nats+models://127.0.0.1:1/m"]) {
      const error = await openTarget(url).catch((e: unknown) => e);
      expect(isPeerMissingError(error), String(error)).toBe(true);
      expect((error as Error).message).toContain("npm install @nats-io/transport-node @nats-io/jetstream @nats-io/kv");
      expect(formatError(error)).toMatch(/\[STATELOG_PEER_MISSING\]$/);
      expect(exitCodeOf(error)).toBe(ExitCode.PeerMissing);
    }
  });

  it("gives the PeerMissingError of statelog/kafka for a Kafka target", async () => {
    const error = await openTarget("kafka://127.0.0.1:1/topic?partitions=1").catch((e: unknown) => e);
    expect(isPeerMissingError(error), String(error)).toBe(true);
    expect((error as Error).message).toContain("`npm install @confluentinc/kafka-javascript`");
    expect(exitCodeOf(error)).toBe(ExitCode.PeerMissing);
  });

  it("still opens memory targets", async () => {
    await using target = await openTarget("memory:");
    expect(await target.store?.load("n")).toEqual([]);
  });
});
