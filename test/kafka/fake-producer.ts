/**
 * A stand-in for the Kafka client's Producer, for tests that pick the
 * order and outcome of delivery reports (mock the client module with
 * {@link fakeKafkaClient}). The client's other classes are empty.
 */
import { EventEmitter } from "node:events";

/** The stand-in Producer: records what it was given, emits the reports the test asks for. */
export class FakeProducer extends EventEmitter {
  static current: FakeProducer | undefined;
  readonly produced: { partition: number; key: string }[] = [];

  constructor(readonly conf: Record<string, unknown>) {
    super();
    FakeProducer.current = this;
  }

  connect(options: { topic: string }, cb: (err: unknown, data: unknown) => void): void {
    cb(null, { topics: [{ name: options.topic, partitions: [{ id: 0 }, { id: 1 }] }] });
  }

  isConnected(): boolean {
    return true;
  }

  setPollInBackground(): void {}

  produce(_topic: string, partition: number, _value: Buffer | null, key: string): void {
    this.produced.push({ partition, key });
  }

  /** As librdkafka's: `disconnect(cb)` or `disconnect(flushTimeoutMs, cb)`. */
  disconnect(timeoutOrCb?: number | (() => void), cb?: () => void): void {
    (typeof timeoutOrCb === "function" ? timeoutOrCb : cb)?.();
  }

  /**
   * A delivery report of the record of `key` in `partition`: stored at
   * `offset`, or failed with `code`; with the record's timestamp and value
   * size (those the tests write with: 1 and "v").
   */
  report(
    partition: number,
    key: string | null,
    outcome: { offset: number } | { code: number },
    record: { timestamp: number | undefined; size: number } = { timestamp: 1, size: 1 },
  ): void {
    const err = "code" in outcome ? Object.assign(new Error(`failed ${key}`), { code: outcome.code }) : null;
    this.emit("delivery-report", err, {
      topic: "t",
      partition,
      offset: "offset" in outcome ? outcome.offset : -1,
      key: key === null ? null : Buffer.from(key, "utf8"),
      ...record,
    });
  }
}

/** The client module with {@link FakeProducer}: `vi.mock("@confluentinc/kafka-javascript", fakeKafkaClient)`. */
export function fakeKafkaClient() {
  const client = { Producer: FakeProducer, KafkaConsumer: class {}, AdminClient: class {}, librdkafkaVersion: "fake" };
  return { ...client, default: client };
}
