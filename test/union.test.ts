import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { Change, ChangeInput } from "../src/core/change.js";
import {
  ErrorCode,
  isPartialWriteError,
  isStatelogError,
  isUnsupportedError,
  PartialWriteError,
  UnavailableError,
} from "../src/core/errors.js";
import type { LoadOptions, SaveOptions, Store } from "../src/core/store.js";
import { FileStore } from "../src/file/index.js";
import { MemoryStore } from "../src/memory/index.js";
import { describeChangeFeedContract, describeStoreContract } from "../src/testing/index.js";
import {
  isUnionLoadError,
  UNION_STORE_DEFAULTS,
  UnionErrorCode,
  UnionLoadError,
  UnionStore,
} from "../src/union/index.js";
import { tempDir } from "./file/helpers.js";
import { childCommand } from "./helpers/child-command.js";

/** A store that fails on demand, around a memory store. */
class FlakyStore implements Store {
  readonly inner = new MemoryStore();
  readonly capabilities = this.inner.capabilities;
  failSave = false;
  failLoad = false;
  save(changes: readonly ChangeInput[], options?: SaveOptions): Promise<void> {
    if (this.failSave) return Promise.reject(new UnavailableError("disk on fire"));
    return this.inner.save(changes, options);
  }
  load(namespace: string, options?: LoadOptions): Promise<Change[]> {
    if (this.failLoad) return Promise.reject(new UnavailableError("cannot read"));
    return this.inner.load(namespace, options);
  }
  listNamespaces() {
    return this.inner.listNamespaces();
  }
  compact(namespace: string) {
    return this.inner.compact(namespace);
  }
  close() {
    return this.inner.close();
  }
  [Symbol.asyncDispose]() {
    return this.close();
  }
}

const set = (entityId: string, entity: unknown, timestamp?: Date): ChangeInput => ({
  namespace: "ws",
  changeType: "set",
  entityType: "item",
  entityId,
  entity,
  ...(timestamp ? { timestamp } : {}),
});

describeStoreContract(
  "UnionStore(memory, memory)",
  () => new UnionStore({ stores: [new MemoryStore(), new MemoryStore()] }),
);
const unionDirs = new WeakMap<Store, string>();
const fileAndMemory = async (dir = tempDir("statelog-union-")): Promise<Store> => {
  const union = new UnionStore({ stores: [await FileStore.open({ directory: dir }), new MemoryStore()] });
  unionDirs.set(union, dir);
  return union;
};
describeStoreContract("UnionStore(file, memory)", () => fileAndMemory(), {
  propertyRuns: 20,
  // A restart: the file store reopens on its directory, the memory store starts empty.
  reopen: async (store) => {
    await store.close();
    return fileAndMemory(unionDirs.get(store));
  },
});
describeChangeFeedContract(
  "UnionStore(memory, memory)",
  () => new UnionStore({ stores: [new MemoryStore(), new MemoryStore()] }),
  {
    makeBehind: async (store, namespace, cursor) => {
      ((store as UnionStore).stores[0] as MemoryStore).clear(namespace);
      return cursor;
    },
  },
);
describeStoreContract(
  "UnionStore(memory, memory) read policy any",
  () => new UnionStore({ stores: [new MemoryStore(), new MemoryStore()], readPolicy: "any" }),
  { propertyRuns: 20 },
);

describe("UnionStore", () => {
  it("watches through its first store, and declares no watch when the first store cannot", async () => {
    const first = new MemoryStore();
    const union = new UnionStore({ stores: [first, new MemoryStore()] });
    expect(union.capabilities.watch).toBe(true);
    await union.save([set("1", { v: 1 })]);
    const feed = union.watch("ws");
    const it = feed[Symbol.asyncIterator]();
    const event = (await it.next()).value;
    expect(event?.type === "change" && event.change.entityId).toBe("1");
    expect((await it.next()).value?.type).toBe("caught-up");
    feed.close();
    await union.close();

    const flaky = new UnionStore({ stores: [new FlakyStore(), new MemoryStore()] });
    expect(flaky.capabilities.watch).toBe(false);
    expect(() => flaky.watch("ws")).toThrow(expect.objectContaining({ code: ErrorCode.Unsupported }));
    expect(isUnsupportedError(new Error("x"))).toBe(false);
    await flaky.close();
  });

  it("saves to every store, with the same timestamps", async () => {
    const a = new MemoryStore();
    const b = new MemoryStore();
    const union = new UnionStore({ stores: [a, b] });
    await union.save([set("1", { v: 1 })]);
    const [la, lb] = [await a.load("ws"), await b.load("ws")];
    expect(la).toHaveLength(1);
    expect(lb).toEqual(la);
  });

  it("a failed save names the stores that took the changes and those that did not", async () => {
    const a = new FlakyStore();
    const b = new FlakyStore();
    const c = new FlakyStore();
    b.failSave = true;
    const union = new UnionStore({ stores: [a, b, c] });
    const error = await union.save([set("1", { v: 1 })]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PartialWriteError);
    expect(isPartialWriteError(error)).toBe(true);
    expect((error as PartialWriteError).written).toEqual([0, 2]);
    expect((error as PartialWriteError).failed.map((f) => f.index)).toEqual([1]);
    expect((error as Error).message).toContain("disk on fire");
    expect(await a.load("ws")).toHaveLength(1);
    expect(await b.load("ws")).toHaveLength(0);
    expect(await c.load("ws")).toHaveLength(1);
  });

  it("invalid input fails before any store is written", async () => {
    const a = new MemoryStore();
    const b = new MemoryStore();
    const union = new UnionStore({ stores: [a, b] });
    const error = await union.save([set("ok", 1), set("bad", { n: 1n })]).catch((e: unknown) => e);
    expect(isStatelogError(error, ErrorCode.InvalidValue)).toBe(true);
    expect(await a.load("ws")).toEqual([]);
    expect(await b.load("ws")).toEqual([]);
  });

  it("merges per key: the later timestamp wins, on a tie the earlier store", async () => {
    const a = new MemoryStore();
    const b = new MemoryStore();
    const t1 = new Date("2025-01-01T00:00:00Z");
    const t2 = new Date("2025-01-02T00:00:00Z");
    await a.save([
      set("newer-in-b", { from: "a" }, t1),
      set("tie", { from: "a" }, t1),
      set("only-a", { from: "a" }, t1),
    ]);
    await b.save([
      set("newer-in-b", { from: "b" }, t2),
      set("tie", { from: "b" }, t1),
      { namespace: "ws", changeType: "unset", entityType: "item", entityId: "only-a", timestamp: t2 },
      set("only-b", { from: "b" }, t1),
    ]);
    const merged = await new UnionStore({ stores: [a, b] }).load("ws");
    expect(merged.map((c) => [c.entityId, c.changeType, c.entity])).toEqual([
      ["newer-in-b", "set", { from: "b" }],
      ["tie", "set", { from: "a" }],
      ["only-a", "unset", undefined],
      ["only-b", "set", { from: "b" }],
    ]);
    const reversed = await new UnionStore({ stores: [b, a] }).load("ws", { liveOnly: true });
    expect(reversed.map((c) => [c.entityId, c.entity])).toEqual([
      ["newer-in-b", { from: "b" }],
      ["tie", { from: "b" }],
      ["only-b", { from: "b" }],
    ]);
  });

  it('read policy "all" fails the load when one store fails', async () => {
    const a = new FlakyStore();
    const b = new FlakyStore();
    const union = new UnionStore({ stores: [a, b] });
    await union.save([set("1", 1)]);
    b.failLoad = true;
    const error = await union.load("ws").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnionLoadError);
    expect((error as UnionLoadError).failures.map((f) => f.index)).toEqual([1]);
    expect(isUnionLoadError(error)).toBe(true);
    expect(isStatelogError(error, UnionErrorCode.LoadFailed)).toBe(true);
    expect((error as Error).cause).toBeInstanceOf(UnavailableError);
    expect(isUnionLoadError(new UnavailableError("not a union error"))).toBe(false);
  });

  it('read policy "any" skips a failed store and reports it; fails when all fail', async () => {
    const a = new FlakyStore();
    const b = new FlakyStore();
    const skipped: number[] = [];
    const union = new UnionStore({ stores: [a, b], readPolicy: "any", onSkippedStore: (r) => skipped.push(r.index) });
    await union.save([set("1", { v: 1 })]);
    a.failLoad = true;
    expect((await union.load("ws")).map((c) => c.entity)).toEqual([{ v: 1 }]);
    expect(skipped).toEqual([0]);
    b.failLoad = true;
    await expect(union.load("ws")).rejects.toBeInstanceOf(UnionLoadError);
  });

  it("declares capabilities from its stores and rejects bad options", () => {
    expect(new UnionStore({ stores: [new MemoryStore()] }).capabilities).toEqual({
      compact: true,
      listNamespaces: true,
      durable: false,
      watch: true,
    });
    expect(() => new UnionStore({ stores: [] })).toThrow(/at least one store/);
    expect(() => new UnionStore({ stores: [new MemoryStore()], readPolicy: "some" as "any" })).toThrow(/readPolicy/);
  });

  it("open() takes one options object; UNION_STORE_DEFAULTS holds the defaults", async () => {
    const a = new FlakyStore();
    const b = new FlakyStore();
    await using union = await UnionStore.open({ stores: [a, b] });
    expect(union).toBeInstanceOf(UnionStore);
    expect(union.stores).toEqual([a, b]);
    await union.save([set("1", { v: 1 })]);
    b.failLoad = true;
    // The default read policy is "all": one failed store fails the load.
    expect(UNION_STORE_DEFAULTS.readPolicy).toBe("all");
    await expect(union.load("ws")).rejects.toBeInstanceOf(UnionLoadError);
  });

  it("refuses invalid and unknown options with a ConfigurationError naming the option", () => {
    const m = () => new MemoryStore();
    const cases: [unknown, RegExp][] = [
      [[m(), m()], /UnionStore takes one options object: new UnionStore\(\{ stores: \[a, b\] \}\)/],
      [{}, /UnionStore option stores must be a non-empty array of stores/],
      [{ stores: [m(), "not a store"] }, /option stores must be a non-empty array of stores/],
      [{ stores: [m()], readPolicy: "some" }, /UnionStore option readPolicy must be one of "all", "any", got "some"/],
      [{ stores: [m()], onSkippedStore: 1 }, /option onSkippedStore must be a function/],
      [{ stores: [m()], maxValueBytes: -1 }, /option maxValueBytes must be an integer >= 1/],
      [{ stores: [m()], policy: "any" }, /UnionStore has no option policy \(its options: /],
    ];
    for (const [options, message] of cases) {
      let caught: unknown;
      try {
        new UnionStore(options as { stores: Store[] });
      } catch (error) {
        caught = error;
      }
      expect(isStatelogError(caught, ErrorCode.Configuration), String(message)).toBe(true);
      expect(String(caught)).toMatch(message);
    }
  });

  it("checks registered entity types once, before any store is written", async () => {
    const a = new MemoryStore();
    const b = new MemoryStore();
    const union = new UnionStore({ stores: [a, b], unknownEntityTypes: "reject", entityTypes: ["item"] });
    await union.save([set("1", 1)]);
    const error = await union
      .save([set("2", 2), { namespace: "ws", changeType: "set", entityType: "other", entityId: "x", entity: 1 }])
      .catch((e: unknown) => e);
    expect(isStatelogError(error, ErrorCode.UnknownEntityType)).toBe(true);
    expect((await a.load("ws")).map((c) => c.entityId)).toEqual(["1"]);
    expect((await b.load("ws")).map((c) => c.entityId)).toEqual(["1"]);
  });

  it("its feed checks each change as its loads do (unknownEntityTypes: reject)", async () => {
    const first = new MemoryStore();
    const union = new UnionStore({
      stores: [first, new MemoryStore()],
      unknownEntityTypes: "reject",
      entityTypes: ["item"],
    });
    await union.save([set("1", 1)]);
    const feed = union.watch("ws");
    const events = feed[Symbol.asyncIterator]();
    expect((await events.next()).value).toMatchObject({ type: "change", change: { entityId: "1" } });
    expect((await events.next()).value?.type).toBe("caught-up");
    // A change of an unknown type reaches the first store by another way (another writer of it).
    const other = { namespace: "ws", changeType: "set" as const, entityType: "other", entityId: "x", entity: 1 };
    await first.save([other]);
    await expect(union.load("ws")).rejects.toSatisfy((e) => isStatelogError(e, ErrorCode.UnknownEntityType));
    await expect(events.next()).rejects.toSatisfy((e) => isStatelogError(e, ErrorCode.UnknownEntityType));
    // A feed started after it fails on it in its initial part.
    const later = union.watch("ws")[Symbol.asyncIterator]();
    const initial: unknown[] = [];
    const failure = await (async () => {
      for (;;) initial.push((await later.next()).value);
    })().catch((e: unknown) => e);
    expect(isStatelogError(failure, ErrorCode.UnknownEntityType)).toBe(true);
    await union.close();
  });

  it("its feed reads again on refresh(), as the first store's does (Follower.waitFor relies on it)", async () => {
    const union = new UnionStore({ stores: [new MemoryStore(), new MemoryStore()] });
    await union.save([set("1", 1)]);
    const feed = union.watch("ws");
    const events = feed[Symbol.asyncIterator]();
    const pump = (async () => {
      for (let r = await events.next(); !r.done; r = await events.next());
    })();
    await feed.caughtUp;
    const target = feed.refresh();
    const deadline = Date.now() + 2_000;
    while (feed.reads < target && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(feed.reads).toBeGreaterThanOrEqual(target); // not waiting for the next save
    await union.close();
    await pump;
  });

  it("its feed ends when the union closes, and follows live changes in order", async () => {
    const union = new UnionStore({ stores: [new MemoryStore(), new MemoryStore()] });
    const feed = union.watch("ws");
    const seen: string[] = [];
    const reading = (async () => {
      for await (const event of feed) {
        seen.push(event.type === "change" ? event.change.entityId : event.type);
        if (seen.length === 4) void union.close();
      }
    })();
    await feed.caughtUp;
    await union.save([set("1", 1), set("2", 2)]);
    await union.save([set("3", 3)]);
    await reading;
    expect(seen).toEqual(["caught-up", "1", "2", "3"]);
    expect(feed.ended).toBe(true);
  });

  it("listNamespaces is an UnsupportedError when a store cannot list", async () => {
    const plain: Store = {
      capabilities: { compact: false, listNamespaces: false, durable: false },
      save: async () => undefined,
      load: async () => [],
      close: async () => undefined,
      [Symbol.asyncDispose]: async () => undefined,
    };
    const union = new UnionStore({ stores: [new MemoryStore(), plain] });
    expect(union.capabilities.listNamespaces).toBe(false);
    await expect(union.listNamespaces()).rejects.toMatchObject({ code: ErrorCode.Unsupported });
  });

  it("close closes every store", async () => {
    const a = new MemoryStore();
    const b = new MemoryStore();
    await new UnionStore({ stores: [a, b] }).close();
    await expect(a.load("ws")).rejects.toMatchObject({ code: ErrorCode.Closed });
    await expect(b.load("ws")).rejects.toMatchObject({ code: ErrorCode.Closed });
  });
});

describe("UnionStore feed whose first store is closed under the open union", () => {
  /** Runs test/fixtures/union-first-closed.ts; a child that does not end within `limitMs` is killed (a spinning feed). */
  async function runFixture(mode: "live" | "initial", limitMs = 20_000) {
    const dir = tempDir("statelog-union-feed-");
    const argv = await childCommand(path.join(import.meta.dirname, "fixtures", "union-first-closed.ts"), dir);
    const child = spawn(process.execPath, [...argv, mode], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const guard = setTimeout(() => child.kill("SIGKILL"), limitMs);
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    clearTimeout(guard);
    return { code, result: out.trim() === "" ? undefined : JSON.parse(out.trim().split("\n").at(-1) as string) };
  }

  for (const mode of ["live", "initial"] as const) {
    it(`fails the feed with ClosedError and leaves the event loop free (${mode})`, { timeout: 40_000 }, async () => {
      const { code, result } = await runFixture(mode);
      expect(code, "the child was killed: its feed kept the event loop busy").toBe(0);
      expect(result.seen).toEqual(mode === "live" ? ["change", "caught-up"] : []);
      expect(result.ended).toMatchObject({ outcome: "rejected", name: "ClosedError", code: ErrorCode.Closed });
      expect(result.ended.message).toMatch(/first store is closed/);
      expect(result.timerRan).toBe(true);
    });
  }
});
