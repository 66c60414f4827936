/**
 * Given/when/then specifications of deciders, for users' tests of their
 * aggregates (docs/aggregates.md): given past events, when a command, then
 * these new events, or this error, or nothing. Runs under any test runner:
 * a failed expectation throws an `AssertionError` (node:assert).
 *
 * @example
 * const spec = deciderSpec({ initialState, evolve, decide });
 * spec.given([placed]).when({ type: "ship" }).thenEvents([shipped]);
 * spec.given([]).when({ type: "ship" }).thenThrows(/not placed/);
 */
import assert from "node:assert/strict";

/** A decider: the state before any event, how an event changes it, and what a command decides. */
export interface Decider<S, E, C> {
  initialState: () => S;
  evolve: (state: S, event: E) => S;
  /** The events a command decides on a state (zero, one or several); throws to refuse it. */
  decide: (command: C, state: S) => E | readonly E[] | undefined | null;
}

/** What a `when` produced, to check with `thenEvents`, `thenNothing` or `thenThrows`. */
export interface DeciderOutcome<S, E> {
  /** The new events equal `expected` (deeply; a single event is a list of one). Returns the state after them. */
  thenEvents(expected: E | readonly E[]): S;
  /** The command decided no event. */
  thenNothing(): void;
  /** The command was refused: `decide` threw an error matching `expected` (a class, a message pattern, or a predicate). */
  thenThrows(expected?: RegExp | (new (...args: never[]) => Error) | ((error: unknown) => boolean)): void;
}

/** A specification of `decider`: `given(events).when(command).thenEvents(…)`. */
export function deciderSpec<S, E, C>(decider: Decider<S, E, C>) {
  return {
    given(events: readonly E[]) {
      return {
        when(command: C): DeciderOutcome<S, E> {
          const before = events.reduce(decider.evolve, decider.initialState());
          let outcome: { events: E[] } | { error: unknown };
          try {
            const decided = decider.decide(command, before);
            const list =
              decided === undefined || decided === null ? [] : Array.isArray(decided) ? [...decided] : [decided as E];
            outcome = { events: list };
          } catch (error) {
            outcome = { error };
          }
          const decidedEvents = (): E[] => {
            if ("error" in outcome) {
              throw new assert.AssertionError({
                message: `expected events, but decide threw: ${String(outcome.error)}`,
                actual: outcome.error,
              });
            }
            return outcome.events;
          };
          return {
            thenEvents(expected) {
              const got = decidedEvents();
              assert.deepStrictEqual(got, Array.isArray(expected) ? [...expected] : [expected as E]);
              return got.reduce(decider.evolve, before);
            },
            thenNothing() {
              assert.deepStrictEqual(decidedEvents(), [], "expected no events");
            },
            thenThrows(expected) {
              if (!("error" in outcome)) {
                throw new assert.AssertionError({
                  message: `expected decide to throw, but it decided ${JSON.stringify(outcome.events)}`,
                  actual: outcome.events,
                });
              }
              if (expected === undefined) return;
              const error = outcome.error;
              if (expected instanceof RegExp)
                assert.match(error instanceof Error ? error.message : String(error), expected);
              else if (expected.prototype instanceof Error || expected === Error)
                assert.ok(
                  error instanceof (expected as new () => Error),
                  `expected a ${expected.name}, got ${String(error)}`,
                );
              else
                assert.ok((expected as (e: unknown) => boolean)(error), `the error does not match: ${String(error)}`);
            },
          };
        },
      };
    },
  };
}
