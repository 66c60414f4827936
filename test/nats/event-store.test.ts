import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import type { EventStore } from "../../src/events/types.js";
import { createEvent } from "../../src/events/types.js";
import { NatsEventStore } from "../../src/nats/index.js";
import { describeEventStoreContract, sampleEvents } from "../../src/testing/event-store-contract.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("event-store-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

describeEventStoreContract(
  "NatsEventStore",
  (config) => NatsEventStore.open({ ...config, client: nc, stream: uniqueBucket("EV") }),
  {
    reopen: async (store: EventStore) => {
      const nats = store as NatsEventStore;
      await store.close();
      return NatsEventStore.open({ client: nc, stream: nats.stream });
    },
    settle: async (store) => {
      await (store as NatsEventStore).catchUp();
    },
    modelRuns: 1000,
  },
);

describe("NatsEventStore across processes (two connections, one stream)", () => {
  it("both writers append with gap-free positions; each reads the other's events after catchUp", async () => {
    const stream = uniqueBucket("EVX");
    const other = await connectTest("event-store-other");
    const a = await NatsEventStore.open({ client: nc, stream });
    const b = await NatsEventStore.open({ client: other, stream });
    try {
      const s = "orders/42";
      await Promise.all([
        ...Array.from({ length: 10 }, (_, i) => a.append(s, sampleEvents(`a${i}`, 2))),
        ...Array.from({ length: 10 }, (_, i) => b.append(s, sampleEvents(`b${i}`, 1))),
      ]);
      await a.catchUp();
      await b.catchUp();
      const fromA = await a.readStream(s);
      const fromB = await b.readStream(s);
      expect(fromA.map((e) => e.position)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(fromB.map((e) => [e.id, e.position, e.globalPosition])).toEqual(
        fromA.map((e) => [e.id, e.position, e.globalPosition]),
      );
      // Batches stay contiguous: a0-1 is directly followed by a0-2.
      const i = fromA.findIndex((e) => e.id === "a0-1");
      expect(fromA[i + 1]?.id).toBe("a0-2");
    } finally {
      await a.close();
      await b.close();
      await other.close();
    }
  });

  it("of two writers with the same expected version exactly one wins, checked by the server", async () => {
    const stream = uniqueBucket("EVC");
    const other = await connectTest("event-store-cas");
    const a = await NatsEventStore.open({ client: nc, stream });
    const b = await NatsEventStore.open({ client: other, stream });
    try {
      await a.append("s", sampleEvents("x", 1));
      await b.catchUp();
      for (let round = 1; round <= 5; round++) {
        const results = await Promise.allSettled([
          a.append("s", sampleEvents(`a${round}`, 1), { expectedVersion: round }),
          b.append("s", sampleEvents(`b${round}`, 1), { expectedVersion: round }),
        ]);
        expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
        const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
        expect(isStatelogError(lost.reason, ErrorCode.VersionConflict), String(lost.reason)).toBe(true);
      }
      await a.catchUp();
      expect((await a.getStreamInfo("s")).lastPosition).toBe(6);
    } finally {
      await a.close();
      await b.close();
      await other.close();
    }
  });

  it("a subscriber on one process receives another process's appends live, without gaps", async () => {
    const stream = uniqueBucket("EVS");
    const other = await connectTest("event-store-sub");
    const a = await NatsEventStore.open({ client: nc, stream });
    const b = await NatsEventStore.open({ client: other, stream });
    try {
      await b.append("live", sampleEvents("h", 3));
      const sub = a.subscribe("live", 0);
      const writer = (async () => {
        for (let i = 0; i < 20; i++) await b.append("live", sampleEvents(`l${i}`, 1));
      })();
      const seen: number[] = [];
      for await (const e of sub) {
        seen.push(e.position);
        if (seen.length === 23) break;
      }
      await writer;
      expect(seen).toEqual(Array.from({ length: 23 }, (_, i) => i + 1));
    } finally {
      await a.close();
      await b.close();
      await other.close();
    }
  });

  it("a batch larger than the server's max_payload is a TooLargeError and appends nothing", async () => {
    const stream = uniqueBucket("EVB");
    const limit = nc.info?.max_payload ?? 1024 * 1024;
    // A maxValueBytes the server cannot carry is refused at open, naming both numbers.
    const refused = await NatsEventStore.open({ client: nc, stream, maxValueBytes: limit }).catch((e: unknown) => e);
    expect(isStatelogError(refused, ErrorCode.Configuration), String(refused)).toBe(true);
    expect(String(refused)).toContain(`max_payload is ${limit} bytes`);
    // Each event fits the (default) maxValueBytes, the batch as one message does not.
    const store = await NatsEventStore.open({ client: nc, stream });
    try {
      const part = Math.ceil(limit / 3);
      const big = [0, 1, 2, 3].map((i) =>
        createEvent("t", "x".repeat(Math.min(part, 1024 * 1024 - 2)), { id: `big${i}` }),
      );
      const error = await store.append("s", big).catch((e: unknown) => e);
      expect(isStatelogError(error, ErrorCode.TooLarge), String(error)).toBe(true);
      await expect(store.getStreamInfo("s")).rejects.toThrow(/not found/);
    } finally {
      await store.close();
    }
  });
});
