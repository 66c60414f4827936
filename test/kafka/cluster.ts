/**
 * A Kafka cluster for one test file: librdkafka's mock cluster
 * (.test-tools/kafka-mock-<hash of kafka-mock.c>, built by
 * scripts/setup-kafka.mjs, rebuilt when the source changes) on free
 * loopback ports, stopped by PID — or the real broker in `$KAFKA_BROKERS`.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { ensureChangelogTopic } from "../../src/kafka/index.js";

const root = resolve(import.meta.dirname, "../..");
const MOCK_SOURCE_HASH = createHash("sha256")
  .update(readFileSync(join(root, "test", "kafka", "kafka-mock.c")))
  .digest("hex")
  .slice(0, 12);
/** The mock built from the current kafka-mock.c (scripts/setup-kafka.mjs uses the same name). */
export const MOCK_BINARY = join(root, ".test-tools", `kafka-mock-${MOCK_SOURCE_HASH}`);

/** Kafka protocol request types ("API keys") the tests inject errors into. */
export const ApiKey = { Produce: 0, InitProducerId: 22 } as const;

/** Kafka protocol error codes the tests inject (librdkafka's `rd_kafka_resp_err_t`). */
export const KafkaProtocolError = {
  /** Retriable: the client refreshes metadata and retries. */
  NotLeaderForPartition: 6,
  /** Retriable: the request timed out on the broker; the record may be written. */
  RequestTimedOut: 7,
  /** Retriable: fewer in-sync replicas than `min.insync.replicas`. */
  NotEnoughReplicas: 19,
  /**
   * Idempotent producer: for the oldest request in flight a sequence desynchronization, which
   * librdkafka raises as a fatal error (for a later request it bumps the producer epoch instead).
   */
  OutOfOrderSequenceNumber: 45,
  /** Not retriable for InitProducerId: librdkafka raises a fatal error on the idempotent producer. */
  ClusterAuthorizationFailed: 31,
} as const;

export interface TestCluster {
  readonly brokers: string;
  /** The librdkafka mock (fault injection available), not a real broker. */
  readonly isMock: boolean;
  createTopic(name: string, partitions: number): Promise<void>;
  /** Deletes a topic (its records and offsets): mock only. */
  deleteTopic(name: string): Promise<void>;
  /** Takes broker `id` (-1 = all) down / up: mock only. */
  down(id?: number): Promise<void>;
  /** Makes broker `brokerId` the leader of `partition` of `topic` (the mock picks leaders at random): mock only. */
  setLeader(topic: string, partition: number, brokerId: number): Promise<void>;
  up(id?: number): Promise<void>;
  /**
   * The next requests of type `apiKey` ({@link ApiKey}) fail with `errors`
   * ({@link KafkaProtocolError}), one per request in order:
   * `rd_kafka_mock_push_request_errors`. Mock only.
   */
  pushRequestErrors(apiKey: number, errors: readonly number[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startCluster(brokerCount = 1): Promise<TestCluster> {
  const external = process.env.KAFKA_BROKERS?.trim();
  if (external) return externalCluster(external);
  if (!existsSync(MOCK_BINARY)) {
    spawnSync(process.execPath, [join(root, "scripts", "setup-kafka.mjs")], { stdio: "inherit" });
    // Two test files may build it at once: one of them loses the final rename, and the binary is there all the same.
    if (!existsSync(MOCK_BINARY)) {
      throw new Error(`${MOCK_BINARY} is missing and scripts/setup-kafka.mjs could not build it (see its output)`);
    }
  }
  const child = spawn(MOCK_BINARY, [String(brokerCount)], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const lines = createInterface({ input: child.stdout! });
  const replies: ((line: string) => void)[] = [];
  const first = new Promise<string>((resolveFirst, reject) => {
    replies.push(resolveFirst);
    child.once("exit", (code) => reject(new Error(`kafka-mock exited (${code}) before starting: ${stderr}`)));
    child.once("error", reject);
  });
  lines.on("line", (line) => replies.shift()?.(line));
  const brokers = await first;
  return new MockCluster(child, lines, replies, brokers.trim());
}

class MockCluster implements TestCluster {
  readonly isMock = true;
  #chain: Promise<unknown> = Promise.resolve();
  constructor(
    readonly child: ChildProcess,
    readonly lines: Interface,
    readonly replies: ((line: string) => void)[],
    readonly brokers: string,
  ) {}

  /** Sends one stdin command and waits for its "ok" / "error …" line. */
  command(cmd: string): Promise<void> {
    const run = this.#chain.then(
      () =>
        new Promise<void>((ok, fail) => {
          this.replies.push((line) => (line === "ok" ? ok() : fail(new Error(`kafka-mock: ${cmd}: ${line}`))));
          this.child.stdin!.write(`${cmd}\n`);
        }),
    );
    this.#chain = run.catch(() => undefined);
    return run;
  }

  createTopic(name: string, partitions: number): Promise<void> {
    return this.command(`topic ${name} ${partitions}`);
  }
  deleteTopic(name: string): Promise<void> {
    return this.command(`delete ${name}`);
  }
  down(id = -1): Promise<void> {
    return this.command(`down ${id}`);
  }
  setLeader(topic: string, partition: number, brokerId: number): Promise<void> {
    return this.command(`leader ${topic} ${partition} ${brokerId}`);
  }
  up(id = -1): Promise<void> {
    return this.command(`up ${id}`);
  }
  pushRequestErrors(apiKey: number, errors: readonly number[]): Promise<void> {
    return this.command(`errors ${apiKey} ${errors.join(" ")}`);
  }
  async stop(): Promise<void> {
    const { child } = this;
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise((r) => child.once("exit", r));
    process.kill(child.pid, "SIGTERM");
    // The mock exits at once on SIGTERM; if it hangs, do not hang the test run with it.
    const timer = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        process.kill(child.pid, "SIGKILL");
      }
    }, 5_000);
    await exited;
    clearTimeout(timer);
    this.lines.close();
  }
}

function externalCluster(brokers: string): TestCluster {
  const unsupported = () =>
    Promise.reject(
      new Error("broker down/up, partition leaders and topic deletion need the mock cluster (unset KAFKA_BROKERS)"),
    );
  return {
    brokers,
    isMock: false,
    async createTopic(name, partitions) {
      await ensureChangelogTopic({
        brokers,
        topic: name,
        partitions,
        replicationFactor: Number(process.env.KAFKA_TEST_REPLICATION_FACTOR ?? 1),
      });
    },
    deleteTopic: unsupported,
    down: unsupported,
    up: unsupported,
    setLeader: unsupported,
    pushRequestErrors: () =>
      Promise.reject(new Error("request error injection needs the mock cluster (unset KAFKA_BROKERS)")),
    async stop() {},
  };
}

let counter = 0;
/** A topic name no other test run uses (for shared real brokers). */
export function uniqueTopic(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${++counter}`;
}
