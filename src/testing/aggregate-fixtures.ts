/**
 * The test aggregate of the event-sourced repository suite, and the
 * per-test context its areas share: a "tally" whose state lists the
 * numbers of its events in order (so a fold that lost, repeated or
 * reordered an event shows), the metadata of its last event, and a fresh
 * event store and snapshot store per test.
 */
import type { EventMetadata, EventStore, EventStoreOptions, RecordedEvent } from "../events/index.js";
import {
  type AggregateEvent,
  EventSourcedRepository,
  type EventSourcedRepositoryOptions,
  type SnapshotStore,
} from "../repository/index.js";

/** An event of the tally: `added` carries a number; `poison` makes `evolve` throw. */
export type TallyEvent = AggregateEvent<"added", { n: number }> | AggregateEvent<"poison", Record<string, never>>;

/** The tally's state: the numbers of its events, in order, and the metadata of the last one. */
export interface TallyState {
  readonly items: readonly number[];
  readonly lastMetadata: EventMetadata | undefined;
}

/** The tally's initial state. */
export const initialTally = (): TallyState => ({ items: [], lastMetadata: undefined });

/** The tally's evolve: appends the number (immutably); throws for a `poison` event. */
export function evolveTally(state: TallyState, event: TallyEvent): TallyState {
  if (event.type === "poison") throw new Error("evolve refused a poison event");
  return { items: [...state.items, event.data.n], lastMetadata: event.metadata };
}

/** `added` events with numbers `from`, `from + 1`, …. */
export function added(from: number, count = 1, metadata?: EventMetadata): TallyEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    type: "added" as const,
    data: { n: from + i },
    ...(metadata === undefined ? {} : { metadata }),
  }));
}

/** The numbers 1..n. */
export const range = (n: number, from = 1): number[] => Array.from({ length: n }, (_, i) => from + i);

/** What the areas of the suite get from the backend. */
export interface AggregateBackend {
  /** A fresh event store with these options. */
  eventStore: (options: EventStoreOptions) => Promise<EventStore>;
  /** A fresh snapshot store. */
  snapshots: () => Promise<SnapshotStore>;
}

type Overrides = Partial<EventSourcedRepositoryOptions<TallyState, TallyEvent>>;

/** One test's stores and repositories, all closed after the test. */
export class AggregateContext {
  #eventStore: Promise<EventStore> | undefined;
  #snapshots: Promise<SnapshotStore> | undefined;
  readonly #repos: EventSourcedRepository<TallyState, TallyEvent>[] = [];
  readonly #closeables: { close(): Promise<void> }[] = [];

  constructor(private readonly backend: AggregateBackend) {}

  /** This test's event store (opened on first use, with `options` then). */
  async eventStore(options: EventStoreOptions = {}): Promise<EventStore> {
    this.#eventStore ??= this.backend.eventStore(options).then((store) => {
      this.#closeables.push(store);
      return store;
    });
    return this.#eventStore;
  }

  /** This test's snapshot store (opened on first use). */
  async snapshots(): Promise<SnapshotStore> {
    this.#snapshots ??= this.backend.snapshots().then((store) => {
      this.#closeables.push(store);
      return store;
    });
    return this.#snapshots;
  }

  /** A tally repository over this test's event store (and snapshot store unless `snapshots: undefined` is given). */
  async repo(overrides: Overrides = {}): Promise<EventSourcedRepository<TallyState, TallyEvent>> {
    const withSnapshots = !("snapshots" in overrides);
    const repo = await EventSourcedRepository.open<TallyState, TallyEvent>({
      eventStore: await this.eventStore(),
      aggregateType: "tally",
      initialState: initialTally,
      evolve: evolveTally,
      ...(withSnapshots ? { snapshots: await this.snapshots() } : {}),
      onSnapshotError: () => {},
      ...overrides,
    });
    this.#repos.push(repo);
    return repo;
  }

  /** The numbers of the events stored for `id`, in order. */
  async storedNumbers(repo: EventSourcedRepository<TallyState, TallyEvent>, id: string): Promise<number[]> {
    return (await repo.readEvents(id)).map((e: RecordedEvent) => (e.data as { n: number }).n);
  }

  /** Closes the repositories, then the stores. */
  async close(): Promise<void> {
    await Promise.all(this.#repos.splice(0).map((r) => r.close().catch(() => undefined)));
    await Promise.all(this.#closeables.splice(0).map((c) => c.close().catch(() => undefined)));
    this.#eventStore = undefined;
    this.#snapshots = undefined;
  }
}
