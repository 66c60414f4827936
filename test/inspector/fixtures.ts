/**
 * Real stores with data for the inspector's tests: a MemoryStore, a
 * FileStore in a temp directory (with a history: a key saved several
 * times), a MemoryEventStore and a FileEventStore with streams, and
 * memory and file read-model stores with projection statuses.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEvent } from "../../src/events/index.js";
import { FileEventStore, FileReadModelStore, FileStore } from "../../src/file/index.js";
import type { InspectorTarget } from "../../src/inspector/index.js";
import { MemoryEventStore, MemoryReadModelStore, MemoryStore } from "../../src/memory/index.js";

/** A value that would run script if the page ever treated entity data as markup. */
export const HOSTILE = `<img src=x onerror="window.__pwned=1"></td><script>window.__pwned=2</script>`;

export interface Fixture {
  readonly memory: MemoryStore;
  readonly file: FileStore;
  readonly memoryEvents: MemoryEventStore;
  readonly fileEvents: FileEventStore;
  readonly memoryModels: MemoryReadModelStore;
  readonly fileModels: FileReadModelStore;
  readonly directory: string;
  readonly targets: InspectorTarget[];
  close(): Promise<void>;
}

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, s));

export async function openFixture(): Promise<Fixture> {
  const directory = await mkdtemp(join(tmpdir(), "statelog-inspector-"));
  const memory = await MemoryStore.open();
  await memory.save([
    {
      namespace: "acme",
      changeType: "set",
      entityType: "user",
      entityId: "alice",
      entity: { name: "Alice", role: "admin" },
    },
    { namespace: "acme", changeType: "set", entityType: "user", entityId: "bob", entity: { name: "Bob", role: "dev" } },
    {
      namespace: "acme",
      changeType: "set",
      entityType: "order",
      entityId: "o-1",
      entity: { note: HOSTILE, total: 42 },
    },
    { namespace: "acme", changeType: "unset", entityType: "user", entityId: "carol" },
    { namespace: "globex", changeType: "set", entityType: "user", entityId: "dave", entity: { name: "Dave" } },
  ]);
  const file = await FileStore.open({ directory: join(directory, "store"), sync: "none" });
  for (const [i, status] of ["draft", "sent", "paid"].entries()) {
    await file.save([
      {
        namespace: "shop",
        changeType: "set",
        entityType: "invoice",
        entityId: "inv-7",
        entity: { status, amount: 120 },
        timestamp: at(i),
      },
    ]);
  }
  await file.save([
    { namespace: "shop", changeType: "set", entityType: "customer", entityId: "c-1", entity: { name: "Zoe" } },
  ]);
  const memoryEvents = await MemoryEventStore.open();
  await memoryEvents.append("order-1", [
    createEvent("order.placed", { total: 42 }, { timestamp: at(0) }),
    createEvent("order.paid", { total: 42 }, { timestamp: at(20) }),
    createEvent("order.shipped", { carrier: HOSTILE }, { timestamp: at(40) }),
  ]);
  await memoryEvents.append("order-2", [createEvent("order.placed", { total: 7 }, { timestamp: at(30) })]);
  const fileEvents = await FileEventStore.open({ directory: join(directory, "events"), sync: "none" });
  await fileEvents.append("audit", [
    createEvent("login", { user: "alice" }, { timestamp: at(1) }),
    createEvent("logout", { user: "alice" }, { timestamp: at(9) }),
  ]);
  const memoryModels = await MemoryReadModelStore.open();
  await memoryModels.updateProjectionStatus({
    name: "order-summary",
    status: "catching_up",
    checkpoint: 2,
    updatedAt: new Date(),
    lagEvents: 2,
  });
  const fileModels = await FileReadModelStore.open({ directory: join(directory, "models"), sync: "none" });
  await fileModels.updateProjectionStatus({
    name: "audit-log",
    status: "up_to_date",
    checkpoint: 2,
    updatedAt: new Date(),
  });
  const targets: InspectorTarget[] = [
    { name: "memory:", store: memory, eventStore: memoryEvents, readModels: memoryModels },
    {
      name: `file:${directory}`,
      store: file,
      eventStore: fileEvents,
      readModels: fileModels,
      projections: ["not-started"],
    },
  ];
  return {
    memory,
    file,
    memoryEvents,
    fileEvents,
    memoryModels,
    fileModels,
    directory,
    targets,
    async close() {
      await Promise.all([
        memory.close(),
        file.close(),
        memoryEvents.close(),
        fileEvents.close(),
        memoryModels.close(),
        fileModels.close(),
      ]);
      await rm(directory, { recursive: true, force: true });
    },
  };
}
