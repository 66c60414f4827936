/**
 * A NATS read on a 3-node cluster whose consumer's node is killed mid-read
 * and stays down. nats.js then asks for the consumer's info again and
 * again (neither a heartbeat nor "consumer not found" ever comes), so only
 * the read's own stall check ends the wait: the consumer is given up after
 * the lag grace and the read goes on with a new one after the last
 * sequence it delivered.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../../src/index.js";
import { ReadMode, readFiltered } from "../../src/nats/reader.js";
import { startCluster, type TestNatsCluster } from "./cluster.js";

let cluster: TestNatsCluster;
const connections: NatsConnection[] = [];
beforeAll(async () => {
  cluster = await startCluster({ name: "statelog-read-down" });
}, 120_000);
afterAll(async () => {
  await Promise.all(connections.map((c) => c.close().catch(() => undefined)));
  await cluster?.stop();
});

describe("a NATS read whose consumer's node is killed mid-read", () => {
  it("goes on with a new consumer: every message once, in order", { timeout: 90_000 }, async () => {
    const options = { servers: cluster.urls, reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5_000 };
    const admin = await connect({ ...options, name: "read-down-admin" });
    const reader = await connect({ ...options, name: "read-down-reader" });
    connections.push(admin, reader);
    const adminJsm = await jetstreamManager(admin);
    await adminJsm.streams.add({ name: "DOWN", subjects: ["down.>"], num_replicas: 3 });
    const count = 3_000;
    const acks: Promise<unknown>[] = [];
    for (let i = 0; i < count; i++) acks.push(jetstream(admin).publish(`down.k${i}`, String(i)));
    await Promise.all(acks);

    const seqs: number[] = [];
    const killed: Promise<string>[] = [];
    const read = readFiltered(
      jetstream(reader),
      await jetstreamManager(reader),
      "DOWN",
      "down.>",
      (m, seq) => {
        seqs.push(seq);
        if (seqs.length !== 100) return;
        // The node that hosts this consumer (nodes are named <cluster>-n<i>).
        killed.push(
          adminJsm.consumers.info("DOWN", m.info.consumer).then(async (ci) => {
            const host = ci.cluster?.leader ?? "";
            await cluster.nodes[Number(host.slice(-1))]?.kill("SIGKILL");
            return host;
          }),
        );
      },
      { mode: ReadMode.All, batch: 10 },
    );
    const outcome = await Promise.race([read, sleep(60_000).then(() => "hung" as const)]);
    expect(await Promise.all(killed)).toHaveLength(1);
    expect(outcome).not.toBe("hung");
    expect(outcome).toMatchObject({ lastSequence: count, lagged: true });
    expect(seqs).toEqual(Array.from({ length: count }, (_, i) => i + 1));
  });
});
