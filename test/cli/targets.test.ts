/** The target URLs of the CLI: parsing (every error a ConfigurationError) and opening (file, memory). */
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExitCode, exitCodeOf } from "../../src/cli/errors.js";
import { Backend, openTarget, parseTarget, TargetKind } from "../../src/cli/targets.js";
import { FileEventStore, FileReadModelStore, FileStore } from "../../src/file/index.js";
import { isConfigurationError, isNotFoundError } from "../../src/index.js";
import { MemoryEventStore, MemoryReadModelStore, MemoryStore } from "../../src/memory/index.js";

describe("parseTarget", () => {
  it("reads file targets: file: URLs and bare paths, relative and absolute", () => {
    expect(parseTarget("file:./data")).toMatchObject({ backend: Backend.File, kind: TargetKind.Store, path: "./data" });
    expect(parseTarget("file:/abs/dir").path).toBe("/abs/dir");
    expect(parseTarget("file:///abs/dir").path).toBe("/abs/dir");
    expect(parseTarget("file://localhost/abs/dir").path).toBe("/abs/dir");
    expect(parseTarget("file:./my%20dir").path).toBe("./my dir");
    expect(parseTarget("./data")).toMatchObject({ backend: Backend.File, kind: TargetKind.Store, path: "./data" });
    expect(parseTarget("/var/lib/x").path).toBe("/var/lib/x");
    expect(parseTarget("C:\\data").path).toBe("C:\\data");
    expect(parseTarget("file+events:./ev")).toMatchObject({ kind: TargetKind.Events, path: "./ev" });
    expect(parseTarget("file+models:./rm")).toMatchObject({ kind: TargetKind.ReadModels, path: "./rm" });
    expect(parseTarget("file:./d?sync=none").params).toEqual({ sync: "none" });
    expect(parseTarget("file+events:./d?segmentBytes=4096").params).toEqual({ segmentBytes: 4096 });
  });

  it("reads NATS targets: servers, bucket or stream, credentials, options", () => {
    expect(parseTarget("nats://localhost:4222/orders")).toMatchObject({
      backend: Backend.Nats,
      kind: TargetKind.Store,
      servers: ["localhost:4222"],
      name: "orders",
    });
    expect(parseTarget("nats://a:4222,b:4223/x").servers).toEqual(["a:4222", "b:4223"]);
    expect(parseTarget("nats://localhost").name).toBeUndefined();
    const auth = parseTarget("nats://me:s3cret@host:4222/b?history=10&replicas=3&storage=memory");
    expect(auth).toMatchObject({
      user: "me",
      password: "s3cret",
      params: { history: 10, replicas: 3, storage: "memory" },
    });
    expect(auth.display).toBe("nats://me:***@host:4222/b?history=10&replicas=3&storage=memory");
    expect(parseTarget("nats://tok@host/b")).toMatchObject({ token: "tok", display: "nats://***@host/b" });
    // A secret holding "@": the credentials end at the last "@" of the authority, for the parser and the display.
    expect(parseTarget("nats://alice:s3cr@tPart@localhost:4222/bucket")).toMatchObject({
      user: "alice",
      password: "s3cr@tPart",
      display: "nats://alice:***@localhost:4222/bucket",
    });
    expect(parseTarget("nats://t@k@host/b")).toMatchObject({ token: "t@k", display: "nats://***@host/b" });
    expect(parseTarget("nats+events://host:4222/EVENTS")).toMatchObject({ kind: TargetKind.Events, name: "EVENTS" });
    expect(parseTarget("nats+models://host/models")).toMatchObject({ kind: TargetKind.ReadModels, name: "models" });
  });

  it("reads Kafka and memory targets", () => {
    expect(parseTarget("kafka://b1:9092,b2:9092/changelog?partitions=3")).toMatchObject({
      backend: Backend.Kafka,
      servers: ["b1:9092", "b2:9092"],
      name: "changelog",
      params: { partitions: 3 },
    });
    expect(parseTarget("memory:")).toMatchObject({ backend: Backend.Memory, kind: TargetKind.Store, path: "" });
    expect(parseTarget("memory:shared").path).toBe("shared");
    expect(parseTarget("memory+events:")).toMatchObject({ kind: TargetKind.Events });
    expect(parseTarget("MEMORY+MODELS:")).toMatchObject({ backend: Backend.Memory, kind: TargetKind.ReadModels });
  });

  it("refuses bad URLs with a ConfigurationError saying what is wrong (exit code 2)", () => {
    const cases: [string, RegExp][] = [
      ["", /it is empty/],
      [
        "redis://host/x",
        /unknown scheme "redis:"; use file:, nats:\/\/, kafka:\/\/ or memory:.*file:<path> or \.\/<path>/,
      ],
      ["file+logs:./x", /unknown scheme "file\+logs:"/],
      ["kafka+events://b/t", /kafka has no event store/],
      ["kafka+models://b/t", /kafka has no read-model store/],
      ["file://server/share", /a file target is local.*"server"/],
      ["file:", /no directory/],
      ["file:?sync=none", /no directory/],
      ["file:./x?fsync=true", /unknown parameter "fsync"; file: accepts "sync"/],
      ["memory:?x=1", /unknown parameter "x"; memory: accepts none/],
      // Names of Object.prototype's members are parameters like any other: unknown here.
      ["memory:?toString=1", /unknown parameter "toString"; memory: accepts none/],
      ["file:./x?constructor=1", /unknown parameter "constructor"; file: accepts "sync"/],
      ["file:./x?sync=none&sync=fsync", /parameter "sync" is given twice/],
      ["nats:localhost/b", /write nats:\/\/host:4222\/bucket/],
      ["nats:///b", /no host/],
      ["nats://host:port/b", /"host:port" is not host or host:port/],
      ["nats://host/a/b", /one bucket or stream name after the host/],
      ["nats://host/b?history=ten", /parameter "history" must be a number, got "ten"/],
      ["nats://host/b?history=2&history=3", /parameter "history" is given twice/],
      ["kafka://user:pw@b:9092/t", /credentials in a kafka:\/\/ URL are not supported/],
      [
        "kafka://b:9092/t?topic=x",
        /unknown parameter "topic"; kafka: accepts "partitions", "groupId", "stallTimeoutMs"/,
      ],
      ["memory://x", /write memory: or memory:<name>, without \/\//],
      ["memory:a/b", /a memory instance name may hold/],
      ["file:./%zz", /bad %-escape/],
    ];
    for (const [url, message] of cases) {
      let error: unknown;
      try {
        parseTarget(url);
      } catch (e) {
        error = e;
      }
      expect(isConfigurationError(error), url).toBe(true);
      expect((error as Error).message, url).toMatch(message);
      expect(exitCodeOf(error)).toBe(ExitCode.Usage);
    }
    // A password never appears in an error message.
    expect(() => parseTarget("nats://me:s3cret@host/b?x=1")).toThrow(/nats:\/\/me:\*\*\*@host\/b/);
    expect(() => parseTarget("nats://me:s3cret@host/b?x=1")).not.toThrow(/s3cret/);
  });
});

describe("openTarget", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "statelog-targets-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("opens a file store, event store and read-model store, and closes them (idempotently)", async () => {
    const store = await openTarget(`file:${join(dir, "s")}`, { create: true });
    expect(store.store).toBeInstanceOf(FileStore);
    expect([store.backend, store.kind, store.eventStore, store.readModels]).toEqual([
      "file",
      "store",
      undefined,
      undefined,
    ]);
    await store.store?.save([{ namespace: "n", changeType: "set", entityType: "t", entityId: "1", entity: { a: 1 } }]);
    await store.close();
    await store.close();
    await using again = await openTarget(join(dir, "s"));
    expect((await again.store?.load("n"))?.map((c) => c.entity)).toEqual([{ a: 1 }]);
    expect(again.identity).toBe(store.identity);

    await using events = await openTarget(`file+events:${join(dir, "e")}`, { create: true });
    expect(events.eventStore).toBeInstanceOf(FileEventStore);
    await using models = await openTarget(`file+models:${join(dir, "m")}`, { create: true });
    expect(models.readModels).toBeInstanceOf(FileReadModelStore);
  });

  it("creates nothing without create: a missing directory is a NotFoundError", async () => {
    for (const url of [
      `file:${join(dir, "none")}`,
      `file+events:${join(dir, "none")}`,
      `file+models:${join(dir, "none")}`,
    ]) {
      const error = await openTarget(url).catch((e: unknown) => e);
      expect(isNotFoundError(error), url).toBe(true);
      expect((error as Error).message).toContain(`directory ${JSON.stringify(join(dir, "none"))} not found`);
    }
    expect(await readdir(dir)).not.toContain("none");
    await writeFile(join(dir, "plain"), "x");
    const notDir = await openTarget(`file:${join(dir, "plain")}`).catch((e: unknown) => e);
    expect(isConfigurationError(notDir)).toBe(true);
    expect((notDir as Error).message).toContain("is not a directory");
  });

  it("passes query options to the backend, whose own checks name a bad value", async () => {
    const error = await openTarget(`file:${join(dir, "q")}?sync=sometimes`, { create: true }).catch((e: unknown) => e);
    expect(isConfigurationError(error)).toBe(true);
    expect((error as Error).message).toMatch(/sync/);
    await using ok = await openTarget(`file:${join(dir, "q2")}?sync=none&fsyncOn=event-loop`, { create: true });
    expect(ok.store).toBeInstanceOf(FileStore);
    expect([(ok.store as FileStore).sync, (ok.store as FileStore).fsyncOn]).toEqual(["none", "event-loop"]);
    // fsyncOn reaches each kind of file target: a bad value is the backend's own error, a good one is kept.
    for (const kind of ["file", "file+events", "file+models"]) {
      const bad = await openTarget(`${kind}:${join(dir, `${kind}-bad`)}?fsyncOn=sometimes`, { create: true }).catch(
        (e: unknown) => e,
      );
      expect(isConfigurationError(bad), kind).toBe(true);
      expect((bad as Error).message).toContain("fsyncOn");
    }
    await using events = await openTarget(`file+events:${join(dir, "e")}?fsyncOn=event-loop`, { create: true });
    expect((events.eventStore as FileEventStore | undefined)?.fsyncOn).toBe("event-loop");
    await using models = await openTarget(`file+models:${join(dir, "m")}?fsyncOn=event-loop`, { create: true });
    expect((models.readModels as FileReadModelStore | undefined)?.fsyncOn).toBe("event-loop");
  });

  it("checks its own options: an unknown or bad one is a ConfigurationError", async () => {
    const unknown = await openTarget("memory:", { creat: true } as never).catch((e: unknown) => e);
    expect(isConfigurationError(unknown)).toBe(true);
    expect((unknown as Error).message).toContain("creat");
    const bad = await openTarget("memory:", { connectTimeoutMs: 0 }).catch((e: unknown) => e);
    expect(isConfigurationError(bad)).toBe(true);
    expect((bad as Error).message).toContain("openTarget option connectTimeoutMs must be");
  });

  it("opens memory targets: a new instance each time, or one per name in this process", async () => {
    const a = await openTarget("memory:");
    const b = await openTarget("memory:");
    expect(a.store).toBeInstanceOf(MemoryStore);
    expect(a.store).not.toBe(b.store);
    expect(a.identity).toBeUndefined();
    await a.close();
    await b.close();
    const named = await openTarget("memory:shared");
    await named.store?.save([{ namespace: "n", changeType: "set", entityType: "t", entityId: "1", entity: 1 }]);
    await named.close(); // a named instance outlives its targets
    await using again = await openTarget("memory:shared");
    expect(await again.store?.load("n")).toHaveLength(1);
    expect(again.identity).toBe("memory:store:shared");
    await using events = await openTarget("memory+events:");
    expect(events.eventStore).toBeInstanceOf(MemoryEventStore);
    await using models = await openTarget("memory+models:");
    expect(models.readModels).toBeInstanceOf(MemoryReadModelStore);
  });
});
