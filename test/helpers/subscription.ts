/** A live subscription of a test, collecting what it receives. */
import type { EventStore } from "../../src/events/index.js";

/** Subscribes to `streamId` of `store` from its start; `types` fills with each event's type; `stop` ends it. */
export function collectTypes(store: EventStore, streamId: string): { types: string[]; stop: () => Promise<void> } {
  const types: string[] = [];
  const controller = new AbortController();
  const running = (async () => {
    for await (const e of store.subscribe(streamId, 0, { signal: controller.signal })) types.push(e.type);
  })().catch(() => undefined);
  return {
    types,
    stop: async () => {
      controller.abort();
      await running;
    },
  };
}
