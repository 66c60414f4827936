/**
 * vitest global setup: starts one nats-server (JetStream, temp store dir,
 * free loopback port) for the NATS tests and stops it by PID afterwards.
 * With `NATS_URL` set, the tests use that server instead and nothing is
 * started. Tests read the URL with `inject("natsUrl")` (see `./env.ts`).
 */
import type { TestProject } from "vitest/node";
import { findNatsServer, type NatsServerProcess, startNatsServer } from "./nats-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** The NATS server the tests use, or "" when none could be started. */
    natsUrl: string;
    /** Why no server is available (the NATS tests fail with this message). */
    natsError: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.NATS_URL;
  if (external) {
    project.provide("natsUrl", external);
    project.provide("natsError", "");
    return async () => {};
  }
  const found = findNatsServer();
  if ("error" in found) {
    // Other backends' tests still run; every NATS test fails with this message.
    project.provide("natsUrl", "");
    project.provide("natsError", found.error);
    return async () => {};
  }
  let server: NatsServerProcess | undefined;
  try {
    server = await startNatsServer({ name: "statelog-test" });
    project.provide("natsUrl", server.url);
    project.provide("natsError", "");
  } catch (error) {
    project.provide("natsUrl", "");
    project.provide("natsError", `could not start nats-server: ${String(error)}`);
  }
  return async () => {
    await server?.stop();
  };
}
