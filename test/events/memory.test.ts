import { MemoryEventStore } from "../../src/events/index.js";
import { describeEventStoreContract } from "../../src/testing/event-store-contract.js";

// The model-based test runs 10,000 schedules against the memory store.
describeEventStoreContract("MemoryEventStore", (config) => new MemoryEventStore(config), { modelRuns: 10_000 });
