import { describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/index.js";
import { MemoryEventStore, MemorySnapshotStore } from "../../src/memory/index.js";
import { EVENT_SOURCED_REPOSITORY_DEFAULTS, SNAPSHOT_STORE_DEFAULTS } from "../../src/repository/index.js";
import { describeEventSourcedRepositoryContract, describeSnapshotStoreContract } from "../../src/testing/index.js";

describeEventSourcedRepositoryContract(
  "MemoryEventStore + MemorySnapshotStore",
  { eventStore: (options) => MemoryEventStore.open(options), snapshots: () => MemorySnapshotStore.open() },
  { propertyRuns: 200 },
);

describeSnapshotStoreContract("MemorySnapshotStore", () => MemorySnapshotStore.open());
describeSnapshotStoreContract(
  "MemorySnapshotStore, maxSnapshotsPerStream 2",
  () => MemorySnapshotStore.open({ maxSnapshotsPerStream: 2 }),
  {
    maxSnapshotsPerStream: 2,
  },
);

describe("MemorySnapshotStore options", () => {
  it("refuses a bad maxSnapshotsPerStream or an unknown option with a ConfigurationError naming it", () => {
    for (const [options, pattern] of [
      [
        { maxSnapshotsPerStream: 0 },
        /MemorySnapshotStore option maxSnapshotsPerStream must be an integer >= 1 and <= 64, got 0/,
      ],
      [{ maxSnapshotsPerStream: 65 }, /maxSnapshotsPerStream/],
      [{ directory: "x" }, /MemorySnapshotStore has no option directory/],
    ] as const) {
      let caught: unknown;
      try {
        new MemorySnapshotStore(options as never);
      } catch (error) {
        caught = error;
      }
      expect(isStatelogError(caught, ErrorCode.Configuration)).toBe(true);
      expect(String(caught)).toMatch(pattern);
    }
  });

  it("the defaults objects hold the documented defaults", () => {
    expect(SNAPSHOT_STORE_DEFAULTS.maxSnapshotsPerStream).toBe(8);
    expect(EVENT_SOURCED_REPOSITORY_DEFAULTS).toMatchObject({
      snapshotEvery: 0,
      snapshotVersion: 1,
      maxEvents: Infinity,
    });
    expect(EVENT_SOURCED_REPOSITORY_DEFAULTS.retry).toEqual({ maxAttempts: 10, backoffMs: 2, maxBackoffMs: 200 });
  });
});
