/**
 * Loads `@confluentinc/kafka-javascript` (an optional peer dependency) on
 * first use, so that importing `statelog/kafka` never fails: only a call
 * that needs Kafka does, with a `PeerMissingError` that says how to install
 * (or build) it.
 */
import type * as RdKafka from "@confluentinc/kafka-javascript";
import { messageOf, PeerMissingError } from "../index.js";

/** The client package, an optional peer dependency of statelog. */
const KAFKA_CLIENT_PACKAGE = "@confluentinc/kafka-javascript";

/** The error for a client that cannot be loaded: what to install, and how to build the binding offline. */
function clientMissing(cause: unknown): PeerMissingError {
  return new PeerMissingError("statelog/kafka", [KAFKA_CLIENT_PACKAGE], {
    purpose: "with its native binding",
    hint:
      "offline or without a prebuilt binary: " +
      `\`CKJS_LINKING=dynamic npm rebuild ${KAFKA_CLIENT_PACKAGE} --foreground-scripts\`, ` +
      "which builds librdkafka from source and needs gcc, g++, make",
    cause,
  });
}

/** The parts of the client module statelog uses. */
export interface KafkaClientModule {
  Producer: typeof RdKafka.Producer;
  KafkaConsumer: typeof RdKafka.KafkaConsumer;
  AdminClient: typeof RdKafka.AdminClient;
  librdkafkaVersion: string;
}

let loading: Promise<KafkaClientModule> | undefined;

/**
 * The client module, loaded once.
 * @throws PeerMissingError when it is not installed or its native binding is not built
 */
export function loadKafkaClient(): Promise<KafkaClientModule> {
  loading ??= import("@confluentinc/kafka-javascript").then(
    (mod) => {
      const m = ((mod as { default?: unknown }).default ?? mod) as KafkaClientModule;
      if (typeof m.Producer !== "function" || typeof m.KafkaConsumer !== "function") {
        throw clientMissing(new Error("the module has no Producer/KafkaConsumer"));
      }
      return m;
    },
    (error: unknown) => {
      loading = undefined;
      throw clientMissing(error);
    },
  );
  return loading;
}

export type { RdKafka };

/** Disconnects a client if it is connected; errors are ignored (it is being given up). */
export function disconnectQuietly(client: { isConnected(): boolean; disconnect(cb: () => void): unknown }): void {
  try {
    // A client whose connect failed is disconnected already: disconnect would throw "not connected".
    if (client.isConnected()) client.disconnect(() => undefined);
  } catch {
    // not connected after all
  }
}

/**
 * Refuses settings librdkafka does not accept (an unknown name, a value
 * out of range or of the wrong kind): it parses them when a client object
 * is made (`make`), which connects nothing. Else the first call would fail
 * with librdkafka's bare error.
 * @throws ConfigurationError naming the option and librdkafka's reason
 */
export function checkAccepted(
  check: { error(name: string, accepted: string, value?: unknown): Error },
  name: string,
  given: unknown,
  make: () => unknown,
): void {
  try {
    make();
  } catch (error) {
    throw check.error(name, `settings librdkafka accepts (${messageOf(error)})`, given);
  }
}
