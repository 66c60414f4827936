/**
 * A 3-node NATS cluster on loopback ports for the fault tests: each node
 * keeps its store directory across restarts (`start(i)` again), and
 * {@link startCluster} returns once the cluster places a 3-replica stream.
 */
import { rmSync } from "node:fs";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { withNatsInternals } from "../../src/nats/internal.js";
import { freePort, type NatsServerProcess, type StartNatsServerOptions, startNatsServer } from "./nats-server.js";

/** A running cluster: its nodes, client URLs, and how to (re)start node `i` on its own store. */
export interface TestNatsCluster {
  readonly urls: string[];
  readonly nodes: NatsServerProcess[];
  /**
   * Starts node `i` (again) on its store directory; replaces `nodes[i]`.
   * `ready` as in {@link StartNatsServerOptions} (default `"healthz"`).
   */
  start(i: number, ready?: StartNatsServerOptions["ready"]): Promise<NatsServerProcess>;
  /** Stops every node and removes the store directories. */
  stop(): Promise<void>;
}

/** Options of {@link startCluster}. */
export interface TestNatsClusterOptions {
  /** Cluster name. */
  name: string;
  /** JetStream `sync_interval` of every node (see `StartNatsServerOptions.syncInterval`). @default unset */
  syncInterval?: string;
}

export async function startCluster(options: TestNatsClusterOptions): Promise<TestNatsCluster> {
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const monitors = await Promise.all([0, 1, 2].map(() => freePort()));
  const routes = await Promise.all([0, 1, 2].map(() => freePort()));
  const dirs: (string | undefined)[] = [undefined, undefined, undefined];
  const all: NatsServerProcess[] = [];
  const nodes: NatsServerProcess[] = [];
  const start = async (i: number, ready?: StartNatsServerOptions["ready"]) => {
    const node = await startNatsServer({
      name: `${options.name}-n${i}`,
      port: ports[i] as number,
      monitorPort: monitors[i] as number,
      storeDir: dirs[i],
      cluster: { name: options.name, port: routes[i] as number, routes: routes.filter((_, j) => j !== i) },
      readyTimeoutMs: 30_000,
      ...(ready === undefined ? {} : { ready }),
      ...(options.syncInterval === undefined ? {} : { syncInterval: options.syncInterval }),
    });
    dirs[i] ??= node.storeDir;
    all.push(node);
    nodes[i] = node;
    return node;
  };
  const urls = ports.map((p) => `nats://127.0.0.1:${p}`);
  await Promise.all([0, 1, 2].map((i) => start(i)));
  await waitForPlacement(urls);
  return {
    urls,
    nodes,
    start,
    async stop() {
      await Promise.all(all.map((n) => n.stop().catch(() => undefined)));
      for (const d of dirs) if (d) rmSync(d, { recursive: true, force: true });
    },
  };
}

/**
 * Waits until the cluster places a 3-replica stream: right after start, the
 * JetStream meta group may still see a peer offline ("no suitable peers for
 * placement"), more so on a loaded machine.
 */
export async function waitForPlacement(servers: string[], timeoutMs = 30_000): Promise<void> {
  const nc = await connect({ servers, timeout: 5_000 });
  try {
    const jsm = await jetstreamManager(nc);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await jsm.streams.add({ name: "PLACEMENT_PROBE", subjects: ["placement.probe"], num_replicas: 3 });
        await jsm.streams.delete("PLACEMENT_PROBE");
        return;
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error(`the cluster did not place a 3-replica stream within ${timeoutMs} ms`, { cause: error });
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await nc.close();
  }
}

/**
 * `options` of a repository, event store, read-model store or snapshot store
 * that opens on a replicated bucket or stream whatever the server's version.
 * Without it, `open` refuses one on a server older than compare-and-set on
 * replicated streams needs (`NatsFeature.ReplicatedCompareAndSet`), as the
 * nats-server these tests may run on (Debian's 2.9.10) is: the tests that use
 * it test what does not rest on two writers' compare-and-sets to one key.
 */
export function replicatedOnAnyServer<T extends object>(options: T): T {
  return withNatsInternals(options, { replicatedCasOnAnyServer: true });
}
