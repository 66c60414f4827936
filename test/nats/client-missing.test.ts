/**
 * Without the optional NATS client packages, importing statelog/nats still
 * works, and opening anything says which packages to install, instead of
 * failing with a bare module-not-found error.
 */
import { describe, expect, it, vi } from "vitest";

// None of the three client packages can be loaded: importing statelog/nats must not need any of them.
vi.mock("@nats-io/transport-node", () => {
  throw new Error("Cannot find package '@nats-io/transport-node'");
});
vi.mock("@nats-io/jetstream", () => {
  throw new Error("Cannot find package '@nats-io/jetstream'");
});
vi.mock("@nats-io/kv", () => {
  throw new Error("Cannot find package '@nats-io/kv'");
});

describe("statelog/nats without the NATS client packages", () => {
  it("imports, and open throws NatsClientMissingError naming the packages to install", async () => {
    const nats = await import("../../src/nats/index.js");
    // A connection-shaped object: the options are checked first, then the client packages are loaded.
    const client = { publish: () => undefined, request: async () => undefined, info: { max_payload: 2 ** 21 } };
    const error = await nats.NatsKvStore.open({ client } as never).catch((e: unknown) => e);
    expect(nats.isNatsClientMissingError(error), String(error)).toBe(true);
    expect((error as { code?: string }).code).toBe(nats.NatsErrorCode.ClientMissing);
    expect((error as Error).message).toContain("npm install @nats-io/transport-node @nats-io/jetstream @nats-io/kv");
    expect((error as { missing?: string[] }).missing).toEqual([
      "@nats-io/transport-node",
      "@nats-io/jetstream",
      "@nats-io/kv",
    ]);
    expect((error as Error).message).toContain("could not be loaded"); // and why (the loader's own error)
    // Every object opens through the same loader.
    const repo = await nats.NatsKvRepository.open({ client, bucket: "b", aggregateType: "T" } as never).catch(
      (e: unknown) => e,
    );
    expect(nats.isNatsClientMissingError(repo), String(repo)).toBe(true);
    const events = await nats.NatsEventStore.open({ client } as never).catch((e: unknown) => e);
    expect(nats.isNatsClientMissingError(events), String(events)).toBe(true);
    const models = await nats.NatsReadModelStore.open({ client } as never).catch((e: unknown) => e);
    expect(nats.isNatsClientMissingError(models), String(models)).toBe(true);
  });
});
