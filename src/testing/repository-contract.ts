/**
 * The Repository conformance suite: one set of tests every `Repository<T>`
 * passes unchanged: versions, CAS
 * races, history limits, TTL expiry, delete and paging.
 */

import { ErrorCode, isStatelogError, type VersionConflictError } from "../index.js";
import type { Repository } from "../repository/index.js";
import { expectCode } from "./assert.js";
import { checkContractOptions, uniqueName } from "./fixtures.js";
import { afterEach, describe, expect, it } from "./vitest.js";

/** The aggregate the suite stores. */
export interface ContractAggregate {
  id: string;
  name: string;
  n: number;
  tags?: string[];
}

/** The options the suite opens a repository with: what its factory receives. */
export interface RepositoryFactoryOptions {
  /** A fresh aggregate type (unique per test, so tests never collide on a shared server). */
  aggregateType: string;
  /** Versions to keep. */
  history: number;
  /** Expiry in seconds (0 = never). */
  ttlSeconds: number;
}

/** Options of {@link describeRepositoryContract}. */
export interface RepositoryContractOptions {
  /**
   * Opens a second repository on the same data as `first` (another
   * client/connection), for the two-writer race. @default the same instance
   */
  second?: (
    first: Repository<ContractAggregate>,
    config: RepositoryFactoryOptions,
  ) => Promise<Repository<ContractAggregate>>;
  /** The TTL, in seconds, of the expiry test. @default 1 */
  ttlSeconds?: number;
  /** Per-test timeout, in milliseconds. @default 30000 */
  timeoutMs?: number;
}

const agg = (id: string, n: number, name = `agg ${id}`): ContractAggregate => ({ id, name, n });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Registers the Repository conformance tests for one backend.
 * @param factory opens a repository for `config` (tests use unique aggregate types)
 */
export function describeRepositoryContract(
  name: string,
  factory: (config: RepositoryFactoryOptions) => Promise<Repository<ContractAggregate>>,
  options: RepositoryContractOptions = {},
): void {
  checkContractOptions("describeRepositoryContract", options, ["second", "ttlSeconds", "timeoutMs"]);
  const open: Repository<ContractAggregate>[] = [];
  async function fresh(config: Partial<RepositoryFactoryOptions> = {}): Promise<Repository<ContractAggregate>> {
    const full = { aggregateType: uniqueName("agg"), history: 1, ttlSeconds: 0, ...config };
    const repo = await factory(full);
    open.push(repo);
    return repo;
  }

  describe(`Repository contract: ${name}`, { timeout: options.timeoutMs ?? 30_000 }, () => {
    afterEach(async () => {
      await Promise.all(open.splice(0).map((r) => r.close().catch(() => undefined)));
    });

    describe("versions", () => {
      it("the first save is version 1, each save adds one; load returns the latest", async () => {
        const repo = await fresh();
        const before = Date.now();
        const first = await repo.save(agg("a", 1));
        expect(first.id).toBe("a");
        expect(first.version).toBe(1);
        expect(first.savedAt).toBeInstanceOf(Date);
        expect(first.savedAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
        expect((await repo.save(agg("a", 2))).version).toBe(2);
        expect((await repo.save(agg("a", 3))).version).toBe(3);
        expect(await repo.load("a")).toEqual(agg("a", 3));
        const v = await repo.loadVersioned("a");
        expect(v?.version).toBe(3);
        expect(v?.aggregate).toEqual(agg("a", 3));
        expect(await repo.exists("a")).toBe(true);
      });

      it("versions count per aggregate, not per repository", async () => {
        const repo = await fresh();
        await repo.save(agg("a", 1));
        await repo.save(agg("a", 2));
        expect((await repo.save(agg("b", 1))).version).toBe(1);
      });

      it("a missing aggregate loads as undefined and does not exist", async () => {
        const repo = await fresh();
        expect(await repo.load("nope")).toBeUndefined();
        expect(await repo.loadVersioned("nope")).toBeUndefined();
        expect(await repo.exists("nope")).toBe(false);
        expect(await repo.history("nope")).toEqual([]);
      });

      it("loaded aggregates are copies", async () => {
        const repo = await fresh();
        const a = { ...agg("a", 1), tags: ["x"] };
        await repo.save(a);
        a.tags.push("mutated");
        const loaded = await repo.load("a");
        expect(loaded?.tags).toEqual(["x"]);
        loaded?.tags?.push("again");
        expect((await repo.load("a"))?.tags).toEqual(["x"]);
      });

      it("aggregate types are isolated", async () => {
        const one = await fresh();
        const two = await fresh();
        await one.save(agg("same", 1));
        expect(await two.load("same")).toBeUndefined();
        expect((await two.list()).total).toBe(0);
      });
    });

    describe("expected version", () => {
      it("a matching expected version saves; a stale one conflicts with expected and actual", async () => {
        const repo = await fresh();
        await repo.save(agg("a", 1), { expectedVersion: 0 });
        await repo.save(agg("a", 2), { expectedVersion: 1 });
        const error = (await expectCode(
          repo.save(agg("a", 99), { expectedVersion: 1 }),
          ErrorCode.VersionConflict,
        )) as VersionConflictError;
        expect(error.expected).toBe(1);
        expect(error.actual).toBe(2);
        expect(await repo.load("a")).toEqual(agg("a", 2));
      });

      it("expected version 0 means: must not exist yet", async () => {
        const repo = await fresh();
        await repo.save(agg("a", 1));
        const error = (await expectCode(
          repo.save(agg("a", 2), { expectedVersion: 0 }),
          ErrorCode.VersionConflict,
        )) as VersionConflictError;
        expect(error.actual).toBe(1);
        await expectCode(repo.save(agg("new", 1), { expectedVersion: 3 }), ErrorCode.VersionConflict);
        expect(await repo.exists("new")).toBe(false);
      });

      it("rejects an invalid expected version", async () => {
        const repo = await fresh();
        await expectCode(repo.save(agg("a", 1), { expectedVersion: -1 }), ErrorCode.Validation);
        await expectCode(repo.save(agg("a", 1), { expectedVersion: 1.5 }), ErrorCode.Validation);
      });

      it("rejects an invalid per-save ttlSeconds (a call argument: a ValidationError) and writes nothing", async () => {
        const repo = await fresh();
        for (const ttlSeconds of [-1, Number.NaN, Number.POSITIVE_INFINITY, "5" as unknown as number]) {
          await expectCode(repo.save(agg("a", 1), { ttlSeconds }), ErrorCode.Validation);
        }
        expect(await repo.exists("a")).toBe(false);
      });
    });

    describe("races", () => {
      it("two writers with the same expected version: one wins, the loser gets the conflict", async () => {
        const repo = await fresh();
        const config = { aggregateType: repo.aggregateType, history: 1, ttlSeconds: 0 };
        const other = options.second ? await options.second(repo, config) : repo;
        if (other !== repo) open.push(other);
        await repo.save(agg("a", 0));
        for (let round = 1; round <= 5; round++) {
          const results = await Promise.allSettled([
            repo.save(agg("a", round * 10 + 1), { expectedVersion: round }),
            other.save(agg("a", round * 10 + 2), { expectedVersion: round }),
          ]);
          const won = results.filter((r) => r.status === "fulfilled");
          const lost = results.filter((r) => r.status === "rejected");
          expect(won).toHaveLength(1);
          expect(lost).toHaveLength(1);
          const reason = (lost[0] as PromiseRejectedResult).reason as VersionConflictError;
          expect(isStatelogError(reason, ErrorCode.VersionConflict), String(reason)).toBe(true);
          expect(reason.expected).toBe(round);
          expect(reason.actual).toBe(round + 1);
          const winner = results.findIndex((r) => r.status === "fulfilled");
          expect((won[0] as PromiseFulfilledResult<{ version: number }>).value.version).toBe(round + 1);
          expect((await other.load("a"))?.n).toBe(round * 10 + 1 + winner);
        }
      });

      it("concurrent saves without an expected version all land, each with its own version", async () => {
        const repo = await fresh({ history: 16 });
        const results = await Promise.all(Array.from({ length: 12 }, (_, i) => repo.save(agg("a", i))));
        expect(results.map((r) => r.version).sort((x, y) => x - y)).toEqual(
          Array.from({ length: 12 }, (_, i) => i + 1),
        );
        const history = await repo.history("a");
        expect(history.map((h) => h.version)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
        const byVersion = new Map(results.map((r, i) => [r.version, i]));
        for (const h of history) expect(h.aggregate?.n).toBe(byVersion.get(h.version));
      });
    });

    describe("history", () => {
      it("keeps the last `history` versions, oldest first", async () => {
        const repo = await fresh({ history: 3 });
        for (let i = 1; i <= 5; i++) await repo.save(agg("a", i));
        const history = await repo.history("a");
        expect(history.map((h) => [h.version, h.aggregate?.n, h.deleted])).toEqual([
          [3, 3, false],
          [4, 4, false],
          [5, 5, false],
        ]);
        for (const h of history) expect(h.savedAt).toBeInstanceOf(Date);
      });

      it("history 1 keeps only the latest", async () => {
        const repo = await fresh({ history: 1 });
        await repo.save(agg("a", 1));
        await repo.save(agg("a", 2));
        expect((await repo.history("a")).map((h) => h.version)).toEqual([2]);
      });
    });

    describe("delete", () => {
      it("removes the aggregate, takes a version, and a later save continues from it", async () => {
        const repo = await fresh({ history: 5 });
        await repo.save(agg("a", 1));
        await repo.save(agg("a", 2));
        expect(await repo.delete("a")).toBe(true);
        expect(await repo.load("a")).toBeUndefined();
        expect(await repo.exists("a")).toBe(false);
        expect(await repo.delete("a")).toBe(false);
        expect((await repo.history("a")).map((h) => [h.version, h.deleted])).toEqual([
          [1, false],
          [2, false],
          [3, true],
        ]);
        const stale = (await expectCode(
          repo.save(agg("a", 9), { expectedVersion: 2 }),
          ErrorCode.VersionConflict,
        )) as VersionConflictError;
        expect(stale.actual).toBe(3);
        expect((await repo.save(agg("a", 4), { expectedVersion: 3 })).version).toBe(4);
        expect(await repo.load("a")).toEqual(agg("a", 4));
      });

      it("delete with a stale expected version conflicts and keeps the aggregate", async () => {
        const repo = await fresh();
        await repo.save(agg("a", 1));
        await repo.save(agg("a", 2));
        await expectCode(repo.delete("a", { expectedVersion: 1 }), ErrorCode.VersionConflict);
        expect(await repo.exists("a")).toBe(true);
        expect(await repo.delete("a", { expectedVersion: 2 })).toBe(true);
      });

      it("deleting a missing aggregate returns false", async () => {
        const repo = await fresh();
        expect(await repo.delete("never")).toBe(false);
        expect(await repo.history("never")).toEqual([]);
      });
    });

    describe("paging", () => {
      it("lists live aggregates in id order with the pagination formula", async () => {
        const repo = await fresh();
        const ids = ["g", "c", "a", "f", "b", "e", "d", "x"];
        for (const id of ids) await repo.save(agg(id, 1));
        await repo.delete("x");
        const p1 = await repo.list({ offset: 0, limit: 3 });
        expect(p1.items.map((a) => a.id)).toEqual(["a", "b", "c"]);
        expect([p1.total, p1.page, p1.perPage, p1.totalPages, p1.hasMore]).toEqual([7, 1, 3, 3, true]);
        const p2 = await repo.list({ offset: 3, limit: 3 });
        expect(p2.items.map((a) => a.id)).toEqual(["d", "e", "f"]);
        expect([p2.page, p2.hasMore]).toEqual([2, true]);
        const p3 = await repo.list({ offset: 6, limit: 3 });
        expect(p3.items.map((a) => a.id)).toEqual(["g"]);
        expect([p3.page, p3.totalPages, p3.hasMore]).toEqual([3, 3, false]);
        const odd = await repo.list({ offset: 2, limit: 4 });
        expect(odd.items.map((a) => a.id)).toEqual(["c", "d", "e", "f"]);
        expect([odd.page, odd.totalPages, odd.hasMore]).toEqual([1, 2, true]);
        const past = await repo.list({ offset: 10, limit: 3 });
        expect(past.items).toEqual([]);
        expect([past.total, past.page, past.hasMore]).toEqual([7, 4, false]);
        const all = await repo.list();
        expect(all.items.map((a) => a.id)).toEqual(["a", "b", "c", "d", "e", "f", "g"]);
        expect([all.perPage, all.totalPages, all.hasMore]).toEqual([20, 1, false]);
      });

      it("an empty repository lists an empty first page", async () => {
        const repo = await fresh();
        const page = await repo.list({ limit: 5 });
        expect([page.items, page.total, page.page, page.totalPages, page.hasMore]).toEqual([[], 0, 1, 0, false]);
      });

      it("rejects a bad offset or limit", async () => {
        const repo = await fresh();
        await expectCode(repo.list({ limit: 0 }), ErrorCode.Validation);
        await expectCode(repo.list({ offset: -1 }), ErrorCode.Validation);
      });
    });

    describe("TTL", () => {
      it("an aggregate is present at once and gone after the TTL", async (ctx) => {
        const ttl = options.ttlSeconds ?? 1;
        const repo = await fresh({ ttlSeconds: ttl });
        if (!repo.capabilities.ttl) {
          ctx.skip(`${name} does not declare ttl`);
          return;
        }
        await repo.save(agg("short", 1));
        expect(await repo.load("short")).toEqual(agg("short", 1));
        expect(await repo.exists("short")).toBe(true);
        expect((await repo.list()).total).toBe(1);
        // Expiry is not instant on a server: poll until gone, up to TTL + 5 s.
        const deadline = Date.now() + ttl * 1000 + 5000;
        await sleep(ttl * 1000);
        while ((await repo.exists("short")) && Date.now() < deadline) await sleep(100);
        expect(await repo.exists("short")).toBe(false);
        expect(await repo.load("short")).toBeUndefined();
        expect((await repo.list()).total).toBe(0);
        expect((await repo.save(agg("short", 2))).version).toBe(1);
      });

      it("TTL 0 means no expiry", async () => {
        const repo = await fresh({ ttlSeconds: 0 });
        await repo.save(agg("forever", 1));
        await sleep(1200);
        expect(await repo.exists("forever")).toBe(true);
      });
    });

    describe("bad input", () => {
      it("rejects an aggregate without an id, a bad id, or non-JSON data, writing nothing", async () => {
        const repo = await fresh();
        await expectCode(repo.save({ name: "x", n: 1 } as unknown as ContractAggregate), ErrorCode.Validation);
        await expectCode(repo.save(agg("", 1)), ErrorCode.InvalidName);
        await expectCode(repo.save(agg("bad\u0000id", 1)), ErrorCode.InvalidName);
        await expectCode(repo.save({ ...agg("a", 1), n: 10n } as unknown as ContractAggregate), ErrorCode.InvalidValue);
        expect(await repo.exists("a")).toBe(false);
        await expectCode(repo.load(""), ErrorCode.InvalidName);
      });

      it("round-trips hostile ids", async () => {
        const repo = await fresh();
        const ids = ["a/b", "..", "*", ">", "a.b", "é日本", "with space", "_5f", "x".repeat(255)];
        for (const id of ids) await repo.save(agg(id, ids.indexOf(id)));
        for (const id of ids) expect((await repo.load(id))?.n).toBe(ids.indexOf(id));
        expect((await repo.list({ limit: 100 })).items.map((a) => a.id)).toEqual([...ids].sort());
      });
    });

    describe("closed", () => {
      it("every call after close fails with a ClosedError", async () => {
        const repo = await fresh();
        await repo.close();
        await expectCode(repo.save(agg("a", 1)), ErrorCode.Closed);
        await expectCode(repo.load("a"), ErrorCode.Closed);
        await expectCode(repo.exists("a"), ErrorCode.Closed);
        await expectCode(repo.delete("a"), ErrorCode.Closed);
        await expectCode(repo.history("a"), ErrorCode.Closed);
        await expectCode(repo.list(), ErrorCode.Closed);
      });
    });
  });
}
