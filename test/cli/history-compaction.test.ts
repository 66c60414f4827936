/**
 * The history of a key on a file store (`statelog history`, the
 * inspector's entity history) reads the namespace file in one read under
 * its lock: a compaction during the read (by any writer) cannot cut it
 * short or mix two numberings of positions, however long the history.
 */
import { afterEach, expect, it } from "vitest";
import { keyHistory } from "../../src/cli/history.js";
import { Backend, type OpenedTarget } from "../../src/cli/targets.js";
import { FileStore } from "../../src/file/index.js";
import { CHANGE_FEED_DEFAULTS } from "../../src/index.js";
import { history } from "../../src/inspector/data.js";
import { afterSourceReads, item } from "../helpers/feed.js";
import { tempDir } from "../helpers/temp.js";

/** More changes of one key than a feed reads at once by default. */
const CHANGES = CHANGE_FEED_DEFAULTS.batchSize + 2_000;
const stores: FileStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

/** A file store whose namespace "ns" holds CHANGES changes of key k, compacted right after each feed's first read. */
async function compactedDuringRead(): Promise<FileStore> {
  const store = await FileStore.open({
    directory: tempDir("statelog-history-"),
    autoCompact: false,
  });
  stores.push(store);
  for (let i = 0; i < CHANGES; i += 1000)
    await store.save(Array.from({ length: 1000 }, (_, j) => item("ns", "k", i + j)));
  // Another writer's compaction, at the one moment it could do harm: between the feed's reads.
  afterSourceReads(store, async (_batch, n) => {
    if (n === 0) await store.compact("ns");
  });
  return store;
}

const increasing = (positions: readonly number[]) =>
  positions.every((p, i) => i === 0 || p > (positions[i - 1] as number));

it("statelog history: every change of the key, in one numbering, with a compaction during the read", async () => {
  const store = await compactedDuringRead();
  const opened = { backend: Backend.File, store, spec: { display: "file" } } as unknown as OpenedTarget;
  const { entries } = await keyHistory(opened, "ns", "item", "k");
  expect(entries.map((e) => (e.change as { entity: unknown }).entity)).toEqual(
    Array.from({ length: CHANGES }, (_, i) => i),
  );
  expect(increasing(entries.map((e) => e.position))).toBe(true);
});

it("the inspector's history: the newest changes of the key, in one numbering, with a compaction during the read", async () => {
  const store = await compactedDuringRead();
  const result = await history(store, "ns", "item", "k", new AbortController().signal);
  expect(result.available).toBe(true);
  const values = result.changes.map((c) => (c as { entity: unknown }).entity);
  // The inspector keeps the newest ones: they end with the key's last change, one apart each.
  expect(values.at(-1)).toBe(CHANGES - 1);
  expect(values).toEqual(Array.from({ length: values.length }, (_, i) => CHANGES - values.length + i));
  expect(increasing(result.changes.map((c) => c.position as number))).toBe(true);
});
