import { describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../src/index.js";
import { MemoryRepository } from "../src/memory/index.js";
import { REPOSITORY_DEFAULTS } from "../src/repository/index.js";
import { type ContractAggregate, describeRepositoryContract } from "../src/testing/index.js";

describeRepositoryContract("MemoryRepository", async (options) => MemoryRepository.open<ContractAggregate>(options));

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

  it("a newest version that expires first (its own shorter TTL) takes the older versions with it", async () => {
    let now = 1_000_000;
    const repo = new MemoryRepository<ContractAggregate>({ ttlSeconds: 100, history: 5, clock: () => new Date(now) });
    await repo.save({ id: "a", name: "a", n: 1 });
    await repo.save({ id: "a", name: "a", n: 2 }, { ttlSeconds: 1 });
    now += 1_000;
    expect(await repo.load("a")).toBeUndefined();
    expect(await repo.history("a")).toEqual([]);
    expect((await repo.list()).items).toEqual([]);
    now += 1_000;
    expect(await repo.load("a")).toBeUndefined();
  });

  it("rejects bad limits at construction", () => {
    expect(() => new MemoryRepository({ history: 0 })).toThrow(/history/);
    expect(() => new MemoryRepository({ history: 65 })).toThrow(/history/);
    expect(() => new MemoryRepository({ ttlSeconds: -1 })).toThrow(/ttlSeconds/);
  });

  it("refuses invalid and unknown options with a ConfigurationError naming the option", () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ history: 0 }, /MemoryRepository option history must be an integer >= 1 and <= 64, got 0/],
      [{ ttlSeconds: Number.NaN }, /option ttlSeconds must be a finite number >= 0, got NaN/],
      [{ maxValueBytes: 0 }, /option maxValueBytes must be an integer >= 1, got 0/],
      [{ idOf: "id" }, /option idOf must be a function/],
      [{ clock: 1 }, /option clock must be a function/],
      [{ aggregateType: "a/b" }, /option aggregateType must be an entity type name/],
      [{ maxAggregateBytes: 10 }, /has no option maxAggregateBytes; it is called maxValueBytes/],
      [{ bucket: "x" }, /MemoryRepository has no option bucket \(its options: aggregateType, clock, history/],
    ];
    for (const [options, message] of cases) {
      let caught: unknown;
      try {
        new MemoryRepository(options);
      } catch (error) {
        caught = error;
      }
      expect(isStatelogError(caught, ErrorCode.Configuration), JSON.stringify(options)).toBe(true);
      expect(String(caught)).toMatch(message);
    }
  });

  it("open() gives an open repository; defaults come from REPOSITORY_DEFAULTS", async () => {
    const repo = await MemoryRepository.open<ContractAggregate>({ aggregateType: "thing" });
    expect(repo).toBeInstanceOf(MemoryRepository);
    expect(repo.aggregateType).toBe("thing");
    expect((await repo.save({ id: "a", name: "a", n: 1 })).version).toBe(1);
    await repo.save({ id: "a", name: "a", n: 2 });
    expect((await repo.history("a")).map((h) => h.version)).toEqual([REPOSITORY_DEFAULTS.history + 1]);
    expect((await repo.list()).perPage).toBe(REPOSITORY_DEFAULTS.pageSize);
    await repo.close();
    await repo.close();
    await expect(repo.load("a")).rejects.toMatchObject({ code: ErrorCode.Closed });
    expect(() => repo.clear()).toThrow(/closed/);
  });

  it("a bad per-save ttlSeconds is a ValidationError and writes nothing", async () => {
    const repo = new MemoryRepository<ContractAggregate>();
    await expect(repo.save({ id: "a", name: "a", n: 1 }, { ttlSeconds: -1 })).rejects.toMatchObject({
      code: ErrorCode.Validation,
    });
    expect(await repo.exists("a")).toBe(false);
  });
});
