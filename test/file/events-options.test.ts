/**
 * FileEventStore.open refuses every invalid option with a ConfigurationError
 * naming the option, before it touches the disk.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  FILE_EVENT_STORE_DEFAULTS,
  FileEventStore,
  type FileEventStoreOptions,
  SyncPolicy,
} from "../../src/file/index.js";
import { isConfigurationError } from "../../src/index.js";

const base = await mkdtemp(join(tmpdir(), "statelog-events-options-"));
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** The error `FileEventStore.open(options)` fails with (the test fails if it opens). */
async function refusal(options: unknown): Promise<Error> {
  let caught: unknown;
  try {
    const store = await FileEventStore.open(options as FileEventStoreOptions);
    await store.close();
  } catch (error) {
    caught = error;
  }
  expect(isConfigurationError(caught), `open(${JSON.stringify(options)}) must be refused`).toBe(true);
  return caught as Error;
}

describe("FileEventStore options", () => {
  it("defaults: sync fsync, 64 MiB segments, the event store's own defaults", async () => {
    expect(FILE_EVENT_STORE_DEFAULTS).toMatchObject({
      sync: SyncPolicy.Fsync,
      segmentBytes: 64 * 1024 * 1024,
      cacheBytes: 32 * 1024 * 1024,
      name: "file-event-store",
      maxEventsPerStream: 100_000,
      maxStreams: 10_000,
    });
    const store = await FileEventStore.open({ directory: join(base, "defaults") });
    expect(store.sync).toBe("fsync");
    expect(store.name).toBe("file-event-store");
    expect(store.directory).toBe(join(base, "defaults"));
    await store.close();
    const none = await FileEventStore.open({ directory: join(base, "none"), sync: "none", segmentBytes: 1 });
    expect(none.sync).toBe("none");
    await none.close();
  });

  it("options must be an object with a directory", async () => {
    expect((await refusal(undefined)).message).toMatch(/FileEventStore option directory must be a non-empty string/);
    expect((await refusal("./events")).message).toMatch(/FileEventStore options must be an object/);
  });

  it("directory: a non-empty string", async () => {
    expect((await refusal({ directory: "" })).message).toMatch(/option directory must be a non-empty string, got ""/);
    expect((await refusal({ directory: 42 })).message).toMatch(/option directory must be a non-empty string, got 42/);
  });

  it("sync: one of SyncPolicy's values", async () => {
    const error = await refusal({ directory: join(base, "sync"), sync: true });
    expect(error.message).toMatch(/option sync must be one of "fsync", "none", got true/);
    expect((await refusal({ directory: join(base, "sync"), sync: "always" })).message).toMatch(/got "always"/);
  });

  it("segmentBytes: an integer >= 1", async () => {
    for (const segmentBytes of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "64MiB"]) {
      const error = await refusal({ directory: join(base, "segments"), segmentBytes });
      expect(error.message).toMatch(/FileEventStore option segmentBytes must be an integer >= 1/);
    }
  });

  it("cacheBytes: an integer >= 0", async () => {
    for (const cacheBytes of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "32MiB", null]) {
      const error = await refusal({ directory: join(base, "cache"), cacheBytes });
      expect(error.message).toMatch(/FileEventStore option cacheBytes must be an integer >= 0/);
    }
    const store = await FileEventStore.open({ directory: join(base, "cache"), sync: "none", cacheBytes: 0 });
    await store.close();
  });

  it("an unknown option is refused; old spellings get their new name", async () => {
    const directory = join(base, "unknown");
    expect((await refusal({ dir: directory })).message).toMatch(
      /FileEventStore has no option dir; it is called directory/,
    );
    expect((await refusal({ directory, fsync: false })).message).toMatch(/has no option fsync; it is called sync/);
    expect((await refusal({ directory, retentionDuration: 1000 })).message).toMatch(
      /has no option retentionDuration; it is called retentionDurationMs/,
    );
    expect((await refusal({ directory, snapshotInterval: 0 })).message).toMatch(
      /has no option snapshotInterval; it is called snapshotIntervalMs/,
    );
    expect((await refusal({ directory, segmentSize: 10 })).message).toMatch(
      /has no option segmentSize \(its options: /,
    );
  });

  it("a refused open leaves nothing on disk", async () => {
    await refusal({ directory: join(base, "untouched"), sync: "sometimes" });
    await refusal({ directory: join(base, "untouched"), fsync: true });
    expect(await readdir(base)).not.toContain("untouched");
  });
});
