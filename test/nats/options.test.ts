/**
 * Every invalid option of a NATS object is a ConfigurationError that names
 * the class and the option, refused before anything is created on the
 * server; old spellings get a hint.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import { createEvent } from "../../src/events/index.js";
import { EVENT_ENVELOPE_BYTES } from "../../src/nats/event-store-options.js";
import {
  NATS_EVENT_STORE_DEFAULTS,
  NATS_KV_REPOSITORY_DEFAULTS,
  NATS_KV_STORE_DEFAULTS,
  NATS_READ_MODEL_STORE_DEFAULTS,
  NatsEventStore,
  NatsKvRepository,
  NatsKvSnapshotStore,
  NatsKvStore,
  NatsReadModelStore,
  NatsSimpleRepository,
} from "../../src/nats/index.js";
import { STORE_ENVELOPE_BYTES } from "../../src/nats/kv-store-options.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("options-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

/** Resolves to the refusal of `opening`, which must be a ConfigurationError whose message matches every pattern. */
async function refused(opening: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  const error = await opening.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isStatelogError(error, ErrorCode.Configuration), `expected a ConfigurationError, got ${String(error)}`).toBe(
    true,
  );
  for (const p of patterns) expect((error as Error).message).toMatch(p);
}

async function streamNames(): Promise<string[]> {
  const names: string[] = [];
  for await (const n of (await jetstreamManager(nc)).streams.names()) names.push(n);
  return names;
}

describe("NatsKvStore options", () => {
  const bucket = uniqueBucket("opt_store");
  const open = (options: Record<string, unknown>) => NatsKvStore.open({ client: nc, bucket, ...options } as never);

  it("refuses each kind of invalid option, naming the class and the option, and creates nothing", async () => {
    await refused(NatsKvStore.open(undefined as never), /NatsKvStore option client must be an open NATS connection/);
    await refused(NatsKvStore.open({} as never), /option client/);
    await refused(open({ client: { servers: "nats://x" } }), /option client must be an open NATS connection/);
    await refused(open({ bucketName: "b" }), /NatsKvStore has no option bucketName; it is called bucket/);
    await refused(open({ bukket: "b" }), /has no option bukket/);
    await refused(open({ bucket: "a.b" }), /option bucket must be a KV bucket name/);
    await refused(open({ bucket: "" }), /option bucket/);
    // The bucket's stream is KV_<bucket>, and the server takes stream names of at most 255 characters.
    await refused(
      open({ bucket: "b".repeat(253) }),
      /option bucket must be a KV bucket name of .*\(1 to 252 characters\)/,
    );
    await refused(open({ replicas: 0 }), /option replicas must be an integer >= 1 and <= 5, got 0/);
    await refused(open({ storage: "disk" }), /option storage must be one of "file", "memory", got "disk"/);
    await refused(open({ maxInFlight: 1.5 }), /option maxInFlight must be an integer >= 1/);
    await refused(open({ history: 65 }), /option history must be an integer >= 1 and <= 64, got 65/);
    await refused(open({ maxValueBytes: 0 }), /option maxValueBytes must be an integer >= 1, got 0/);
    await refused(open({ maxValueBytes: nc.info?.max_payload }), /max_payload is \d+ bytes/);
    await refused(open({ unknownEntityTypes: "drop" }), /option unknownEntityTypes must be one of/);
    await refused(open({ clock: "now" }), /option clock must be a function/);
    expect(await streamNames()).not.toContain(`KV_${bucket}`);
  });

  it("opens with the documented defaults", async () => {
    expect(NATS_KV_STORE_DEFAULTS).toEqual({
      bucket: "statelog",
      replicas: 1,
      storage: "file",
      maxInFlight: 1024,
      history: 1,
      maxValueBytes: 1024 * 1024,
    });
    const store = await open({});
    expect(store.bucket).toBe(bucket);
    expect(store.maxValueBytes).toBe(1024 * 1024); // the test server's max_payload (2 MiB) carries 1 MiB
    expect(store.capabilities).toEqual({ compact: true, listNamespaces: true, durable: true, watch: true });
    const info = await (await jetstreamManager(nc)).streams.info(store.stream);
    expect(info.config.max_msgs_per_subject).toBe(1);
    expect(info.config.num_replicas).toBe(1);
    await store.close();
    await store.close(); // idempotent
  });

  it("an existing bucket's own largest message (max_msg_size) bounds a change: the limit follows it, or a larger one is refused", async () => {
    const limited = uniqueBucket("limited");
    const { Kvm } = await import("@nats-io/kv");
    await new Kvm(nc).create(limited, { maxValueSize: 1000 });
    const store = await NatsKvStore.open({ client: nc, bucket: limited });
    expect(store.maxValueBytes).toBe(1000 - STORE_ENVELOPE_BYTES);
    // A save with one change too large for the bucket is refused before anything is written.
    const ns = uniqueBucket("ns");
    const set = (id: string, size: number) => ({
      namespace: ns,
      changeType: "set" as const,
      entityType: "item",
      entityId: id,
      entity: { pad: "x".repeat(size) },
    });
    const error = await store.save([set("a", 10), set("b", 5_000), set("c", 10)]).catch((e: unknown) => e);
    expect(isStatelogError(error, ErrorCode.TooLarge), String(error)).toBe(true);
    expect(await store.load(ns)).toEqual([]);
    await store.save([set("a", 10), set("c", 10)]);
    expect((await store.load(ns)).map((c) => c.entityId)).toEqual(["a", "c"]);
    await store.close();
    await refused(
      NatsKvStore.open({ client: nc, bucket: limited, maxValueBytes: 2_000 }),
      /max_msg_size\) is 1000 bytes, which cannot carry a value of maxValueBytes 2000 .*lower maxValueBytes to at most 928/,
    );
  });

  it("the snapshot store follows an existing bucket's max_msg_size: a larger snapshot is a TooLargeError", async () => {
    const { Kvm } = await import("@nats-io/kv");
    const bucket = uniqueBucket("limited-snap");
    await new Kvm(nc).create(bucket, { maxValueSize: 1024, history: 8 });
    const snapshots = await NatsKvSnapshotStore.open({ client: nc, bucket });
    const snapshot = (pad: number) => ({
      streamId: "order-1",
      version: 1,
      snapshotVersion: 1,
      state: { pad: "x".repeat(pad) },
      createdAt: new Date(),
    });
    const error = await snapshots.save(snapshot(4096)).catch((e: unknown) => e);
    expect(isStatelogError(error, ErrorCode.TooLarge), String(error)).toBe(true);
    await snapshots.save(snapshot(100));
    expect((await snapshots.load("order-1"))?.version).toBe(1);
    await snapshots.close();
  });

  it("the repository and the read-model store follow an existing bucket's max_msg_size too", async () => {
    const { Kvm } = await import("@nats-io/kv");
    const [forRepo, forModels] = [uniqueBucket("limited-repo"), uniqueBucket("limited-rm")];
    await new Kvm(nc).create(forRepo, { maxValueSize: 8000 });
    await new Kvm(nc).create(forModels, { maxValueSize: 8000 });
    const repo = await NatsKvRepository.open({
      client: nc,
      bucket: forRepo,
      aggregateType: "order",
      idOf: (o: { id: string; pad?: string }) => o.id,
    });
    expect(repo.maxValueBytes).toBe(8000 - 256);
    const tooLarge = await repo.save({ id: "a", pad: "x".repeat(7800) }).catch((e: unknown) => e);
    expect(isStatelogError(tooLarge, ErrorCode.TooLarge), String(tooLarge)).toBe(true);
    await repo.close();
    const models = await NatsReadModelStore.open({ client: nc, bucket: forModels });
    expect(models.maxValueBytes).toBe(8000 - 4096);
    await models.close();
    await refused(
      NatsReadModelStore.open({ client: nc, bucket: forModels, maxValueBytes: 5000 }),
      /max_msg_size\) is 8000 bytes/,
    );
  });

  it("registers entity types: under unknownEntityTypes reject only registered types are saved", async () => {
    const store = await open({ unknownEntityTypes: "reject", entityTypes: ["order"] });
    const ns = uniqueBucket("ns");
    const error = await store
      .save([{ namespace: ns, changeType: "set", entityType: "invoice", entityId: "a", entity: 1 }])
      .catch((e: unknown) => e);
    expect(isStatelogError(error, ErrorCode.UnknownEntityType), String(error)).toBe(true);
    expect(await store.load(ns)).toEqual([]);
    store.registerEntityType("invoice");
    await store.save([{ namespace: ns, changeType: "set", entityType: "invoice", entityId: "a", entity: 1 }]);
    expect((await store.load(ns)).map((c) => c.entityType)).toEqual(["invoice"]);
    await store.close();
  });
});

describe("NatsKvRepository and NatsSimpleRepository options", () => {
  const bucket = uniqueBucket("opt_repo");
  const base = { bucket, aggregateType: "Order" };
  const open = (options: Record<string, unknown>) =>
    NatsKvRepository.open({ ...base, client: nc, ...options } as never);

  it("refuses each kind of invalid option, naming the class and the option, and creates nothing", async () => {
    await refused(open({ client: undefined }), /NatsKvRepository option client must be an open NATS connection/);
    await refused(open({ bucket: undefined, bucketName: bucket }), /has no option bucketName; it is called bucket/);
    await refused(open({ bucket: undefined }), /option bucket must be a KV bucket name/);
    await refused(open({ bucket: "a b" }), /option bucket must be a KV bucket name/);
    await refused(open({ aggregateType: undefined }), /option aggregateType must be an aggregate type name/);
    await refused(open({ aggregateType: "a/b" }), /option aggregateType/);
    await refused(open({ idOf: "id" }), /option idOf must be a function/);
    await refused(open({ history: 0 }), /option history must be an integer >= 1 and <= 64, got 0/);
    await refused(open({ ttlSeconds: -1 }), /option ttlSeconds must be a finite number >= 0, got -1/);
    // What the server's max_age can hold: 0.0004 s rounded to "never", 1e10 s overflowed its nanoseconds.
    for (const ttlSeconds of [0.0004, 0.05, 1e10]) {
      await refused(open({ ttlSeconds }), /option ttlSeconds must be 0 \(never\) or a number of seconds from 0.1 to/);
    }
    await refused(open({ maxValueBytes: "1MB" }), /option maxValueBytes must be an integer >= 1, got "1MB"/);
    await refused(open({ replicas: 6 }), /option replicas must be an integer >= 1 and <= 5, got 6/);
    await refused(open({ storage: "ssd" }), /option storage must be one of "file", "memory"/);
    await refused(open({ perSaveTtl: "yes" }), /option perSaveTtl must be true or false/);
    await refused(open({ maxCasAttempts: 0 }), /option maxCasAttempts must be an integer >= 1, got 0/);
    await refused(open({ ttl: 60 }), /NatsKvRepository has no option ttl/);
    await refused(
      open({ maxAggregateBytes: 1024 }),
      /NatsKvRepository has no option maxAggregateBytes; it is called maxValueBytes/,
    );
    await refused(
      NatsSimpleRepository.open({ ...base, client: nc, history: 100 }),
      /NatsSimpleRepository option history must be an integer >= 1 and <= 64, got 100/,
    );
    expect(await streamNames()).not.toContain(`KV_${bucket}`);
  });

  it("opens with the documented defaults (history 1, no expiry)", async () => {
    expect(NATS_KV_REPOSITORY_DEFAULTS).toEqual({
      history: 1,
      ttlSeconds: 0,
      maxValueBytes: 1024 * 1024,
      replicas: 1,
      storage: "file",
      perSaveTtl: false,
      maxCasAttempts: 100,
    });
    const repo = await NatsSimpleRepository.open<{ id: string }>({ ...base, client: nc });
    expect(repo).toBeInstanceOf(NatsSimpleRepository);
    expect(repo.maxValueBytes).toBe(1024 * 1024);
    expect(repo.capabilities).toEqual({ ttl: true, perSaveTtl: false, durable: true });
    const info = await (await jetstreamManager(nc)).streams.info(repo.stream);
    expect([info.config.max_msgs_per_subject, info.config.max_age]).toEqual([1, 0]);
    await repo.close();
  });
});

describe("NatsEventStore options", () => {
  const stream = uniqueBucket("OPT_EV");
  const open = (options: Record<string, unknown>) => NatsEventStore.open({ client: nc, stream, ...options } as never);

  it("an existing stream's own largest message (max_msg_size) bounds an event and a batch", async () => {
    const limited = uniqueBucket("LIMITED_EV");
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: limited, subjects: [`statelog.events.${limited}.>`], max_msg_size: 8000 });
    const store = await NatsEventStore.open({ client: nc, stream: limited });
    expect(store.maxValueBytes).toBe(8000 - EVENT_ENVELOPE_BYTES);
    const event = (size: number) => createEvent("padded", { pad: "x".repeat(size) });
    // One event over the limit, and a batch of events within it that makes a message over max_msg_size:
    // each is refused before anything is sent, as a TooLargeError.
    for (const batch of [[event(5_000)], [event(3_000), event(3_000), event(3_000)]]) {
      const error = await store.append("s", batch).catch((e: unknown) => e);
      expect(isStatelogError(error, ErrorCode.TooLarge), String(error)).toBe(true);
    }
    expect(store.stats().globalPosition).toBe(0);
    expect((await jsm.streams.info(limited)).state.messages).toBe(0);
    await store.append("s", [event(3_000), event(3_000)]);
    expect((await store.readStream("s")).map((e) => e.position)).toEqual([1, 2]);
    await store.close();
    await refused(
      NatsEventStore.open({ client: nc, stream: limited, maxValueBytes: 5_000 }),
      /stream "LIMITED_EV_.*max_msg_size\) is 8000 bytes, which cannot carry a value of maxValueBytes 5000 .*lower maxValueBytes to at most 3904, leave it out \(it then follows the stream\)/,
    );
  });

  it("refuses each kind of invalid option, naming the class and the option, and creates nothing", async () => {
    await refused(open({ client: 1 }), /NatsEventStore option client must be an open NATS connection .*, got 1$/);
    await refused(open({ stream: "a.b" }), /option stream must be a JetStream stream name/);
    await refused(
      open({ stream: "s".repeat(256) }),
      /option stream must be a JetStream stream name of .*255 characters/,
    );
    await refused(open({ bucket: "b" }), /NatsEventStore has no option bucket; it is called stream/);
    for (const subjectPrefix of ["", "a b", "foo.", ".foo", "foo..bar", "foo.>", "foo.*", 5]) {
      await refused(open({ subjectPrefix }), /option subjectPrefix must be a NATS subject of dot-separated tokens/);
    }
    await refused(open({ replicas: 2.5 }), /option replicas must be an integer/);
    await refused(open({ storage: 1 }), /option storage must be one of "file", "memory", got 1/);
    await refused(open({ maxValueBytes: -5 }), /option maxValueBytes must be an integer >= 1, got -5/);
    await refused(open({ maxValueBytes: nc.info?.max_payload }), /max_payload is \d+ bytes/);
    await refused(open({ retentionDurationMs: -1 }), /option retentionDurationMs must be a finite number >= 0/);
    for (const retentionDurationMs of [50, 1e16]) {
      await refused(open({ retentionDurationMs }), /option retentionDurationMs must be 0 \(none\) or from 100 to/);
    }
    await refused(open({ strem: "x" }), /NatsEventStore has no option strem/);
    // The options of every event store are reported under the class name too, with their rename hints.
    await refused(open({ maxStreams: -1 }), /NatsEventStore option maxStreams must be an integer >= 0, got -1/);
    await refused(open({ metrics: 5 }), /NatsEventStore option metrics must be an object of optional hooks/);
    await refused(
      open({ retentionDuration: 1000 }),
      /NatsEventStore has no option retentionDuration; it is called retentionDurationMs/,
    );
    await refused(
      open({ maxEventBytes: 1000 }),
      /NatsEventStore has no option maxEventBytes; it is called maxValueBytes/,
    );
    expect(await streamNames()).not.toContain(stream);
  });

  it("opens with the documented defaults", async () => {
    expect(NATS_EVENT_STORE_DEFAULTS).toEqual({
      stream: "STATELOG_EVENTS",
      replicas: 1,
      storage: "file",
      maxValueBytes: 1024 * 1024,
      catchUpTimeoutMs: 30_000,
    });
    const store = await open({});
    expect(store.prefix).toBe(`statelog.events.${stream}`);
    expect(store.capabilities.durable).toBe(true);
    await store.close();
  });
});

describe("NatsReadModelStore options", () => {
  const bucket = uniqueBucket("opt_rm");
  const open = (options: Record<string, unknown>) =>
    NatsReadModelStore.open({ client: nc, bucket, ...options } as never);

  it("refuses each kind of invalid option, naming the class and the option, and creates nothing", async () => {
    await refused(open({ client: null }), /NatsReadModelStore option client must be an open NATS connection/);
    await refused(open({ bucketName: "b" }), /NatsReadModelStore has no option bucketName; it is called bucket/);
    await refused(open({ bucket: "x>" }), /option bucket must be a KV bucket name/);
    await refused(open({ replicas: "3" }), /option replicas must be an integer/);
    await refused(open({ storage: "tape" }), /option storage must be one of/);
    await refused(open({ maxValueBytes: 1.5 }), /option maxValueBytes must be an integer >= 1, got 1.5/);
    await refused(open({ maxValueBytes: nc.info?.max_payload }), /max_payload is \d+ bytes/);
    expect(await streamNames()).not.toContain(`KV_${bucket}`);
  });

  it("opens with the documented defaults", async () => {
    expect(NATS_READ_MODEL_STORE_DEFAULTS).toEqual({
      bucket: "read-models",
      replicas: 1,
      storage: "file",
      maxValueBytes: 1024 * 1024,
    });
    const store = await open({});
    expect(store.bucket).toBe(bucket);
    expect(store.maxValueBytes).toBe(1024 * 1024);
    await store.close();
    await store.close();
  });
});
