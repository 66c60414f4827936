/**
 * What a KafkaStore save of several changes reports when its records fail,
 * with a stand-in for the client's Producer whose delivery reports the
 * test picks: every record failed and none may have been written is the
 * first record's own error (the save failed as a whole); some written is a
 * PartialWriteError naming them.
 */
import { describe, expect, it, vi } from "vitest";

vi.mock("@confluentinc/kafka-javascript", async () => (await import("./fake-producer.js")).fakeKafkaClient());

const { FakeProducer } = await import("./fake-producer.js");
type FakeProducer = InstanceType<typeof FakeProducer>;
const { isPartialWriteError } = await import("../../src/index.js");
const { isKafkaDeliveryError, KafkaStore, partitionForNamespace } = await import("../../src/kafka/index.js");

const change = (id: string) => ({
  namespace: "ns",
  changeType: "set" as const,
  entityType: "item",
  entityId: id,
  entity: { id },
});
/** The partition of namespace "ns" on the stand-in's topic of two partitions. */
const partition = partitionForNamespace("ns", 2);
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
    // MSG_SIZE_TOO_LARGE from the broker: certainly not written.
    fake.report(partition, "ns/item/a", { code: 10 }, { timestamp: undefined, size: size("a") });
    fake.report(partition, "ns/item/b", { code: 10 }, { timestamp: undefined, size: size("b") });
    const error = await saved;
    expect(isPartialWriteError(error), String(error)).toBe(false);
    expect(isKafkaDeliveryError(error), String(error)).toBe(true);
    expect((error as Error).message).toContain("failed ns/item/a");
    await store.close();
  });

  it("one written, one refused: a PartialWriteError naming each", async () => {
    const { store, saved, fake } = await saving(["a", "b"]);
    fake.report(partition, "ns/item/a", { offset: 7 }, { timestamp: 1, size: size("a") });
    fake.report(partition, "ns/item/b", { code: 10 }, { timestamp: undefined, size: size("b") });
    const error = await saved;
    expect(isPartialWriteError(error), String(error)).toBe(true);
    expect(error).toMatchObject({ written: [0], uncertain: [] });
    await store.close();
  });
});
