/**
 * A NatsEventStore on a 3-node cluster whose ordered consumer's node is
 * killed and stays down. nats.js then asks for the consumer's info again
 * and again, neither delivering nor pulling; the store notices the
 * consumer's silence and replaces it with one the server places on a live
 * node, so a live subscription keeps getting another process's appends,
 * each once and in order, also after the node is back.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { sleep } from "../../src/index.js";
import { NatsEventStore } from "../../src/nats/index.js";
import { collectTypes } from "../helpers/subscription.js";
import { replicatedOnAnyServer, startCluster, type TestNatsCluster } from "./cluster.js";

let cluster: TestNatsCluster;
const connections: NatsConnection[] = [];
beforeAll(async () => {
  cluster = await startCluster({ name: "statelog-es-down" });
}, 120_000);
afterAll(async () => {
  await Promise.all(connections.map((c) => c.close().catch(() => undefined)));
  await cluster?.stop();
});

/** `attempt` again every 500 ms while it fails (a cluster electing new leaders), for up to a minute. */
async function retried<T>(attempt: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      if (tries >= 120) throw error;
      await sleep(500);
    }
  }
}

/** Appends `type` to "s" once, at position `expected` + 1 (an attempt that failed may have stored it). */
function appendOnce(store: NatsEventStore, type: string, expected: number): Promise<unknown> {
  return retried(async () => {
    try {
      await store.append("s", [createEvent(type, {})], { expectedVersion: expected });
    } catch (error) {
      await store.catchUp();
      if ((await store.readStream("s")).at(expected)?.type !== type) throw error;
    }
  });
}

describe("NatsEventStore whose ordered consumer's node is killed", () => {
  it("a live subscription gets another process's appends, once each, in order", { timeout: 240_000 }, async () => {
    const options = { servers: cluster.urls, reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5_000 };
    const a = await connect({ ...options, name: "es-down-a" });
    const b = await connect({ ...options, name: "es-down-b" });
    connections.push(a, b);
    const stream = "ESDOWN";
    await using storeA = await NatsEventStore.open(replicatedOnAnyServer({ client: a, stream, replicas: 3 }));
    await storeA.append("s", [createEvent("first", {})]);
    // Store A's ordered consumer is the stream's only one; nodes are named <cluster>-n<i>.
    const consumers = await (await jetstreamManager(b)).consumers.list(stream).next();
    expect(consumers).toHaveLength(1);
    const host = consumers[0]?.cluster?.leader ?? "";
    const node = Number(host.slice(-1));
    expect(host).toMatch(/-n[012]$/u);

    const subscription = collectTypes(storeA, "s");
    const got = subscription.types;
    await vi.waitFor(() => expect(got).toEqual(["first"]), { timeout: 10_000 });

    await cluster.nodes[node]?.kill("SIGKILL");
    // Another process appends, through the two nodes left.
    await using storeB = await retried(() =>
      NatsEventStore.open(replicatedOnAnyServer({ client: b, stream, replicas: 3 })),
    );
    await appendOnce(storeB, "second", 1);
    await vi.waitFor(() => expect(got).toEqual(["first", "second"]), { timeout: 60_000, interval: 100 });

    // The node comes back: its old consumer delivers nothing more to store A.
    await cluster.start(node);
    await appendOnce(storeB, "third", 2);
    await vi.waitFor(() => expect(got).toEqual(["first", "second", "third"]), { timeout: 60_000, interval: 100 });
    await storeA.catchUp();
    expect((await storeA.readStream("s")).map((e) => e.type)).toEqual(["first", "second", "third"]);
    expect(got).toEqual(["first", "second", "third"]);
    await subscription.stop();
  });
});
