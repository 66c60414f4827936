import { AssertionError } from "node:assert";
import { describe, expect, it } from "vitest";
import { deciderSpec } from "../../src/testing/index.js";

type Event = { type: "placed"; data: { id: string } } | { type: "shipped"; data: Record<string, never> };
type Command = { type: "place"; id: string } | { type: "ship" } | { type: "noop" };
type State = { status: "none" | "placed" | "shipped" };

class NotPlacedError extends Error {}

const spec = deciderSpec<State, Event, Command>({
  initialState: () => ({ status: "none" }),
  evolve: (_s, e) => ({ status: e.type === "placed" ? "placed" : "shipped" }),
  decide: (c, s) => {
    if (c.type === "noop") return [];
    if (c.type === "place") return { type: "placed", data: { id: c.id } };
    if (s.status !== "placed") throw new NotPlacedError(`cannot ship an order that is ${s.status}`);
    return [{ type: "shipped", data: {} }];
  },
});

describe("deciderSpec: given / when / thenEvents, thenNothing, thenThrows", () => {
  it("thenEvents: the decided events equal the expected ones; it returns the state after them", () => {
    expect(
      spec
        .given([])
        .when({ type: "place", id: "o-1" })
        .thenEvents({ type: "placed", data: { id: "o-1" } }),
    ).toEqual({
      status: "placed",
    });
    spec
      .given([{ type: "placed", data: { id: "o-1" } }])
      .when({ type: "ship" })
      .thenEvents([{ type: "shipped", data: {} }]);
  });

  it("thenNothing and thenThrows (a class, a pattern, a predicate, anything)", () => {
    spec.given([]).when({ type: "noop" }).thenNothing();
    const ship = spec.given([]).when({ type: "ship" });
    ship.thenThrows(NotPlacedError);
    ship.thenThrows(/is none/);
    ship.thenThrows((e) => e instanceof NotPlacedError);
    ship.thenThrows();
  });

  it("fails with an AssertionError when the outcome differs", () => {
    expect(() => spec.given([]).when({ type: "place", id: "o-1" }).thenEvents([])).toThrow(AssertionError);
    expect(() => spec.given([]).when({ type: "place", id: "o-1" }).thenNothing()).toThrow(AssertionError);
    expect(() => spec.given([]).when({ type: "place", id: "o-1" }).thenThrows()).toThrow(/expected decide to throw/);
    expect(() => spec.given([]).when({ type: "ship" }).thenEvents([])).toThrow(/decide threw: .*is none/);
    expect(() =>
      spec
        .given([])
        .when({ type: "ship" })
        .thenThrows(/shipped/),
    ).toThrow(AssertionError);
    expect(() => spec.given([]).when({ type: "ship" }).thenThrows(TypeError)).toThrow(AssertionError);
  });
});
