/**
 * The suites' options carry their unit in their name (`timeoutMs`,
 * `modelTimeoutMs`); an old spelling or a typo is refused with a hint,
 * before any test is registered.
 */
import { describe, expect, it } from "vitest";
import { isConfigurationError } from "../../src/index.js";
import { MemoryEventStore, MemoryRepository, MemoryStore } from "../../src/memory/index.js";
import {
  describeEventStoreContract,
  describeRepositoryContract,
  describeStoreContract,
} from "../../src/testing/index.js";

function refusal(register: () => void): Error {
  try {
    register();
  } catch (error) {
    expect(isConfigurationError(error), String(error)).toBe(true);
    return error as Error;
  }
  throw new Error("the suite accepted the option");
}

describe("statelog/testing options", () => {
  it("describeStoreContract refuses timeout with a hint to timeoutMs", () => {
    const error = refusal(() => describeStoreContract("x", () => new MemoryStore(), { timeout: 5 } as never));
    expect(error.message).toContain("describeStoreContract has no option timeout; it is called timeoutMs");
  });

  it("describeEventStoreContract refuses timeout and modelTimeout with hints", () => {
    const factory = () => new MemoryEventStore();
    expect(refusal(() => describeEventStoreContract("x", factory, { timeout: 5 } as never)).message).toContain(
      "describeEventStoreContract has no option timeout; it is called timeoutMs",
    );
    expect(refusal(() => describeEventStoreContract("x", factory, { modelTimeout: 5 } as never)).message).toContain(
      "describeEventStoreContract has no option modelTimeout; it is called modelTimeoutMs",
    );
  });

  it("describeRepositoryContract refuses timeout with a hint to timeoutMs, and a typo", () => {
    const factory = async () => new MemoryRepository<never>({ aggregateType: "T" } as never);
    expect(refusal(() => describeRepositoryContract("x", factory as never, { timeout: 5 } as never)).message).toContain(
      "describeRepositoryContract has no option timeout; it is called timeoutMs",
    );
    expect(
      refusal(() => describeRepositoryContract("x", factory as never, { ttlSecond: 1 } as never)).message,
    ).toContain("describeRepositoryContract has no option ttlSecond");
  });
});
