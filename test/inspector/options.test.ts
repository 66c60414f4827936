/**
 * Inspector.open: each invalid option is a ConfigurationError naming the
 * inspector, the option and what it accepts; a port in use is an
 * UnavailableError; close() is idempotent.
 */
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isConfigurationError, isUnavailableError } from "../../src/index.js";
import { INSPECTOR_DEFAULTS, Inspector, type InspectorOptions } from "../../src/inspector/index.js";
import { isWildcardAddress } from "../../src/inspector/options.js";
import { MemoryEventStore, MemoryReadModelStore, MemoryStore } from "../../src/memory/index.js";

let store: MemoryStore;
let models: MemoryReadModelStore;
let events: MemoryEventStore;

beforeAll(async () => {
  store = await MemoryStore.open();
  models = await MemoryReadModelStore.open();
  events = await MemoryEventStore.open();
});

afterAll(async () => {
  await Promise.all([store.close(), models.close(), events.close()]);
});

async function refused(options: unknown, message: RegExp): Promise<void> {
  const error = await Inspector.open(options as InspectorOptions).then(
    (i) => {
      void i.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(isConfigurationError(error), String(error)).toBe(true);
  expect((error as Error).message).toMatch(message);
}

describe("Inspector options", () => {
  it("defaults: 127.0.0.1, a free port, read-only", async () => {
    expect(INSPECTOR_DEFAULTS).toMatchObject({ host: "127.0.0.1", port: 0, allowWrites: false });
    const i = await Inspector.open({ targets: [{ name: "m", store }] });
    try {
      expect(i.port).toBeGreaterThan(0);
      expect(i.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${i.port}/\\?token=`));
      const overview = (await await fetch(`http://127.0.0.1:${i.port}/api/overview`, {
        headers: { Authorization: `Bearer ${i.token}` },
      }).then((r) => r.json())) as { allowWrites: boolean; targets: { name: string }[] };
      expect(overview.allowWrites).toBe(false);
      expect(overview.targets.map((t) => t.name)).toEqual(["m"]);
    } finally {
      await i.close();
      await i.close();
    }
    const refusedAfterClose = await fetch(`http://127.0.0.1:${i.port}/`).then(
      () => "answered",
      () => "refused",
    );
    expect(refusedAfterClose).toBe("refused");
  });

  it("takes a given token and port", async () => {
    const token = "t".repeat(40);
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await using i = await Inspector.open({ targets: [{ name: "m", store }], token, port });
    expect(i.token).toBe(token);
    expect(i.port).toBe(port);
    expect(i.url).toBe(`http://127.0.0.1:${port}/?token=${token}`);
  });

  it("refuses missing or invalid targets", async () => {
    await refused(undefined, /Inspector needs options with targets/);
    await refused({}, /Inspector option targets must be a non-empty array/);
    await refused({ targets: [] }, /option targets must be a non-empty array/);
    await refused({ targets: [null] }, /targets\[0\] is not an object/);
    await refused({ targets: [{ store }] }, /targets\[0\]\.name must be a non-empty string/);
    await refused({ targets: [{ name: "a" }] }, /targets\[0\] needs a store, an eventStore or readModels/);
    await refused(
      {
        targets: [
          { name: "a", store },
          { name: "a", eventStore: events },
        ],
      },
      /targets\[1\]\.name "a" is used twice/,
    );
    await refused({ targets: [{ name: "a", store: {} }] }, /targets\[0\]\.store must be a Store/);
    await refused({ targets: [{ name: "a", eventStore: store }] }, /targets\[0\]\.eventStore must be an EventStore/);
    await refused({ targets: [{ name: "a", readModels: store }] }, /targets\[0\]\.readModels must be a ReadModelStore/);
    await refused(
      { targets: [{ name: "a", readModels: models, projections: [""] }] },
      /projections must be an array of projection names/,
    );
    await refused({ targets: [{ name: "a", store, projections: ["p"] }] }, /projections needs readModels/);
    await refused({ targets: [{ name: "a", store, dir: "x" }] }, /targets\[0\] has no option dir/);
    await refused(
      { targets: [{ name: "a", store, history: "x" }] },
      /targets\[0\]\.history must be a function, with a store/,
    );
    await refused(
      { targets: [{ name: "a", eventStore: events, history: async () => ({ entries: [] }) }] },
      /history must be a function, with a store/,
    );
  });

  it("refuses other invalid options", async () => {
    const targets = [{ name: "m", store }];
    await refused({ targets, host: "0.0.0.0" }, /option host must be one address of this machine, not a wildcard/);
    await refused({ targets, host: "::" }, /not a wildcard/);
    // Every spelling of a wildcard: each would listen on every interface.
    for (const host of ["::0", "0::", "0:0::0", "0000::", "0:0:0:0:0:0:0:0", "[::]", "::ffff:0.0.0.0", "::ffff:0:0"]) {
      await refused({ targets, host }, /not a wildcard/);
    }
    // An address with a zone is one address (no TypeError from the canonical form); a wildcard with one is not.
    expect(isWildcardAddress("::1%lo")).toBe(false);
    expect(isWildcardAddress("::%lo")).toBe(true);
    await refused({ targets, host: "example.com" }, /option host must be an IP address or localhost/);
    await refused({ targets, host: "" }, /option host must be an address of this machine/);
    await refused({ targets, port: 70000 }, /option port must be an integer >= 0 and <= 65535, got 70000/);
    await refused({ targets, port: 1.5 }, /option port must be an integer/);
    await refused({ targets, allowWrites: "yes" }, /option allowWrites must be true or false, got "yes"/);
    await refused({ targets, token: "short" }, /option token must be at least 32 characters/);
    await refused({ targets, token: `${"a".repeat(40)}&x=1` }, /option token must be at least 32 characters/);
    await refused({ targets, lagSampleIntervalMs: 0 }, /option lagSampleIntervalMs must be an integer >= 10/);
    await refused({ targets, readOnly: true }, /Inspector has no option readOnly/);
    await refused("targets", /Inspector options must be an object/);
  });

  it("a port in use is an UnavailableError", async () => {
    await using first = await Inspector.open({ targets: [{ name: "m", store }] });
    const error = await Inspector.open({ targets: [{ name: "m", store }], port: first.port }).catch((e: unknown) => e);
    expect(isUnavailableError(error)).toBe(true);
    expect((error as Error).message).toContain(`127.0.0.1:${first.port}`);
  });

  it("leaves the stores open on close (their owner closes them)", async () => {
    const i = await Inspector.open({ targets: [{ name: "m", store, eventStore: events, readModels: models }] });
    await i.close();
    await store.save([{ namespace: "n", changeType: "set", entityType: "t", entityId: "1", entity: {} }]);
    expect(await store.load("n")).toHaveLength(1);
    expect(await events.getStreams()).toEqual([]);
    expect(await models.listProjectionStatuses()).toEqual([]);
  });
});
