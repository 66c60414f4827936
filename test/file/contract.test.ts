import type { Store } from "../../src/core/store.js";
import { FileStore } from "../../src/file/index.js";
import { describeStoreContract } from "../../src/testing/index.js";
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
