import { describe, expect, it } from "vitest";
import { MemoryRepository } from "../../src/repository/index.js";
import { type ContractAggregate, describeRepositoryContract } from "../../src/testing/index.js";

describeRepositoryContract("MemoryRepository", async (config) => new MemoryRepository<ContractAggregate>(config));

describe("MemoryRepository extras", () => {
  it("expires by its clock, per save TTL included", async () => {
    let now = 1_000_000;
    const repo = new MemoryRepository<ContractAggregate>({ ttlSeconds: 10, history: 5, clock: () => new Date(now) });
    await repo.save({ id: "a", name: "a", n: 1 });
    await repo.save({ id: "b", name: "b", n: 1 }, { ttlSeconds: 2 });
    now += 2_000;
    expect(await repo.exists("a")).toBe(true);
    expect(await repo.exists("b")).toBe(false);
    now += 8_000;
    expect(await repo.exists("a")).toBe(false);
    expect((await repo.save({ id: "a", name: "a", n: 2 })).version).toBe(1);
  });

  it("rejects bad limits at construction", () => {
    expect(() => new MemoryRepository({ history: 0 })).toThrow(/history/);
    expect(() => new MemoryRepository({ history: 65 })).toThrow(/history/);
    expect(() => new MemoryRepository({ ttlSeconds: -1 })).toThrow(/ttlSeconds/);
  });
});
