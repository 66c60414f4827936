/**
 * The two backends of docs/backends.md, taken from the doc as written,
 * pass the conformance suites: the guide's code is the tested code.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, expect, it } from "vitest";
import type { EventStore, EventStoreOptions } from "../src/events/index.js";
import type { Store } from "../src/index.js";
import { describeEventStoreContract, describeStoreContract } from "../src/testing/index.js";

const root = path.resolve(import.meta.dirname, "..");
const blocks = [...readFileSync(path.join(root, "docs/backends.md"), "utf8").matchAll(/```ts\n([\s\S]*?)\n```/g)].map(
  (m) => m[1] as string,
);
const find = (marker: string): string => {
  const block = blocks.find((b) => b.includes(marker));
  if (!block) throw new Error(`docs/backends.md has no code block with ${marker}`);
  return block;
};
const pointAtSources = (code: string): string =>
  code.replace(
    /from "statelog(\/[a-z]+)?"/g,
    (_m, sub: string | undefined) =>
      `from ${JSON.stringify(path.join(root, "src", sub ? sub.slice(1) : "", "index.ts"))}`,
  );

const temps: string[] = [];
const temp = (prefix: string): string => {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});
const generated = temp("statelog-backends-doc-");
async function load<T>(name: string, marker: string): Promise<T> {
  const file = path.join(generated, name);
  writeFileSync(file, pointAtSources(find(marker)));
  return (await import(pathToFileURL(file).href)) as T;
}

type Opener<O, S> = { open(options: O): Promise<S> };
const { DirectoryStore } = await load<{ DirectoryStore: Opener<{ directory: string }, Store> }>(
  "directory-store.ts",
  "export class DirectoryStore",
);
const { JsonlEventStore } = await load<{
  JsonlEventStore: Opener<EventStoreOptions & { directory: string }, EventStore>;
}>("jsonl-event-store.ts", "export class JsonlEventStore");

const directories = new WeakMap<object, string>();
async function openStore(directory = temp("directory-store-")): Promise<Store> {
  const store = await DirectoryStore.open({ directory });
  directories.set(store, directory);
  return store;
}
describeStoreContract("DirectoryStore (docs/backends.md)", () => openStore(), {
  propertyRuns: 20,
  reopen: async (store) => {
    await store.close();
    return openStore(directories.get(store));
  },
});

const eventOptions = new WeakMap<object, EventStoreOptions & { directory: string }>();
async function openEvents(options: EventStoreOptions & { directory: string }): Promise<EventStore> {
  const store = await JsonlEventStore.open(options);
  eventOptions.set(store, options);
  return store;
}
describeEventStoreContract(
  "JsonlEventStore (docs/backends.md)",
  (options) => openEvents({ ...options, directory: temp("jsonl-events-") }),
  {
    modelRuns: 200,
    reopen: async (store) => {
      await store.close();
      return openEvents(eventOptions.get(store) as EventStoreOptions & { directory: string });
    },
  },
);

it("DirectoryStore refuses a missing directory and an old option name with a ConfigurationError", async () => {
  await expect(DirectoryStore.open({} as { directory: string })).rejects.toThrow(
    /DirectoryStore option directory must be a non-empty string/,
  );
  await expect(DirectoryStore.open({ dir: "x" } as unknown as { directory: string })).rejects.toThrow(
    /DirectoryStore has no option dir; it is called directory/,
  );
});
