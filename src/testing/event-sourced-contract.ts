/**
 * The event-sourced repository conformance suite (docs/aggregates.md): the
 * same tests of `EventSourcedRepository` on every event store and snapshot
 * store — memory, file, NATS, and yours. One function per area.
 */
import { describeAggregateCommands, describeAggregateLoadAndSave } from "./aggregate-areas.js";
import { type AggregateBackend, AggregateContext } from "./aggregate-fixtures.js";
import { describeAggregateProperty } from "./aggregate-property.js";
import { describeAggregateEdgeCases, describeAggregateSnapshots } from "./aggregate-snapshot-areas.js";
import { afterEach, describe } from "./vitest.js";

export type { AggregateBackend } from "./aggregate-fixtures.js";

/** Options of {@link describeEventSourcedRepositoryContract}. */
export interface EventSourcedRepositoryContractOptions {
  /** Random schedules of the property test. @default 50 */
  propertyRuns?: number;
  /** Per-test timeout in ms. @default 30000 */
  timeoutMs?: number;
  /** Timeout of the property test in ms. @default 300000 */
  propertyTimeout?: number;
}

/**
 * Registers the event-sourced repository tests for one backend.
 * @param name shown in the test names
 * @param backend opens a fresh event store (with the options a test needs) and a fresh snapshot store
 */
export function describeEventSourcedRepositoryContract(
  name: string,
  backend: AggregateBackend,
  options: EventSourcedRepositoryContractOptions = {},
): void {
  const contexts: AggregateContext[] = [];
  const fresh = () => {
    const context = new AggregateContext(backend);
    contexts.push(context);
    return context;
  };
  describe(`EventSourcedRepository contract: ${name}`, { timeout: options.timeoutMs ?? 30_000 }, () => {
    afterEach(async () => {
      await Promise.all(contexts.splice(0).map((c) => c.close()));
    });
    describeAggregateLoadAndSave(fresh);
    describeAggregateCommands(fresh);
    describeAggregateSnapshots(fresh);
    describeAggregateEdgeCases(fresh);
    describeAggregateProperty(fresh, options.propertyRuns ?? 50, options.propertyTimeout ?? 300_000);
  });
}
