/** The CLI against the test nats-server, run as a child process: stores (KV), event stores and read models. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExitCode } from "../../src/cli/errors.js";
import { createEvent } from "../../src/events/index.js";
import { FileStore } from "../../src/file/index.js";
import { NatsEventStore, NatsKvStore, NatsReadModelStore } from "../../src/nats/index.js";
import { connectTest, deleteTestStreams, natsUrl, uniqueBucket } from "../nats/env.js";
import { jsonLines, outcome, start } from "./run.js";
import { expectSampleNamespaces, expectTailFollows, saveSample } from "./sample.js";

describe("statelog CLI on NATS", { timeout: 120_000 }, () => {
  let nc: NatsConnection;
  let dir: string;
  let bucket: string;
  let url: string;
  beforeAll(async () => {
    nc = await connectTest("statelog-cli-test");
    dir = await mkdtemp(join(tmpdir(), "statelog-cli-nats-"));
    bucket = uniqueBucket("cli");
    url = `${natsUrl()}/${bucket}?history=5`;
    await using store = await NatsKvStore.open({ client: nc, bucket, history: 5 });
    await saveSample(store);
  });
  afterAll(async () => {
    await deleteTestStreams(nc);
    await nc.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("namespaces, dump and stats of a KV bucket", async () => {
    await expectSampleNamespaces(url);
    const dump = await outcome("dump", url, "a", "--no-progress");
    expect(jsonLines(dump.stdout).map((c) => [c.entityID, c.changeType, c.entity])).toEqual([
      ["1", "set", { v: 2 }],
      ["2", "unset", undefined],
    ]);
    const stats = await outcome("stats", url, "--json");
    // 5 changes and 2 namespace markers, every revision kept (history 5).
    expect(JSON.parse(stats.stdout)).toMatchObject({
      backend: "nats",
      namespaces: 2,
      live: 2,
      deleted: 1,
      messages: 7,
    });
  });

  it("history: the revisions the bucket keeps; after compact, the latest only", async () => {
    const h = await outcome("history", url, "a", "t", "1", "--json");
    expect(h.code, h.stderr).toBe(ExitCode.Ok);
    const entries = JSON.parse(h.stdout) as { position: number; change: { entity: unknown } }[];
    expect(entries.map((e) => e.change.entity)).toEqual([{ v: 1 }, { v: 2 }]);
    expect(entries[0]!.position).toBeLessThan(entries[1]!.position);
    const verify = await outcome("verify", url, "--json", "--no-progress");
    expect(verify.code).toBe(ExitCode.Ok);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, checked: { namespaces: 2, changes: 3 } });
    const compacted = await outcome("compact", url, "a");
    expect(compacted.stdout).toContain("compacted 1 namespace(s)");
    const after = await outcome("history", url, "a", "t", "1", "--json");
    expect(JSON.parse(after.stdout).map((e: { change: { entity: unknown } }) => e.change.entity)).toEqual([{ v: 2 }]);
  });

  it("verify: a namespace marker whose key does not decode is reported as damage, with the report", async () => {
    const name = uniqueBucket("marker");
    {
      await using store = await NatsKvStore.open({ client: nc, bucket: name });
      await saveSample(store);
    }
    await (await new Kvm(nc).open(name)).put("bad_zz", "x");
    const json = await outcome("verify", `${natsUrl()}/${name}`, "--json", "--no-progress");
    expect(json.code, json.stderr).toBe(ExitCode.Damaged);
    expect(json.stderr).toBe("");
    expect(JSON.parse(json.stdout)).toEqual({
      target: `${natsUrl()}/${name}`,
      ok: false,
      checked: {},
      problems: [
        {
          severity: "error",
          where: "namespaces",
          message: expect.stringMatching(
            /bad escape in key token bad_zz.*\[STATELOG_CORRUPTION\]; the namespaces cannot be listed, so none was loaded$/,
          ),
        },
      ],
    });
    const text = await outcome("verify", `${natsUrl()}/${name}`, "--no-progress");
    expect(text.code).toBe(ExitCode.Damaged);
    expect(text.stdout).toMatch(/^error {3}namespaces: .*bad_zz/m);
    expect(text.stdout).toMatch(/^DAMAGED: .*; 1 error\(s\), 0 warning\(s\)$/m);
  });

  it("copies NATS → file → a new NATS bucket", async () => {
    const file = join(dir, "backup");
    const toFile = await outcome("copy", url, `file:${file}`, "--json", "--no-progress");
    expect(toFile.code, toFile.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(toFile.stdout)).toMatchObject({ namespaces: 2, changes: 3 });
    await using backup = await FileStore.open({ directory: file });
    expect((await backup.load("a", { liveOnly: true })).map((c) => c.entity)).toEqual([{ v: 2 }]);
    const other = uniqueBucket("copy");
    const back = await outcome("migrate", file, `${natsUrl()}/${other}`);
    expect(back.code, back.stderr).toBe(ExitCode.Ok);
    expect(back.stdout).toContain("copied 3 change(s) in 2 namespace(s)");
    await using copy = await NatsKvStore.open({ client: nc, bucket: other });
    expect((await copy.load("b")).map((c) => c.entity)).toEqual([{ w: 1 }]);
    const self = await outcome("copy", url, `${natsUrl()}/${bucket}`);
    expect(self.code).toBe(ExitCode.Usage);
    expect(self.stderr).toContain("cannot copy a store onto itself");
  });

  it("copy into a bucket interrupted by Ctrl-C in the middle of a save: exit 130, saying what was written", async () => {
    const source = join(dir, "many");
    {
      await using store = await FileStore.open({ directory: source });
      const changes = Array.from({ length: 200_000 }, (_, i) => ({
        namespace: "big",
        changeType: "set" as const,
        entityType: "t",
        entityId: String(i),
        entity: { i },
      }));
      await store.save(changes);
    }
    const target = uniqueBucket("abort");
    // One save of every change: the interruption lands inside the bucket's save, between its publishes.
    const copy = start("copy", source, `${natsUrl()}/${target}`, "-b", "200000", "--no-progress");
    const jsm = await jetstreamManager(nc);
    const stored = () =>
      jsm.streams.info(`KV_${target}`).then(
        (info) => info.state.messages,
        () => 0,
      );
    const deadline = Date.now() + 60_000;
    while ((await stored()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(await copy.stop("SIGINT")).toBe(ExitCode.Interrupted);
    expect(copy.stderr).toMatch(
      /^statelog: operation aborted \(interrupted\): 0 change\(s\) copied in whole saves: 0 of 1 namespace\(s\) in full, 0 change\(s\) of namespace "big", and of the save under way \d+ of 200000 changes were written, .*\d+ not written; the target keeps what was copied \(nats:\/\/[^)]+\); copying again is safe \[STATELOG_ABORTED\]$/m,
    );
    expect(copy.stderr).not.toContain("STATELOG_PARTIAL_WRITE");
  });

  it("a missing bucket is not created (exit 3); an unreachable server exits 6", async () => {
    const name = uniqueBucket("none");
    const missing = await outcome("namespaces", `${natsUrl()}/${name}`);
    expect(missing.code).toBe(ExitCode.NotFound);
    expect(missing.stderr).toContain(`NATS KV bucket "${name}" not found [STATELOG_NOT_FOUND]`);
    const jsm = await jetstreamManager(nc);
    await expect(jsm.streams.info(`KV_${name}`)).rejects.toThrow(/not found/i);
    const down = await outcome("namespaces", "nats://127.0.0.1:1/b");
    expect(down.code).toBe(ExitCode.Unavailable);
    expect(down.stderr).toContain("cannot connect to NATS at 127.0.0.1:1");
  });

  it("tail: the current state then the barrier; -f follows live saves until SIGTERM", async () => {
    await expectTailFollows(url, "live-nats", async (change) => {
      await using store = await NatsKvStore.open({ client: nc, bucket });
      await store.save([change]);
    });
  });

  it("event store: streams, read, and subscribe following live appends until SIGTERM", async () => {
    const stream = uniqueBucket("EV");
    const events = `nats+events://${natsUrl().replace(/^nats:\/\//, "")}/${stream}`;
    await using store = await NatsEventStore.open({ client: nc, stream });
    await store.append("order-1", [createEvent("placed", { n: 1 }), createEvent("paid", { n: 2 })]);
    const streams = await outcome("streams", events, "--json");
    expect(streams.code, streams.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(streams.stdout)).toEqual([expect.objectContaining({ streamId: "order-1", eventCount: 2 })]);
    const read = await outcome("read", events, "order-1", "--format", "table");
    expect(read.stdout).toMatch(/^order-1\s+2\s+2\s+paid\s+\S+Z\s+\{"n":2\}$/m);

    const sub = start("subscribe", events);
    await sub.until((out, err) => err.includes("caught up") && out.includes('"paid"'));
    await store.append("order-2", [createEvent("placed", { n: 3 })]);
    await sub.until((out) => out.includes('"order-2"'));
    expect(await sub.stop()).toBe(ExitCode.Ok);
    expect(jsonLines(sub.stdout).map((e) => e.globalPosition)).toEqual([1, 2, 3]);
    const verify = await outcome("verify", events, "--json", "--no-progress");
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, checked: { events: 3, streams: 2 } });
  });

  it("read models: status of projections", async () => {
    const name = uniqueBucket("rm");
    await using models = await NatsReadModelStore.open({ client: nc, bucket: name });
    await models.updateProjectionStatus({
      name: "orders",
      status: "failed",
      checkpoint: 7,
      updatedAt: new Date("2026-01-01T00:00:00.000Z"),
      lastError: "boom",
      failedPosition: 8,
    });
    const status = await outcome(
      "status",
      `nats+models://${natsUrl().replace(/^nats:\/\//, "")}/${name}`,
      "orders",
      "--json",
    );
    expect(status.code, status.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(status.stdout)).toEqual([
      {
        name: "orders",
        status: "failed",
        checkpoint: 7,
        updatedAt: "2026-01-01T00:00:00.000Z",
        lastError: "boom",
        failedPosition: 8,
      },
    ]);
  });
});
