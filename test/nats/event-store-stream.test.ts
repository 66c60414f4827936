/**
 * NatsEventStore on a stream that is not what its index was read from: a
 * message deleted from the middle, a stream of another subject prefix. The
 * store refuses or fails loudly (typed), never serves an index that skips
 * or misplaces events.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { isConfigurationError, isCorruptionError } from "../../src/index.js";
import { NatsEventStore } from "../../src/nats/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("event-store-stream-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

const event = (n: number) => createEvent("counted", { n });
const settle = (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e: unknown) => e,
  );

/** Publishes a message as an append of `n` events at `first` would (another process, or a message read late). */
async function publishAppend(subject: string, first: number, n: number, at = new Date()): Promise<void> {
  const events = Array.from({ length: n }, (_, i) => ({
    id: `raw-${first + i}`,
    type: "counted",
    timestamp: at.toISOString(),
    data: { n: first + i },
  }));
  await jetstream(nc).publish(subject, JSON.stringify({ first, events }));
}

describe("NatsEventStore on a stream id with positions missing in the middle", () => {
  it("open refuses a stream id one of whose middle messages was deleted, naming it and the positions", async () => {
    const stream = uniqueBucket("HOLE");
    const a = await NatsEventStore.open({ client: nc, stream });
    for (let n = 1; n <= 5; n++) await a.append("s", [event(n)]);
    await a.close();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.deleteMessage(stream, 4); // the message holding position 4
    const error = await settle(NatsEventStore.open({ client: nc, stream }));
    expect(isCorruptionError(error), String(error)).toBe(true);
    expect(String(error)).toContain('stream id "s" goes from position 3 to 5');
    // The way out the error names: remove the stream id's messages before the one after the gap.
    expect(String(error)).toContain(`purge subject ${a.prefix}.s below sequence 5`);
    await jsm.streams.purge(stream, { filter: `${a.prefix}.s`, seq: 5 });
    await using reopened = await NatsEventStore.open({ client: nc, stream });
    expect((await reopened.readStream("s")).map((e) => e.position)).toEqual([5]);
  });

  it("a running store that reads such a message fails instead of skipping positions", async () => {
    const stream = uniqueBucket("HOLE");
    await using a = await NatsEventStore.open({ client: nc, stream });
    await a.append("s", [event(1), event(2)]);
    await publishAppend(`${a.prefix}.s`, 5, 1);
    const error = await settle(a.catchUp());
    expect(isCorruptionError(error), String(error)).toBe(true);
    expect(String(error)).toContain("positions 3 to 4 were deleted");
    expect(await settle(a.readStream("s", 2))).toBe(error);
  });

  it("positions the server expired before the store read them: the older events expire from the index too", async () => {
    const stream = uniqueBucket("HOLE");
    let offset = 0;
    const clock = () => new Date(Date.now() + offset);
    await using a = await NatsEventStore.open({ client: nc, stream, retentionDurationMs: 3_600_000, clock });
    await a.append("s", [event(1), event(2), event(3)]);
    // Two hours later, by the store's clock: the server expired position 4 before this store read it.
    offset = 2 * 3_600_000;
    await publishAppend(`${a.prefix}.s`, 5, 1, clock());
    await a.catchUp();
    expect((await a.readStream("s")).map((e) => e.position)).toEqual([5]);
    expect((await a.readStream("s", 4)).map((e) => e.position)).toEqual([5]);
    expect((await a.getStreamInfo("s")).firstPosition).toBe(5);
  });
});

describe("NatsEventStore on a stream of other subjects", () => {
  it("open refuses a stream created with another subjectPrefix, naming both", async () => {
    const stream = uniqueBucket("PREFIX");
    const a = await NatsEventStore.open({ client: nc, stream, subjectPrefix: "app.ev" });
    await a.append("orders", [event(1)]);
    await a.close();
    for (const subjectPrefix of [undefined, "app"]) {
      const error = await settle(NatsEventStore.open({ client: nc, stream, subjectPrefix }));
      expect(isConfigurationError(error), String(error)).toBe(true);
      expect(String(error)).toContain('has the subjects ["app.ev.>"]');
      expect(String(error)).toContain('open it with subjectPrefix "app.ev"');
    }
    await using b = await NatsEventStore.open({ client: nc, stream, subjectPrefix: "app.ev" });
    expect((await b.readStream("orders")).map((e) => e.data)).toEqual([{ n: 1 }]);
  });

  it("a message outside the prefix (subjects added to the stream later) fails the store as unreadable", async () => {
    const stream = uniqueBucket("PREFIX");
    await using a = await NatsEventStore.open({ client: nc, stream });
    await a.append("s", [event(1)]);
    const jsm = await jetstreamManager(nc);
    const { config } = await jsm.streams.info(stream);
    const other = `other.${stream}`;
    await jsm.streams.update(stream, { ...config, subjects: [...config.subjects, `${other}.>`] });
    await publishAppend(`${other}.s`, 2, 1);
    const error = await settle(a.catchUp());
    expect(isCorruptionError(error), String(error)).toBe(true);
    expect(String(error)).toContain(`subject ${other}.s is not under the store's prefix`);
  });
});
