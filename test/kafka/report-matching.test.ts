/**
 * How the changelog producer (src/kafka/producer.ts) matches librdkafka's
 * delivery reports to the writes waiting for them, with a stand-in for
 * the client's Producer that hands out the reports in an order the test
 * picks: in produce order, a report goes to the oldest write of its
 * partition; a report for another key (a broker that stored a retried
 * request after a later one, as librdkafka's mock cluster can) goes to
 * the oldest write with that key, success or failure.
 */
import { afterEach, describe, expect, it, vi } from "vitest";

vi.mock("@confluentinc/kafka-javascript", async () => (await import("./fake-producer.js")).fakeKafkaClient());

const { FakeProducer } = await import("./fake-producer.js");
type FakeProducer = InstanceType<typeof FakeProducer>;

const { ChangelogProducer } = await import("../../src/kafka/producer.js");
const { isKafkaDeliveryError } = await import("../../src/kafka/index.js");

/** A connected producer over the stand-in, and the stand-in. */
async function open() {
  const producer = new ChangelogProducer("localhost:1", "t", {}, undefined);
  await producer.connect();
  return { producer, fake: FakeProducer.current as FakeProducer };
}

/** What each promise came to: its offset, or "failed". */
function outcomes(promises: Promise<{ offset: number }>[]): Promise<(number | "failed")[]> {
  return Promise.all(
    promises.map((p) =>
      p.then(
        (d) => d.offset,
        (error: unknown) => {
          expect(isKafkaDeliveryError(error), String(error)).toBe(true);
          return "failed" as const;
        },
      ),
    ),
  );
}

afterEach(() => {
  FakeProducer.current = undefined;
});

describe("delivery reports matched to writes", () => {
  it("in produce order: each report goes to the oldest write of its partition", async () => {
    const { producer, fake } = await open();
    const writes = ["a", "b", "c"].map((key) => producer.sendOne(0, key, "v", 1));
    const other = producer.sendOne(1, "a", "v", 1);
    expect(fake.produced).toEqual([
      { partition: 0, key: "a" },
      { partition: 0, key: "b" },
      { partition: 0, key: "c" },
      { partition: 1, key: "a" },
    ]);
    fake.report(1, "a", { offset: 7 });
    fake.report(0, "a", { offset: 10 });
    fake.report(0, "b", { offset: 11 });
    fake.report(0, null, { offset: 12 }); // no key: the oldest
    expect(await outcomes([...writes, other])).toEqual([10, 11, 12, 7]);
    expect(producer.pending).toBe(0);
  });

  it("a success for a later write goes to that write, not to the oldest", async () => {
    const { producer, fake } = await open();
    const keys = ["ns/item/1", "ns/item/2", "ns/ключ/3", "ns/café/4"];
    const writes = keys.map((key) => producer.sendOne(0, key, "v", 1));
    fake.report(0, "ns/item/2", { offset: 21 });
    fake.report(0, "ns/café/4", { offset: 23 });
    fake.report(0, "ns/item/1", { offset: 20 });
    fake.report(0, "ns/ключ/3", { offset: 22 });
    expect(await outcomes(writes)).toEqual([20, 21, 22, 23]);
  });

  it("a later write acknowledged, then the oldest failed: each write learns its own outcome", async () => {
    const { producer, fake } = await open();
    const writes = ["pe-1/item/31", "pe-2/item/32", "pe-3/item/33"].map((key) => producer.sendOne(0, key, "v", 1));
    fake.report(0, "pe-2/item/32", { offset: 5 });
    fake.report(0, "pe-1/item/31", { code: -192 }); // message timed out
    fake.report(0, "pe-3/item/33", { offset: 6 });
    expect(await outcomes(writes)).toEqual(["failed", 5, 6]);
  });

  it("two writes of one key, the newer failed first: told apart by the sizes of their values", async () => {
    const { producer, fake } = await open();
    const writes = [producer.sendOne(0, "k", "v1", 1000), producer.sendOne(0, "k", "v-longer", 1001)];
    // The newer timed out in librdkafka's queue; a failure's report has no timestamp.
    fake.report(0, "k", { code: -192 }, { timestamp: undefined, size: 8 });
    fake.report(0, "k", { offset: 40 }, { timestamp: 1000, size: 2 });
    expect(await outcomes(writes)).toEqual([40, "failed"]);
  });

  it("two writes of one key, the newer stored first: its success goes to it, told apart by its size", async () => {
    const { producer, fake } = await open();
    const writes = [producer.sendOne(0, "k", "v1", 1000), producer.sendOne(0, "k", "v-longer", 1001)];
    fake.report(0, "k", { offset: 41 }, { timestamp: 1001, size: 8 }); // a broker that stored the newer first
    fake.report(0, "k", { code: -192 }, { timestamp: undefined, size: 2 });
    expect(await outcomes(writes)).toEqual(["failed", 41]);
  });

  it("many failures reported ahead of older writes, in bursts, then the rest: each write learns its own outcome", async () => {
    const { producer, fake } = await open();
    const n = 12_000;
    const key = (i: number) => `ns/item/${i}`;
    const writes = Array.from({ length: n }, (_, i) => producer.sendOne(0, key(i), "v", 1));
    // Writes that are not a multiple of 7 fail, in bursts of 500 reported ahead of the older writes (every
    // other burst newest first); the stored ones older than a burst's last write are reported after it,
    // oldest first.
    const failing = Array.from({ length: n }, (_, i) => i).filter((i) => i % 7 !== 0);
    let nextStored = 0;
    for (let b = 0; b < failing.length; b += 500) {
      const burst = failing.slice(b, b + 500);
      for (const i of (b / 500) % 2 === 0 ? burst : [...burst].reverse()) fake.report(0, key(i), { code: -192 });
      const last = burst[burst.length - 1] as number;
      for (; nextStored < last; nextStored += 7) fake.report(0, key(nextStored), { offset: nextStored });
    }
    for (; nextStored < n; nextStored += 7) fake.report(0, key(nextStored), { offset: nextStored });
    const got = await outcomes(writes);
    expect(got).toEqual(Array.from({ length: n }, (_, i) => (i % 7 === 0 ? i : "failed")));
    expect(producer.pending).toBe(0);
  });

  it("a write failed ahead of an older one, then a newer write of its key: the newer's report goes to the newer", async () => {
    const { producer, fake } = await open();
    const writes = ["a", "k", "k"].map((key) => producer.sendOne(0, key, "v", 1));
    fake.report(0, "k", { code: -192 }); // the first k, ahead of a
    fake.report(0, "a", { offset: 50 });
    fake.report(0, "k", { offset: 51 }); // in order: the second k is the oldest still waiting
    expect(await outcomes(writes)).toEqual([50, "failed", 51]);
    expect(producer.pending).toBe(0);
  });

  it("two writes of one key: reports for it go to them oldest first", async () => {
    const { producer, fake } = await open();
    const writes = ["k", "j", "k"].map((key) => producer.sendOne(0, key, "v", 1));
    fake.report(0, "j", { offset: 31 });
    fake.report(0, "k", { offset: 30 });
    fake.report(0, "k", { offset: 32 });
    expect(await outcomes(writes)).toEqual([30, 31, 32]);
  });
});
