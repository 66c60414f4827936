/**
 * The inspector's read API against real stores: namespaces, entities with
 * search, history, streams and events, projections and their lag, the
 * live feed (Server-Sent Events), and the errors of bad requests. Also
 * `listProjectionStatuses` of the memory and file read-model stores.
 */
import { request, ServerResponse } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FileReadModelStore } from "../../src/file/index.js";
import { ChangeFeed, type Store, UnsupportedError } from "../../src/index.js";
import { Inspector } from "../../src/inspector/index.js";
import { MemoryReadModelStore, MemoryStore } from "../../src/memory/index.js";
import type { ReadModelStore } from "../../src/read-models/index.js";
import { silentSource } from "../helpers/feed.js";
import { type Fixture, openFixture } from "./fixtures.js";

let fx: Fixture;
let inspector: Inspector;
/** A store with neither a change feed nor a namespace listing. */
let plain: Store;
/** A store whose feeds never catch up (a history too long to read); counts the feeds that ended. */
let endless: Store;
let endlessFeedsEnded = 0;

async function get<T = Record<string, unknown>>(path: string, expected = 200): Promise<T> {
  const r = await fetch(`http://127.0.0.1:${inspector.port}${path}`, {
    headers: { Authorization: `Bearer ${inspector.token}` },
  });
  const body = (await r.json()) as T;
  expect(r.status, `${path}: ${JSON.stringify(body)}`).toBe(expected);
  return body;
}

interface EntityPage {
  total: number;
  items: { entityType: string; entityId: string; changeType: string; entity?: unknown }[];
  types: { name: string; count: number }[];
}

beforeAll(async () => {
  fx = await openFixture();
  plain = {
    capabilities: { compact: false, listNamespaces: false, durable: false },
    load: (namespace, options) => fx.memory.load(namespace, options),
    save: (changes, options) => fx.memory.save(changes, options),
    close: async () => undefined,
    [Symbol.asyncDispose]: async () => undefined,
  };
  endless = {
    ...plain,
    capabilities: { ...plain.capabilities, watch: true },
    // Never delivers: only the feed's end (its signal) stops the read.
    watch: (namespace, options) =>
      new ChangeFeed(
        namespace,
        silentSource(() => {
          endlessFeedsEnded++;
        }),
        options,
      ),
  };
  inspector = await Inspector.open({
    targets: [
      ...fx.targets,
      { name: "plain", store: plain },
      {
        name: "with a history reader",
        store: fx.memory,
        history: async (namespace, entityType, entityId) => ({
          entries: [1, 2].map((n) => ({
            position: n * 10,
            change: {
              namespace,
              changeType: "set" as const,
              entityType,
              entityId,
              entity: { version: n },
              timestamp: new Date(Date.UTC(2026, 0, n)),
            },
          })),
          note: "from the reader",
        }),
      },
      {
        name: "with a backend without history",
        store: fx.memory,
        history: async () => {
          throw new UnsupportedError("a memory store keeps only the latest change of each key");
        },
      },
      { name: "endless history", store: endless },
    ],
    lagSampleIntervalMs: 20,
  });
});

afterAll(async () => {
  await inspector.close();
  await fx.close();
});

describe("read API", () => {
  it("overview: the targets and what each can show", async () => {
    const o = await get<{ allowWrites: boolean; targets: Record<string, unknown>[] }>("/api/overview");
    expect(o.allowWrites).toBe(false);
    expect(o.targets.map((t) => t.name)).toEqual([
      "memory:",
      `file:${fx.directory}`,
      "plain",
      "with a history reader",
      "with a backend without history",
      "endless history",
    ]);
    expect(o.targets[0]).toMatchObject({
      store: { listNamespaces: true, watch: true, compact: false, durable: false },
      eventStore: { name: "memory-store" },
      readModels: true,
    });
    expect(o.targets[1]).toMatchObject({ store: { durable: true }, eventStore: { name: "file-event-store" } });
    expect(o.targets[2]).toMatchObject({ store: { listNamespaces: false, watch: false }, readModels: false });
  });

  it("namespaces, or null for a store that cannot list them", async () => {
    expect(await get("/api/namespaces?target=0")).toEqual({ namespaces: ["acme", "globex"] });
    expect(await get("/api/namespaces?target=1")).toEqual({ namespaces: ["shop"] });
    expect(await get("/api/namespaces?target=2")).toEqual({ namespaces: null });
  });

  it("entities with search, type filter, tombstones and pages", async () => {
    const all = await get<EntityPage>("/api/entities?target=0&namespace=acme");
    expect(all.total).toBe(3);
    // Sorted by entity type, then id.
    expect(all.items.map((i) => i.entityId)).toEqual(["o-1", "alice", "bob"]);
    expect(all.types).toEqual([
      { name: "order", count: 1 },
      { name: "user", count: 2 },
    ]);
    const search = async (query: string) =>
      (await get<EntityPage>(`/api/entities?target=0&namespace=acme&${query}`)).items.map((i) => i.entityId);
    expect(await search("q=BOB")).toEqual(["bob"]);
    expect(await search("q=admin")).toEqual(["alice"]);
    expect(await search("q=ORDER")).toEqual(["o-1"]);
    expect(await search("type=user")).toEqual(["alice", "bob"]);
    expect(await search("type=user&q=dev")).toEqual(["bob"]);
    expect(await search("deleted=1")).toEqual(["o-1", "alice", "bob", "carol"]);
    expect(await search("offset=1&limit=1")).toEqual(["alice"]);
    expect(await search("q=nothing-matches")).toEqual([]);
    // The plain store is read the same way (its namespace is named, not listed).
    expect((await get<EntityPage>("/api/entities?target=2&namespace=globex")).items.map((i) => i.entityId)).toEqual([
      "dave",
    ]);
  });

  it("entity pages keep their order when an entity changes between two requests: none repeats, none is missed", async () => {
    const store = await MemoryStore.open();
    const ids = Array.from({ length: 400 }, (_, i) => `k${String(i).padStart(3, "0")}`);
    const set = (entityId: string, entity: unknown) =>
      ({ namespace: "ns", changeType: "set", entityType: "t", entityId, entity }) as const;
    await store.save(ids.map((id, i) => set(id, { i })));
    // The store's own order (of last change) is rotated, too: its first entity changed last.
    await store.save([set("k000", { i: 0 })]);
    const paging = await Inspector.open({ targets: [{ name: "m", store }] });
    try {
      const page = async (offset: number) => {
        const r = await fetch(`http://127.0.0.1:${paging.port}/api/entities?target=0&namespace=ns&offset=${offset}`, {
          headers: { Authorization: `Bearer ${paging.token}` },
        });
        return ((await r.json()) as EntityPage).items.map((i) => i.entityId);
      };
      const first = await page(0);
      await store.save([set("k001", { i: -1 })]);
      const second = await page(200);
      expect([...first, ...second]).toEqual(ids);
    } finally {
      await paging.close();
      await store.close();
    }
  });

  it("history: every change a file store holds, the latest one of a memory store, none without a feed", async () => {
    type History = { available: boolean; reason?: string; changes: { position: number; entity: { status: string } }[] };
    const file = await get<History>("/api/history?target=1&namespace=shop&entityType=invoice&entityId=inv-7");
    expect(file.available).toBe(true);
    expect(file.changes.map((c) => c.entity.status)).toEqual(["draft", "sent", "paid"]);
    const positions = file.changes.map((c) => c.position);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    const memory = await get<History>("/api/history?target=0&namespace=acme&entityType=user&entityId=alice");
    expect(memory.changes).toHaveLength(1);
    const none = await get<History>("/api/history?target=0&namespace=acme&entityType=user&entityId=nobody");
    expect(none).toMatchObject({ available: true, changes: [] });
    const read = await get<History & { note?: string }>(
      "/api/history?target=3&namespace=acme&entityType=user&entityId=alice",
    );
    expect(read).toMatchObject({ available: true, note: "from the reader" });
    expect(read.changes).toEqual([
      {
        entityType: "user",
        entityId: "alice",
        changeType: "set",
        entity: { version: 1 },
        position: 10,
        timestamp: "2026-01-01T00:00:00.000Z",
      },
      {
        entityType: "user",
        entityId: "alice",
        changeType: "set",
        entity: { version: 2 },
        position: 20,
        timestamp: "2026-01-02T00:00:00.000Z",
      },
    ]);
    const unsupported = await get<History>("/api/history?target=4&namespace=acme&entityType=user&entityId=alice");
    expect(unsupported).toEqual({
      available: false,
      reason: "a memory store keeps only the latest change of each key",
      changes: [],
    });
    const plainHistory = await get<History>("/api/history?target=2&namespace=acme&entityType=user&entityId=alice");
    expect(plainHistory.available).toBe(false);
    expect(plainHistory.reason).toMatch(/no change feed/);
  });

  it("history: the read of the feed ends when the browser leaves", async () => {
    const abort = new AbortController();
    const request = fetch(
      `http://127.0.0.1:${inspector.port}/api/history?target=5&namespace=acme&entityType=user&entityId=alice`,
      { headers: { Authorization: `Bearer ${inspector.token}` }, signal: abort.signal },
    ).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(endlessFeedsEnded).toBe(0);
    abort.abort();
    expect(await request).toMatchObject({ name: "AbortError" });
    await vi.waitFor(() => expect(endlessFeedsEnded).toBe(1), { timeout: 5_000 });
  });

  it("streams and their events, page by page", async () => {
    const s = await get<{ totalEvents: number; streams: { streamId: string; eventCount: number }[] }>(
      "/api/streams?target=0",
    );
    expect(s.totalEvents).toBe(4);
    expect(s.streams.map((x) => [x.streamId, x.eventCount])).toEqual([
      ["order-1", 3],
      ["order-2", 1],
    ]);
    type Events = { events: { position: number; type: string; timestamp: string }[]; next?: number };
    const first = await get<Events>("/api/events?target=0&stream=order-1&limit=2");
    expect(first.events.map((e) => e.type)).toEqual(["order.placed", "order.paid"]);
    expect(first.next).toBe(2);
    const rest = await get<Events>("/api/events?target=0&stream=order-1&after=2");
    expect(rest.events.map((e) => [e.position, e.timestamp])).toEqual([[3, "2026-01-01T12:00:40.000Z"]]);
    expect(rest.next).toBeUndefined();
    const file = await get<Events>("/api/events?target=1&stream=audit");
    expect(file.events.map((e) => e.type)).toEqual(["login", "logout"]);
  });

  it("projections: listed and named ones, their lag, and samples over time", async () => {
    type Projections = {
      projections: { name: string; status?: { status: string; lagEvents?: number }; samples: unknown[] }[];
    };
    const memory = await get<Projections>("/api/projections?target=0");
    expect(memory.projections.map((p) => [p.name, p.status?.status, p.status?.lagEvents])).toEqual([
      ["order-summary", "catching_up", 2],
    ]);
    const file = await get<Projections>("/api/projections?target=1");
    // audit-log wrote no lag: checkpoint 2 of an event store at global position 2.
    expect(file.projections.map((p) => [p.name, p.status?.status, p.status?.lagEvents])).toEqual([
      ["audit-log", "up_to_date", 0],
      ["not-started", undefined, undefined],
    ]);
    await fx.fileEvents.append("audit", [
      { id: "e3", type: "login", data: {}, timestamp: new Date() },
      { id: "e4", type: "logout", data: {}, timestamp: new Date() },
    ]);
    const behind = await get<Projections>("/api/projections?target=1");
    expect(behind.projections[0]?.status?.lagEvents).toBe(2);
    await expect
      .poll(async () => (await get<Projections>("/api/projections?target=0")).projections[0]?.samples.length, {
        timeout: 10_000,
      })
      .toBeGreaterThan(3);
  });

  it("projections: a target whose read-model store fails neither stops the sampling of the others nor shows on their page", async () => {
    let brokenReads = 0;
    const broken = {
      getProjectionStatus: () => Promise.reject(new Error("the broken store failed")),
      listProjectionStatuses: () => {
        brokenReads++;
        return Promise.reject(new Error("the broken store failed"));
      },
    } as unknown as ReadModelStore;
    const healthy = await MemoryReadModelStore.open();
    await healthy.updateProjectionStatus({ name: "ok", status: "up_to_date", checkpoint: 5, updatedAt: new Date() });
    const sampling = await Inspector.open({
      targets: [
        { name: "broken", readModels: broken },
        { name: "healthy", readModels: healthy },
      ],
      lagSampleIntervalMs: 10,
    });
    try {
      // Samples are taken a target after another: once the broken one is read a second time, one
      // round over both targets has ended.
      await vi.waitFor(() => expect(brokenReads).toBeGreaterThanOrEqual(2), { timeout: 10_000 });
      const r = await fetch(`http://127.0.0.1:${sampling.port}/api/projections?target=1`, {
        headers: { Authorization: `Bearer ${sampling.token}` },
      });
      const answer = (await r.json()) as {
        samplingError?: string;
        projections: { name: string; samples: unknown[] }[];
      };
      expect(answer.samplingError).toBeUndefined();
      expect(answer.projections[0]?.name).toBe("ok");
      // The round's sample, and this read's.
      expect(answer.projections[0]?.samples.length).toBeGreaterThanOrEqual(2);
    } finally {
      await sampling.close();
      await healthy.close();
    }
  });

  it("the live feed streams changes after the barrier as Server-Sent Events", async () => {
    const abort = new AbortController();
    const r = await fetch(`http://127.0.0.1:${inspector.port}/api/live?target=0&namespace=globex`, {
      headers: { Authorization: `Bearer ${inspector.token}` },
      signal: abort.signal,
    });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    const until = async (what: string) => {
      while (!text.includes(what)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${what}: ${text}`);
        text += decoder.decode(value);
      }
    };
    await until("event: caught-up");
    // The initial state is not sent as live changes.
    expect(text).not.toContain("dave");
    await fx.memory.save([
      { namespace: "globex", changeType: "set", entityType: "user", entityId: "gail", entity: { name: "Gail" } },
    ]);
    await until("gail");
    const change = text.split("\n\n").find((e) => e.includes("gail")) as string;
    expect(change).toMatch(/^event: change\ndata: /);
    expect(JSON.parse(change.split("data: ")[1] as string)).toMatchObject({
      entityType: "user",
      entityId: "gail",
      changeType: "set",
      entity: { name: "Gail" },
    });
    abort.abort();
  });

  it("the live feed stops taking changes while a client does not read: the server buffers at most about one", async () => {
    const store = await MemoryStore.open();
    await store.save([{ namespace: "ns", changeType: "set", entityType: "t", entityId: "a", entity: {} }]);
    const live = await Inspector.open({ targets: [{ name: "m", store }] });
    // What the server holds for the event stream, measured at each write, and whether a write found it full.
    let largest = 0;
    let full = false;
    let stream: ServerResponse | undefined;
    const write = ServerResponse.prototype.write;
    const spy = vi.spyOn(ServerResponse.prototype, "write").mockImplementation(function (
      this: ServerResponse,
      ...args: unknown[]
    ) {
      const accepted = (write as (...a: unknown[]) => boolean).apply(this, args);
      if (`${args[0]}`.startsWith(": statelog live feed")) stream = this;
      if (this === stream) {
        largest = Math.max(largest, this.writableLength);
        if (!accepted) full = true;
      }
      return accepted;
    });
    const client = request({
      host: "127.0.0.1",
      port: live.port,
      path: "/api/live?target=0&namespace=ns",
      headers: { Authorization: `Bearer ${live.token}` },
    });
    try {
      // The client reads up to the barrier, then stops reading.
      await new Promise<void>((resolve, reject) => {
        client.on("error", reject);
        client.on("response", (res) => {
          let text = "";
          res.on("data", (chunk: Buffer) => {
            text += chunk.toString("utf8");
            if (text.includes("event: caught-up")) {
              res.pause();
              client.socket?.pause();
              resolve();
            }
          });
        });
        client.end();
      });
      const big = "x".repeat(100_000);
      // 40 MB: far more than the sockets' buffers hold.
      for (let i = 0; i < 400; i++) {
        await store.save([{ namespace: "ns", changeType: "set", entityType: "t", entityId: `k${i}`, entity: { big } }]);
      }
      await vi.waitFor(() => expect(full).toBe(true), { timeout: 20_000 });
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      expect(largest).toBeLessThan(1_000_000);
    } finally {
      spy.mockRestore();
      client.destroy();
      await live.close();
      await store.close();
    }
  });

  it("the live feed tells the page when it ends because its store closed", async () => {
    const store = await MemoryStore.open();
    await store.save([{ namespace: "ns", changeType: "set", entityType: "t", entityId: "a", entity: {} }]);
    const live = await Inspector.open({ targets: [{ name: "m", store }] });
    try {
      const r = await fetch(`http://127.0.0.1:${live.port}/api/live?target=0&namespace=ns`, {
        headers: { Authorization: `Bearer ${live.token}` },
      });
      const reader = (r.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let text = "";
      let done = false;
      while (!text.includes("event: caught-up")) {
        const chunk = await reader.read();
        if (chunk.done) throw new Error(`ended before the barrier: ${text}`);
        text += decoder.decode(chunk.value);
      }
      await store.close();
      while (!done) {
        const chunk = await reader.read();
        done = chunk.done;
        if (chunk.value) text += decoder.decode(chunk.value);
      }
      const last = text.trim().split("\n\n").at(-1) as string;
      expect(last).toMatch(/^event: feed-error\ndata: /);
      expect(JSON.parse(last.split("data: ")[1] as string)).toMatchObject({ code: "STATELOG_CLOSED" });
    } finally {
      await live.close();
    }
  });

  it("bad requests get clear errors", async () => {
    const e = (body: { error: { code?: string; message: string } }) => body.error;
    expect(e(await get("/api/entities?target=0&namespace=a%2Fb", 400)).code).toBe("STATELOG_INVALID_NAME");
    expect(e(await get("/api/entities?target=7&namespace=acme", 400)).message).toMatch(/index of a target/);
    expect(e(await get("/api/entities?target=0&namespace=acme&offset=-1", 400)).message).toMatch(/offset/);
    expect(e(await get("/api/streams?target=2", 404)).message).toMatch(/has no eventStore/);
    expect(e(await get("/api/events?target=0&stream=nope", 404)).code).toBe("STATELOG_NOT_FOUND");
    expect(e(await get("/api/events?target=0", 400)).message).toMatch(/stream/);
    expect(e(await get("/api/history?target=0&namespace=acme&entityType=user", 400)).code).toBe(
      "STATELOG_INVALID_NAME",
    );
    expect(e(await get("/api/live?target=2&namespace=acme", 501)).message).toMatch(/no live feed/);
    expect(e(await get("/api/nothing", 404)).message).toMatch(/no such API/);
  });
});

describe("listProjectionStatuses", () => {
  it("memory and file read-model stores list their statuses by name, as copies; the file store after a reopen", async () => {
    const at = new Date("2026-01-01T00:00:00Z");
    for (const store of [fx.memoryModels, fx.fileModels]) {
      await store.updateProjectionStatus({
        name: "zeta",
        status: "failed",
        checkpoint: 1,
        updatedAt: at,
        lastError: "x",
      });
      await store.updateProjectionStatus({ name: "alpha", status: "up_to_date", checkpoint: 9, updatedAt: at });
      const list = await store.listProjectionStatuses();
      expect(list.map((s) => s.name)).toEqual([...list.map((s) => s.name)].sort());
      expect(list.map((s) => s.name)).toContain("alpha");
      const alpha = list.find((s) => s.name === "alpha");
      expect(alpha).toMatchObject({ status: "up_to_date", checkpoint: 9 });
      alpha?.updatedAt.setTime(0);
      expect((await store.getProjectionStatus("alpha"))?.updatedAt).toEqual(at);
    }
    await fx.fileModels.close();
    const reopened = await FileReadModelStore.open({ directory: join(fx.directory, "models"), sync: "none" });
    try {
      expect((await reopened.listProjectionStatuses()).map((s) => s.name)).toEqual(["alpha", "audit-log", "zeta"]);
    } finally {
      await reopened.close();
    }
    await fx.memoryModels.close();
    await expect(fx.memoryModels.listProjectionStatuses()).rejects.toMatchObject({ code: "STATELOG_CLOSED" });
  });
});
