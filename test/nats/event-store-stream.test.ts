/**
 * NatsEventStore on a stream that is not what its index was read from: a
 * stream of another subject prefix. The store refuses or fails loudly
 * (typed), never serves an index that skips or misplaces events.
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
