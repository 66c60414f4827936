/**
 * What the CLI tests share: the sample data they write, the namespaces it
 * gives, a file read-model store with one projection status, and `tail -f`
 * following a live save.
 */
import { expect } from "vitest";
import { ExitCode } from "../../src/cli/errors.js";
import { FileReadModelStore } from "../../src/file/index.js";
import type { Store } from "../../src/index.js";
import { jsonLines, outcome, start } from "./run.js";

/** A change that sets `namespace`/`entityType`/`entityId` to `entity`. */
export const set = (namespace: string, entityId: string, entity: unknown, entityType = "t") => ({
  namespace,
  changeType: "set" as const,
  entityType,
  entityId,
  entity,
});

/** A file read-model store in `directory` holding one status: projection "orders", up to date at checkpoint 4. */
export async function writeOrdersStatus(directory: string): Promise<void> {
  await using readModels = await FileReadModelStore.open({ directory });
  await readModels.updateProjectionStatus({
    name: "orders",
    status: "up_to_date",
    checkpoint: 4,
    updatedAt: new Date("2026-01-02T03:04:05.000Z"),
    lagEvents: 0,
  });
}

/** Three saves: a/t/1 set twice ({v: 2} last), a/t/2 set then unset, b/t/1 set ({w: 1}). */
export async function saveSample(store: Store): Promise<void> {
  await store.save([set("a", "1", { v: 1 }), set("a", "2", { v: 1 }), set("b", "1", { w: 1 })]);
  await store.save([set("a", "1", { v: 2 })]);
  await store.save([{ namespace: "a", changeType: "unset", entityType: "t", entityId: "2" }]);
}

/** `statelog namespaces <url> --json` of the sample. */
export async function expectSampleNamespaces(url: string): Promise<void> {
  const ns = await outcome("namespaces", url, "--json");
  expect(ns.code, ns.stderr).toBe(ExitCode.Ok);
  expect(JSON.parse(ns.stdout)).toEqual([
    { namespace: "a", live: 1, deleted: 1 },
    { namespace: "b", live: 1, deleted: 0 },
  ]);
}

/**
 * `tail` of namespace b: the current state then the barrier; `tail -f`
 * then shows `save`'s live change (entity id `id`) and exits 0 on SIGTERM.
 */
export async function expectTailFollows(
  url: string,
  id: string,
  save: (change: ReturnType<typeof set>) => Promise<void>,
) {
  const once = await outcome("tail", url, "b", "--json");
  expect(once.code, once.stderr).toBe(ExitCode.Ok);
  expect(jsonLines(once.stdout).map((e) => e.type)).toEqual(["change", "caught-up"]);

  const follow = start("tail", url, "b", "-f", "--json");
  await follow.until((out) => out.includes('"caught-up"'));
  await save(set("b", id, { live: 1 }));
  await follow.until((out) => out.includes(`"${id}"`));
  const lines = jsonLines(follow.stdout);
  expect(lines.map((e) => e.type)).toEqual(["change", "caught-up", "change"]);
  expect(lines[2]).toMatchObject({ change: { entityID: id, entity: { live: 1 } } });
  expect(await follow.stop("SIGTERM")).toBe(ExitCode.Ok);
}
