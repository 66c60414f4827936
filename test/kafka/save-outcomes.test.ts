/**
 * What a KafkaStore save of several changes reports when its records fail,
 * with a stand-in for the client's Producer whose delivery reports the
 * test picks: every record failed and none may have been written is the
 * first record's own error (the save failed as a whole); some written is a
 * PartialWriteError naming them.
 */
import { EventEmitter } from "node:events";
import { describe, expect, it, vi } from "vitest";

/** The stand-in Producer: records what it was given, emits the reports the test asks for. */
class FakeProducer extends EventEmitter {
  static current: FakeProducer | undefined;
  readonly produced: { partition: number; key: string }[] = [];

  constructor(readonly conf: Record<string, unknown>) {
    super();
    FakeProducer.current = this;
  }

  connect(options: { topic: string }, cb: (err: unknown, data: unknown) => void): void {
    cb(null, { topics: [{ name: options.topic, partitions: [{ id: 0 }, { id: 1 }] }] });
  }

  isConnected(): boolean {
    return true;
  }

  setPollInBackground(): void {}

  produce(_topic: string, partition: number, value: Buffer | null, key: string): void {
    this.produced.push({ partition, key });
    void value;
  }

  disconnect(cb?: () => void): void {
    cb?.();
  }

  flush(_timeout: number, cb?: () => void): void {
    cb?.();
  }

  /** The delivery report of produced record `i`: stored at `offset`, or failed with `code`. */
  report(i: number, outcome: { offset: number } | { code: number }, size: number): void {
    const { partition, key } = this.produced[i] as { partition: number; key: string };
    const err = "code" in outcome ? Object.assign(new Error(`failed ${key}`), { code: outcome.code }) : null;
    this.emit("delivery-report", err, {
      topic: "t",
      partition,
      offset: "offset" in outcome ? outcome.offset : -1,
      key: Buffer.from(key, "utf8"),
      size,
      timestamp: 1,
    });
  }
}

vi.mock("@confluentinc/kafka-javascript", () => {
  const client = { Producer: FakeProducer, KafkaConsumer: class {}, AdminClient: class {}, librdkafkaVersion: "fake" };
  return { ...client, default: client };
});

const { isPartialWriteError } = await import("../../src/index.js");
const { isKafkaDeliveryError, KafkaStore } = await import("../../src/kafka/index.js");

const change = (id: string) => ({
  namespace: "ns",
  changeType: "set" as const,
  entityType: "item",
  entityId: id,
  entity: { id },
});
/** The JSON bytes of `change(id)`'s entity (what a report's size is). */
const size = (id: string) => Buffer.byteLength(JSON.stringify({ id }));

/** Starts a save of changes `ids` and waits until the stand-in was given its records. */
async function saving(ids: string[]) {
  const store = await KafkaStore.open({ brokers: "localhost:1", topic: "t", env: {} });
  const saved = store.save(ids.map(change)).then(
    () => undefined,
    (error: unknown) => error,
  );
  await vi.waitFor(() => expect(FakeProducer.current?.produced.length).toBe(ids.length));
  return { store, saved, fake: FakeProducer.current as FakeProducer };
}

describe("KafkaStore save outcomes", () => {
  it("every record refused (none may be written): the first record's own error, not a PartialWriteError", async () => {
    const { store, saved, fake } = await saving(["a", "b"]);
    fake.report(0, { code: 10 }, size("a")); // MSG_SIZE_TOO_LARGE from the broker: certainly not written
    fake.report(1, { code: 10 }, size("b"));
    const error = await saved;
    expect(isPartialWriteError(error), String(error)).toBe(false);
    expect(isKafkaDeliveryError(error), String(error)).toBe(true);
    expect((error as Error).message).toContain("failed ns/item/a");
    await store.close();
  });

  it("one written, one refused: a PartialWriteError naming each", async () => {
    const { store, saved, fake } = await saving(["a", "b"]);
    fake.report(0, { offset: 7 }, size("a"));
    fake.report(1, { code: 10 }, size("b"));
    const error = await saved;
    expect(isPartialWriteError(error), String(error)).toBe(true);
    expect(error).toMatchObject({ written: [0], uncertain: [] });
    await store.close();
  });
});
