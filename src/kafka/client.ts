/**
 * Loads `@confluentinc/kafka-javascript` (an optional peer dependency) on
 * first use, so that importing `statelog/kafka` never fails: only a call
 * that needs Kafka does, with a {@link KafkaClientMissingError}.
 */
import type * as RdKafka from "@confluentinc/kafka-javascript";
import { KafkaClientMissingError } from "./errors.js";

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
 * @throws KafkaClientMissingError when it is not installed or its native binding is not built
 */
export function loadKafkaClient(): Promise<KafkaClientModule> {
  loading ??= import("@confluentinc/kafka-javascript").then(
    (mod) => {
      const m = ((mod as { default?: unknown }).default ?? mod) as KafkaClientModule;
      if (typeof m.Producer !== "function" || typeof m.KafkaConsumer !== "function") {
        throw new KafkaClientMissingError({ cause: new Error("the module has no Producer/KafkaConsumer") });
      }
      return m;
    },
    (error: unknown) => {
      loading = undefined;
      throw new KafkaClientMissingError({ cause: error });
    },
  );
  return loading;
}

export type { RdKafka };
