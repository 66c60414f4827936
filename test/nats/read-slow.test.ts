/**
 * NATS reads whose consumer delivers late or not at all. A consumer is
 * given up for lag only on a replicated stream and only once it is behind
 * (it reported nothing pending, or delivered nothing for a second, then
 * the lag grace); the error then says what happened. A proxy holds the
 * server's deliveries back.
 */
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, beforeEach, expect, it, vi } from "vitest";
import { isUnavailableError } from "../../src/index.js";
import { readFiltered } from "../../src/nats/reader.js";
import { type ProxiedTest, proxiedTest, uniqueBucket } from "./env.js";
import type { HoldProxy } from "./proxy.js";

let setup: ProxiedTest;
let nc: NatsConnection;
let proxy: HoldProxy;
let js: JetStreamClient;
let jsm: JetStreamManager;
beforeAll(async () => {
  setup = await proxiedTest("read-slow");
  ({ nc, proxy, js, jsm } = setup);
});
beforeEach(() => proxy.reset());
afterAll(async () => {
  await setup?.close();
});

/** A stream of 5 subjects `<name>.k0`…, one message each (sequences 1…5). */
async function streamOf5(): Promise<string> {
  const name = uniqueBucket("slow");
  await (await jetstreamManager(nc)).streams.add({ name, subjects: [`${name}.>`] });
  for (let i = 0; i < 5; i++) await jetstream(nc).publish(`${name}.k${i}`, String(i));
  return name;
}

const gets = () => proxy.passed.filter((f) => f.kind === "get").length;

it("a one-replica read keeps its consumer while its deliveries are late, however long", async () => {
  const stream = await streamOf5();
  proxy.hold = (f) => f.kind === "delivery";
  const before = gets();
  const subjects: string[] = [];
  const read = readFiltered(js, jsm, stream, `${stream}.>`, (m) => subjects.push(m.subject), {
    untilLast: true,
    replicated: false,
  });
  // The read's own question, then the stall check's (a second each with nothing delivered): well past the grace.
  await vi.waitFor(() => expect(gets() - before).toBeGreaterThanOrEqual(3), { timeout: 10_000 });
  proxy.hold = () => false;
  proxy.flush();
  expect(await read).toEqual({ lastSequence: 5, lagged: false, restarts: 0, limited: false, target: 5 });
  expect(subjects).toEqual([0, 1, 2, 3, 4].map((i) => `${stream}.k${i}`));
});

it("a replicated read whose consumers deliver nothing fails with an error saying so", async () => {
  const stream = await streamOf5();
  proxy.hold = (f) => f.kind === "delivery";
  const outcome = await readFiltered(js, jsm, stream, `${stream}.>`, () => undefined, {
    untilLast: true,
    replicated: true,
    catchUpTimeoutMs: 1_000,
  }).catch((error: unknown) => error);
  expect(isUnavailableError(outcome), String(outcome)).toBe(true);
  expect(String(outcome)).toMatch(
    /its consumers delivered nothing short of the stream leader's last message for 1000 ms/,
  );
  expect(String(outcome)).toMatch(/reached sequence 0, the leader has 5/);
  proxy.hold = () => false;
  proxy.flush();
});
