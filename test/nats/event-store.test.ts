import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll } from "vitest";
import type { EventStore } from "../../src/events/types.js";
import { NatsEventStore } from "../../src/nats/index.js";
import { describeEventStoreContract } from "../../src/testing/event-store-contract.js";
import { connectTest, uniqueBucket } from "./env.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("event-store-test");
});
afterAll(async () => {
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
      await (store as NatsEventStore).sync();
    },
    modelRuns: 1000,
  },
);
