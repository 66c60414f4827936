/**
 * The file event store's on-disk format stays what earlier versions wrote.
 * `fixtures/events-v1/` was written by the FileEventStore as it was before
 * it moved to `statelog/file` (then `statelog/events`), with exactly the
 * appends of `writeSample` below: two segments and a snapshot. Its lines
 * carry no batch length (`"n"`): each reads as an append of one event.
 */
import { cp, mkdtemp, readdir, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { FileEventStore } from "../../src/file/index.js";

const fixture = join(fileURLToPath(new URL(".", import.meta.url)), "fixtures", "events-v1");
const base = await mkdtemp(join(tmpdir(), "statelog-events-format-"));
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});
let n = 0;

async function copyOfFixture(): Promise<string> {
  const dir = join(base, `copy${++n}`);
  await cp(fixture, dir, { recursive: true });
  return dir;
}

const t0 = Date.parse("2024-05-01T12:00:00.000Z");

/** The appends that wrote the fixture. */
async function writeSample(directory: string): Promise<void> {
  const store = await FileEventStore.open({ directory, snapshotIntervalMs: 0 });
  await store.append("order-1", [
    createEvent("order.created", { customer: "c-7", total: 30 }, { id: "e1", timestamp: new Date(t0) }),
    createEvent(
      "order.paid",
      { amount: 30.5 },
      { id: "e2", timestamp: new Date(t0 + 1000), metadata: { user: "jürgen" } },
    ),
  ]);
  await store.append("cart/2", [
    createEvent("cart.opened", { items: [], note: 'grüße\n"quoted" 🛒' }, { id: "e3", timestamp: new Date(t0 + 2000) }),
  ]);
  await store.snapshot();
  await store.append("order-1", [
    createEvent("order.shipped", { carrier: null }, { id: "e4", timestamp: new Date(t0 + 3000) }),
  ]);
  await store.close();
}

async function expectSample(store: FileEventStore): Promise<void> {
  const order = await store.readStream("order-1");
  expect(order.map((e) => [e.id, e.type, e.position, e.globalPosition, e.timestamp.getTime()])).toEqual([
    ["e1", "order.created", 1, 1, t0],
    ["e2", "order.paid", 2, 2, t0 + 1000],
    ["e4", "order.shipped", 3, 4, t0 + 3000],
  ]);
  expect(order.map((e) => e.data)).toEqual([{ customer: "c-7", total: 30 }, { amount: 30.5 }, { carrier: null }]);
  expect(order[1]?.metadata).toEqual({ user: "jürgen" });
  expect(order[0]?.metadata).toBeUndefined();
  const cart = await store.readStream("cart/2");
  expect(cart.map((e) => [e.id, e.position, e.globalPosition, e.data])).toEqual([
    ["e3", 1, 3, { items: [], note: 'grüße\n"quoted" 🛒' }],
  ]);
  expect(store.stats()).toMatchObject({ totalEvents: 4, totalStreams: 2, globalPosition: 4 });
}

describe("FileEventStore on-disk format", () => {
  it("opens a store written by the earlier version (snapshot + the segment after it) and appends to it", async () => {
    const dir = await copyOfFixture();
    const snapshot = join(dir, "snapshot-0000000000000003.bin");
    expect((await readFile(snapshot)).subarray(0, 8).toString("latin1")).toBe("SLEVSNP2");
    const store = await FileEventStore.open({ directory: dir });
    await expectSample(store);
    // The earlier version's snapshot (every event) is rewritten as this version's (the streams' positions).
    expect((await readFile(snapshot)).subarray(0, 8).toString("latin1")).toBe("SLEVSNP3");
    const r = await store.append("order-1", [createEvent("order.closed", {}, { id: "e5" })], { expectedVersion: 3 });
    expect(r).toMatchObject({ firstPosition: 4, globalPosition: 5 });
    await store.close();
    const again = await FileEventStore.open({ directory: dir });
    expect((await again.readStream("order-1")).map((e) => e.id)).toEqual(["e1", "e2", "e4", "e5"]);
    await again.close();
  });

  it("reads the earlier version's lines without the snapshot (every checksum verifies)", async () => {
    const dir = await copyOfFixture();
    await unlink(join(dir, "snapshot-0000000000000003.bin"));
    const store = await FileEventStore.open({ directory: dir });
    await expectSample(store);
    await store.close();
  });

  it("writes the earlier version's segments byte for byte, but for the batch length on the first line of a two-event append", async () => {
    const dir = join(base, "fresh");
    await writeSample(dir);
    const all = (await readdir(dir)).filter((f) => f !== "LOCK").sort();
    // Side files of this version: an index per segment, and a snapshot of the streams' positions only.
    expect(all.filter((f) => f.startsWith("index-"))).toEqual([
      "index-0000000000000001.idx",
      "index-0000000000000004.idx",
    ]);
    const names = all.filter((f) => !f.startsWith("index-"));
    expect(names).toEqual((await readdir(fixture)).sort());
    for (const name of names) {
      const expected = await readFile(join(fixture, name));
      if (name.startsWith("snapshot-")) {
        expect((await readFile(join(dir, name))).subarray(0, 8).toString("latin1")).toBe("SLEVSNP3");
        continue;
      }
      if (name !== "segment-0000000000000001.log") {
        expect((await readFile(join(dir, name))).equals(expected), name).toBe(true);
        continue;
      }
      // The earlier version's first line, plus `"n":2` (the append of e1 and e2 has two lines), with its new checksum.
      const lines = expected.toString("utf8").split("\n");
      expect(lines[0]).toBe(
        '{"g":1,"s":"order-1","p":1,"id":"e1","type":"order.created","ts":"2024-05-01T12:00:00.000Z","data":{"customer":"c-7","total":30},"crc":"d3d892c1"}',
      );
      lines[0] =
        '{"g":1,"n":2,"s":"order-1","p":1,"id":"e1","type":"order.created","ts":"2024-05-01T12:00:00.000Z","data":{"customer":"c-7","total":30},"crc":"132afbb1"}';
      expect(await readFile(join(dir, name), "utf8")).toBe(lines.join("\n"));
    }
  });

  it("reads the earlier version's lines as batches of one event: a cut after any whole line keeps every line before it", async () => {
    const dir = await copyOfFixture();
    await unlink(join(dir, "snapshot-0000000000000003.bin"));
    const file = join(dir, "segment-0000000000000001.log");
    const text = await readFile(file, "utf8");
    // e1 and e2 were one append, but the earlier version's lines say nothing of it: e1 alone is a whole batch.
    await unlink(join(dir, "segment-0000000000000004.log"));
    await writeFile(file, text.slice(0, text.indexOf("\n") + 1));
    const store = await FileEventStore.open({ directory: dir });
    expect((await store.readStream("order-1")).map((e) => e.id)).toEqual(["e1"]);
    expect(store.stats()).toMatchObject({ totalEvents: 1, globalPosition: 1 });
    await store.close();
  });
});
