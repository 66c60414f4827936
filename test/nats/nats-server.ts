/**
 * Starts real nats-server processes for the tests: free loopback ports, a
 * temporary store directory, readiness through the monitoring port's
 * `/healthz`, stopped by PID. Used by the global setup (one server) and by
 * the cluster fault test (three servers).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One running nats-server. */
export interface NatsServerProcess {
  /** Client URL, `nats://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  readonly monitorPort: number;
  readonly clusterPort: number | undefined;
  readonly pid: number;
  readonly storeDir: string;
  readonly name: string;
  /** Everything the server printed (for failure messages). */
  output(): string;
  /** Sends a signal to this server's PID and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its store directory unless `keepStore`. */
  stop(options?: { keepStore?: boolean }): Promise<void>;
}

/** Options of {@link startNatsServer}. */
export interface StartNatsServerOptions {
  /** Server name (cluster node name). */
  name?: string;
  /** Client port. @default a free port */
  port?: number;
  /** Monitoring port. @default a free port */
  monitorPort?: number;
  /** Reuse this store directory (a restart). @default a new temp dir */
  storeDir?: string;
  /** Cluster settings: this node's cluster port and the routes to the others. */
  cluster?: { name: string; port: number; routes: readonly number[] };
  /**
   * The server's `max_payload` in bytes (set through a config file: nats-server
   * has no flag for it), or `"server-default"` for nats-server's own 1 MiB.
   * The default carries statelog's default 1 MiB change with its envelope.
   * @default 2 MiB ({@link TEST_MAX_PAYLOAD})
   */
  maxPayload?: number | "server-default";
  /** Readiness time-out in ms. @default 15000 */
  readyTimeoutMs?: number;
  /**
   * When the server counts as started: `"healthz"` waits until `/healthz`
   * answers ok (in a cluster: a meta leader, and every stream and consumer
   * this node holds a replica of is current); `"meta-leader"` only until
   * `/jsz` names the JetStream meta leader (a node restarted after a crash
   * of the whole cluster may take long to bring each replica up to date,
   * which is what a crash test measures itself).
   * @default "healthz"
   */
  ready?: "healthz" | "meta-leader";
  /**
   * JetStream's `sync_interval` (config file `jetstream { sync_interval: … }`):
   * `"always"` (fsync on every write) or a duration such as `"10s"`. Only
   * nats-server 2.10 and later know it ({@link natsServerSyncSettings}).
   * @default unset: the server's own policy
   */
  syncInterval?: string;
}

/** `max_payload` of the test servers: room for a 1 MiB change (statelog's default limit) and its envelope. */
export const TEST_MAX_PAYLOAD = 2 * 1024 * 1024;

/** The `nats-server` binary, or an error message saying how to install it. */
export function findNatsServer(): { bin: string } | { error: string } {
  const r = spawnSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" });
  const bin = r.stdout.trim();
  if (r.status === 0 && bin) return { bin };
  return {
    error:
      "nats-server is not installed: the NATS tests need a real server. " +
      "Install it with `apt-get install -y nats-server` (npm test's pretest does this), or set NATS_URL.",
  };
}

/** What the installed nats-server offers for fsync (see docs/nats.md, "Durability"). */
export interface NatsServerSyncSettings {
  /** `nats-server --version`, e.g. "2.9.10". */
  readonly version: string;
  /** The config file's `jetstream { sync_interval: always }` is accepted (nats-server 2.10 and later). */
  readonly syncInterval: boolean;
  /** The server's answer to a config with `sync_interval` (`nats-server -t`), for messages. */
  readonly output: string;
}

/** Asks the installed nats-server for its version and whether it accepts `sync_interval`. */
export function natsServerSyncSettings(): NatsServerSyncSettings {
  const found = findNatsServer();
  if ("error" in found) throw new Error(found.error);
  const version = spawnSync(found.bin, ["--version"], { encoding: "utf8" });
  const dir = mkdtempSync(join(tmpdir(), "statelog-nats-conf-"));
  try {
    const conf = join(dir, "sync.conf");
    writeFileSync(conf, `jetstream { store_dir: ${JSON.stringify(dir)}, sync_interval: always }\n`);
    const test = spawnSync(found.bin, ["-t", "-c", conf], { encoding: "utf8" });
    return {
      version: (version.stdout + version.stderr).replace(/^.*v(\d+\.\d+\.\d+).*$/s, "$1"),
      syncInterval: test.status === 0,
      output: (test.stdout + test.stderr).trim(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The ports this process picks from: 3,000 of 20000–32000, below the
 * kernel's ephemeral range (ip_local_port_range, 32768–60999 here: a port
 * the kernel handed out for `listen(0)` can be taken by any outgoing
 * connection before nats-server binds it). Each vitest worker
 * (`VITEST_POOL_ID`, 1 to `maxWorkers`) and the main process (global
 * setup) have a range of their own: a node killed and restarted on its
 * ports leaves them free meanwhile, and a server another test file starts
 * in another process must not take them (seen once: "bind: address already
 * in use" on a restart).
 */
const PORT_RANGE = ((): { readonly first: number; readonly count: number } => {
  const slot = Number.parseInt(process.env.VITEST_POOL_ID ?? "0", 10) || 0;
  return { first: 20_000 + (slot % 4) * 3_000, count: 3_000 };
})();

/** A TCP port that was free a moment ago on 127.0.0.1, from this process's {@link PORT_RANGE}. */
export async function freePort(): Promise<number> {
  const { first, count } = PORT_RANGE;
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = first + Math.floor(Math.random() * count);
    if (handedOut.has(port)) continue;
    handedOut.add(port); // before the await: concurrent calls never return the same port
    if (await canListen(port)) return port;
  }
  throw new Error(`no free loopback port between ${first} and ${first + count} after 100 tries`);
}

/** Ports this process handed out: they may be free now and bound by a server later. */
const handedOut = new Set<number>();

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** Starts nats-server with JetStream and waits until `/healthz` answers ok. */
export async function startNatsServer(options: StartNatsServerOptions = {}): Promise<NatsServerProcess> {
  const found = findNatsServer();
  if ("error" in found) throw new Error(found.error);
  const port = options.port ?? (await freePort());
  const monitorPort = options.monitorPort ?? (await freePort());
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), "statelog-nats-"));
  const name = options.name ?? `statelog-test-${port}`;
  const args: string[] = [];
  const maxPayload = options.maxPayload ?? TEST_MAX_PAYLOAD;
  const conf: string[] = [];
  if (maxPayload !== "server-default") conf.push(`max_payload: ${maxPayload}`);
  if (options.syncInterval !== undefined)
    conf.push(`jetstream { sync_interval: ${JSON.stringify(options.syncInterval)} }`);
  if (conf.length > 0) {
    const file = join(storeDir, "nats-server.conf");
    writeFileSync(file, `${conf.join("\n")}\n`);
    args.push("-c", file);
  }
  args.push("-a", "127.0.0.1", "-p", String(port), "-m", String(monitorPort), "-js", "-sd", storeDir, "-n", name);
  if (options.cluster) {
    const { cluster } = options;
    args.push("--cluster_name", cluster.name, "--cluster", `nats://127.0.0.1:${cluster.port}`);
    args.push("--routes", cluster.routes.map((p) => `nats://127.0.0.1:${p}`).join(","));
  }
  const child: ChildProcess = spawn(found.bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const onData = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`nats-server did not start: ${out}`);

  const readyTimeoutMs = options.readyTimeoutMs ?? 15_000;
  const deadline = Date.now() + readyTimeoutMs;
  const ready = options.ready ?? "healthz";
  // In a cluster /healthz waits for the meta leader; a single server is ready at once.
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}:\n${out}`);
    try {
      if (ready === "healthz") {
        const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz`);
        if (res.ok) break;
      } else {
        const res = await fetch(`http://127.0.0.1:${monitorPort}/jsz`);
        const jsz = res.ok ? ((await res.json()) as { meta_cluster?: { leader?: string } }) : undefined;
        if (jsz?.meta_cluster?.leader) break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      throw new Error(`nats-server on port ${port} was not ready (${ready}) within ${readyTimeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  const kill = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    process.kill(pid, signal);
    await exited;
  };
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorPort,
    clusterPort: options.cluster?.port,
    pid,
    storeDir,
    name,
    output: () => out,
    kill,
    async stop(stopOptions) {
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) process.kill(pid, "SIGKILL");
      }, 5_000);
      await kill("SIGTERM");
      clearTimeout(timer);
      if (!stopOptions?.keepStore && options.storeDir === undefined) {
        rmSync(storeDir, { recursive: true, force: true });
      }
    },
  };
}
