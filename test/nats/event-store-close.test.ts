/**
 * `NatsEventStore.close()` while appends are under way: an append the
 * server acknowledged is not rejected (its caller would append it again:
 * twice stored); one that close() rejected was not stored.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isClosedError } from "../../src/core/errors.js";
import { createEvent } from "../../src/events/index.js";
import { NatsEventStore } from "../../src/nats/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("event-store-close-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

describe("NatsEventStore.close() with appends under way", () => {
  it("every append is resolved and stored, or rejected and not stored", async () => {
    const stream = uniqueBucket("EVC");
    const wrong: string[] = [];
    /** Appends still pending when close() was called, and how they ended. */
    let pendingAtClose = 0;
    let storedAfterClose = 0;
    const runs = 24;
    for (let i = 0; i < runs; i++) {
      const store = await NatsEventStore.open({ client: nc, stream });
      let settled = false;
      const outcome = store.append(`s${i}`, [createEvent("t", { i }), createEvent("t", { i, n: 2 })]).then(
        (r) => {
          settled = true;
          return r.lastPosition === 2 ? "resolved" : `resolved at ${r.lastPosition}`;
        },
        (error: unknown) => {
          settled = true;
          if (!isClosedError(error)) wrong.push(`append ${i}: rejected with ${String(error)}`);
          return "rejected";
        },
      );
      // The publish is under way (sent, or acknowledged and waiting for the index) when close() starts.
      await new Promise((resolve) => setTimeout(resolve, i % 4));
      if (!settled) pendingAtClose++;
      const pending = !settled;
      await store.close();
      const result = await outcome;
      const check = await NatsEventStore.open({ client: nc, stream });
      const stored = (await check.getStreams()).find((s) => s.streamId === `s${i}`)?.eventCount ?? 0;
      await check.close();
      if (result === "resolved" && stored !== 2) wrong.push(`append ${i}: resolved, yet ${stored} event(s) stored`);
      if (result === "rejected" && stored !== 0) wrong.push(`append ${i}: rejected, yet ${stored} event(s) stored`);
      if (result !== "resolved" && result !== "rejected") wrong.push(`append ${i}: ${result}`);
      if (pending && result === "resolved") storedAfterClose++;
    }
    expect(wrong).toEqual([]);
    // The race was run: close() began while appends were under way, and they completed.
    expect(pendingAtClose).toBeGreaterThan(0);
    expect(storedAfterClose).toBeGreaterThan(0);
  }, 60_000);

  it("appends queued behind one under way fail with ClosedError and store nothing", async () => {
    const stream = uniqueBucket("EVC");
    const store = await NatsEventStore.open({ client: nc, stream });
    // One stream id: the appends run one at a time (a chain); close() starts while the first is under way.
    const results = [0, 1, 2, 3].map((n) =>
      store.append("one", [createEvent("t", { n })]).then(
        () => "resolved",
        (error: unknown) => (isClosedError(error) ? "closed" : String(error)),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 1)); // the first one is published
    await store.close();
    const outcomes = await Promise.all(results);
    const check = await NatsEventStore.open({ client: nc, stream });
    const stored = (await check.getStreams()).find((s) => s.streamId === "one")?.eventCount ?? 0;
    await check.close();
    expect(outcomes.filter((o) => o !== "resolved" && o !== "closed")).toEqual([]);
    expect(stored).toBe(outcomes.filter((o) => o === "resolved").length);
    expect(outcomes).toContain("closed");
  });
});
