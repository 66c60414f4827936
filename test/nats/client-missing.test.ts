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
  it("imports, and open throws PeerMissingError naming the packages to install", async () => {
    const nats = await import("../../src/nats/index.js");
    const { ErrorCode, isPeerMissingError } = await import("../../src/index.js");
    // A connection-shaped object: the options are checked first, then the client packages are loaded.
    const client = { publish: () => undefined, request: async () => undefined, info: { max_payload: 2 ** 21 } };
    const error = await nats.NatsKvStore.open({ client } as never).catch((e: unknown) => e);
    expect(isPeerMissingError(error), String(error)).toBe(true);
    expect((error as { code?: string }).code).toBe(ErrorCode.PeerMissing);
    expect((error as { module?: string }).module).toBe("statelog/nats");
    expect((error as Error).message).toContain("npm install @nats-io/transport-node @nats-io/jetstream @nats-io/kv");
    expect((error as { packages?: string[] }).packages).toEqual([
      "@nats-io/transport-node",
      "@nats-io/jetstream",
      "@nats-io/kv",
    ]);
    expect((error as Error).message).toContain("could not be loaded"); // and why (the loader's own error)
    expect((error as Error).cause).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(((error as Error).cause as Error).message);
    // Every object opens through the same loader.
    const repo = await nats.NatsKvRepository.open({ client, bucket: "b", aggregateType: "T" } as never).catch(
      (e: unknown) => e,
    );
    expect(isPeerMissingError(repo), String(repo)).toBe(true);
    const events = await nats.NatsEventStore.open({ client } as never).catch((e: unknown) => e);
    expect(isPeerMissingError(events), String(events)).toBe(true);
    const models = await nats.NatsReadModelStore.open({ client } as never).catch((e: unknown) => e);
    expect(isPeerMissingError(models), String(models)).toBe(true);
  });
});
