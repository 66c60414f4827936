import type { Store } from "../../src/core/store.js";
import { FileStore } from "../../src/file/index.js";
import { describeChangeFeedContract, describeStoreContract } from "../../src/testing/index.js";
import { tempDir } from "./helpers.js";

const dirs = new WeakMap<Store, string>();

async function factory(): Promise<Store> {
  const dir = tempDir();
  const store = await FileStore.open({ directory: dir });
  dirs.set(store, dir);
  return store;
}

async function reopen(store: Store): Promise<Store> {
  const dir = dirs.get(store);
  if (!dir) throw new Error("not a store of this test");
  await store.close();
  const next = await FileStore.open({ directory: dir });
  dirs.set(next, dir);
  return next;
}

describeStoreContract("FileStore", factory, { reopen });

describeStoreContract("FileStore (compacted before every load)", factory, {
  reopen,
  propertyRuns: 30,
  beforeLoad: async (store, namespaces) => {
    for (const ns of namespaces) await store.compact?.(ns);
    return store;
  },
});

describeStoreContract("FileStore (reopened before every load)", factory, {
  reopen,
  propertyRuns: 30,
  beforeLoad: (store) => reopen(store),
});

const feedOptions = {
  // Another store on the same directory: what another process sees.
  peer: async (store: Store) => FileStore.open({ directory: dirs.get(store) as string }),
  // A compaction replaces the file: positions of the old one are gone.
  makeBehind: async (store: Store, namespace: string, cursor: { position: number; epoch: string }) => {
    await store.compact?.(namespace);
    return cursor;
  },
};
describeChangeFeedContract("FileStore", factory, feedOptions);

describeChangeFeedContract(
  "FileStore (compacting automatically all the time)",
  async () => {
    const dir = tempDir();
    const store = await FileStore.open({ directory: dir, autoCompact: { minLines: 1, ratio: 1 } });
    dirs.set(store, dir);
    return store;
  },
  { ...feedOptions, propertyRuns: 15 },
);
