/**
 * `npx tsx examples/order-aggregate.ts`: an event-sourced Order aggregate
 * on the file backend — commands (place, add item, ship), a conflict
 * between two writers and its retry, snapshots, and a reload from disk.
 *
 * The data lives in `$STATELOG_DEMO_DIR` (default `./data/order-demo`): a
 * second run finds the order where the first left it, loaded from its
 * newest snapshot plus the events after it.
 */
import { resolve } from "node:path";
import { FileEventStore, FileSnapshotStore } from "../src/file/index.js";
import { isVersionConflictError } from "../src/index.js";
import { type AggregateEvent, EventSourcedRepository } from "../src/repository/index.js";

type OrderEvent =
  | AggregateEvent<"OrderPlaced", { customerId: string }>
  | AggregateEvent<"ItemAdded", { sku: string; quantity: number; priceCents: number }>
  | AggregateEvent<"OrderShipped", { carrier: string }>;

interface Order {
  readonly status: "new" | "placed" | "shipped";
  readonly customerId: string | null;
  readonly lines: readonly { sku: string; quantity: number }[];
  readonly totalCents: number;
}

type OrderCommand =
  | { type: "place"; customerId: string }
  | { type: "addItem"; sku: string; quantity: number; priceCents: number }
  | { type: "ship"; carrier: string };

const initialState = (): Order => ({ status: "new", customerId: null, lines: [], totalCents: 0 });

function evolve(order: Order, event: OrderEvent): Order {
  switch (event.type) {
    case "OrderPlaced":
      return { ...order, status: "placed", customerId: event.data.customerId };
    case "ItemAdded": {
      const { sku, quantity, priceCents } = event.data;
      return {
        ...order,
        lines: [...order.lines, { sku, quantity }],
        totalCents: order.totalCents + quantity * priceCents,
      };
    }
    case "OrderShipped":
      return { ...order, status: "shipped" };
  }
}

function decide(command: OrderCommand, order: Order): OrderEvent[] {
  switch (command.type) {
    case "place":
      if (order.status !== "new") throw new Error("the order is already placed");
      return [{ type: "OrderPlaced", data: { customerId: command.customerId } }];
    case "addItem":
      if (order.status !== "placed") throw new Error(`cannot add items to an order that is ${order.status}`);
      return [
        { type: "ItemAdded", data: { sku: command.sku, quantity: command.quantity, priceCents: command.priceCents } },
      ];
    case "ship":
      if (order.status !== "placed") throw new Error(`cannot ship an order that is ${order.status}`);
      if (order.lines.length === 0) throw new Error("cannot ship an empty order");
      return [{ type: "OrderShipped", data: { carrier: command.carrier } }];
  }
}

const money = (cents: number) => (cents / 100).toFixed(2);
const directory = resolve(process.env.STATELOG_DEMO_DIR ?? "./data/order-demo");
const id = "1001";

await using eventStore = await FileEventStore.open({ directory: resolve(directory, "events") });
await using snapshots = await FileSnapshotStore.open({ directory: resolve(directory, "snapshots") });
await using orders = await EventSourcedRepository.open({
  eventStore,
  snapshots,
  snapshotEvery: 2,
  aggregateType: "order",
  initialState,
  evolve,
});

const existing = await orders.load(id).catch(() => undefined);
if (existing !== undefined) {
  const { state, version, snapshotVersionAt, eventsFolded } = existing;
  console.log(
    `order-${id} restored: ${state.status}, ${state.lines.length} lines, total ${money(state.totalCents)}, ` +
      `version ${version} (snapshot at ${snapshotVersionAt} + ${eventsFolded} events)`,
  );
  await orders
    .handle(id, (o) => decide({ type: "addItem", sku: "late", quantity: 1, priceCents: 1 }, o))
    .catch((error: Error) => console.log(`refused: ${error.message}`));
} else {
  const run = (command: OrderCommand) =>
    orders.handle(id, (o) => decide(command, o), { metadata: { correlationId: `demo-${command.type}` } });

  const placed = await run({ type: "place", customerId: "c-7" });
  console.log(`placed order-${id} for ${placed.state.customerId} (version ${placed.version})`);
  const added = await run({ type: "addItem", sku: "book", quantity: 2, priceCents: 1500 });
  console.log(`added book x2 (version ${added.version}, total ${money(added.state.totalCents)})`);

  // Two writers load the same version; the second append conflicts.
  const alice = await orders.load(id);
  const bob = await orders.load(id);
  await orders.save(id, decide({ type: "addItem", sku: "pen", quantity: 1, priceCents: 200 }, alice.state), {
    expectedVersion: alice.version,
  });
  try {
    await orders.save(id, decide({ type: "addItem", sku: "ink", quantity: 1, priceCents: 900 }, bob.state), {
      expectedVersion: bob.version,
    });
  } catch (error) {
    if (!isVersionConflictError(error)) throw error;
    console.log(`conflict: expected version ${error.expected}, actual ${error.actual}`);
  }

  // handle retries on its own: another writer gets in on the first attempt.
  const shipped = await orders.handle(id, async (o, { attempt }) => {
    if (attempt === 1)
      await orders.save(id, decide({ type: "addItem", sku: "gift-wrap", quantity: 1, priceCents: 300 }, o));
    return decide({ type: "ship", carrier: "ups" }, o);
  });
  console.log(`shipped order-${id} after ${shipped.attempts} attempts (version ${shipped.version})`);
  console.log(
    `lines: ${shipped.state.lines.map((l) => `${l.sku} x${l.quantity}`).join(", ")}; total ${money(shipped.state.totalCents)}`,
  );
}
