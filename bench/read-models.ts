/**
 * Read-model query benchmarks: a filtered, sorted query returning 20 of
 * 100,000 models, on MemoryReadModelStore and FileReadModelStore with
 * indexes, against the same filter / sort / slice on a plain array of the
 * same models, measured in the same run (target: >= 1x, the store as fast
 * as the array or faster). Two shapes:
 * - selective: `customer.id = c` (20 matches), by `total` descending: the
 *   index on `customer.id` narrows the candidates to 20;
 * - sort-indexed: `status = "open"` (half the models), by `total`
 *   descending, first 20: the index on `total` is walked in order (no sort
 *   of the 50,000 matches).
 *
 * `npx tsx bench/read-models.ts [--quick]`, or through `npm run bench`.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FileReadModelStore } from "../src/file/index.js";
import { MemoryReadModelStore } from "../src/memory/index.js";
import { type Query, QueryBuilder, type ReadModelStore, type ReadModelWrite } from "../src/read-models/index.js";

/** Options of {@link runReadModelBenchmarks}. */
export interface ReadModelBenchOptions {
  /** Fewer queries: a smoke run, not figures to record. @default false (or `--quick` on the command line) */
  quick?: boolean;
}

interface Order {
  id: string;
  customer: { id: string };
  total: number;
  status: "open" | "paid";
}

const MODELS = 100_000;
const CUSTOMERS = 5_000;
const PAGE = 20;

function orders(): Order[] {
  const out: Order[] = [];
  let x = 12345;
  for (let i = 0; i < MODELS; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push({
      id: `o${i}`,
      customer: { id: `c${i % CUSTOMERS}` },
      total: x % 100_000,
      status: i % 2 ? "open" : "paid",
    });
  }
  return out;
}

const byTotalDesc = (a: Order, b: Order) => b.total - a.total || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

interface Shape {
  readonly name: string;
  readonly query: (k: number) => Query;
  readonly array: (models: readonly Order[], k: number) => Order[];
}

const SHAPES: readonly Shape[] = [
  {
    name: `customer.id = c, by total desc, ${PAGE} of ${MODELS.toLocaleString("en-US")}`,
    query: (k) =>
      new QueryBuilder("Order")
        .filter("customer.id", `c${k % CUSTOMERS}`)
        .sortBy("total", "desc")
        .limit(PAGE)
        .build(),
    array: (models, k) => {
      const c = `c${k % CUSTOMERS}`;
      return models
        .filter((m) => m.customer.id === c)
        .sort(byTotalDesc)
        .slice(0, PAGE);
    },
  },
  {
    name: `status = open, by total desc, first ${PAGE}`,
    query: () => new QueryBuilder("Order").filter("status", "open").sortBy("total", "desc").limit(PAGE).build(),
    array: (models) =>
      models
        .filter((m) => m.status === "open")
        .sort(byTotalDesc)
        .slice(0, PAGE),
  },
];

async function fill(store: ReadModelStore & { saveWithCheckpoint?: unknown }, models: readonly Order[]): Promise<void> {
  const writes: ReadModelWrite[] = models.map((m) => ({
    type: "save",
    model: m,
    metadata: {
      id: m.id,
      modelType: "Order",
      schemaVersion: 1,
      lastUpdated: new Date(0),
      lastEventPosition: 0,
      metadata: {},
    },
  }));
  const s = store as Required<Pick<ReadModelStore, "saveWithCheckpoint">>;
  for (let i = 0; i < writes.length; i += 5_000) {
    await s.saveWithCheckpoint(writes.slice(i, i + 5_000), {
      name: "bench",
      status: "catching_up",
      checkpoint: i,
      updatedAt: new Date(),
    });
  }
}

async function timeQueries(n: number, run: (k: number) => Promise<unknown> | unknown): Promise<number> {
  await run(0); // warm-up (and, for a store, the first build of its indexes)
  const start = performance.now();
  for (let k = 1; k <= n; k++) await run(k);
  return (performance.now() - start) / n;
}

/** Runs the suite and prints the ratios. */
export async function runReadModelBenchmarks(options: ReadModelBenchOptions = {}): Promise<void> {
  const quick = options.quick ?? process.argv.includes("--quick");
  const queries = quick ? 20 : 200;
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../.bench");
  await mkdir(root, { recursive: true });
  const base = await mkdtemp(path.join(root, "read-models-"));
  const models = orders();
  const indexes = ["customer.id", "total"];
  const memory = await MemoryReadModelStore.open({ indexes });
  const file = await FileReadModelStore.open({ directory: path.join(base, "file"), sync: "none", indexes });
  try {
    await fill(memory, models);
    await fill(file, models);
    console.log(
      `\nRead-model queries${quick ? " (--quick: smoke run)" : ""}: ${MODELS.toLocaleString("en-US")} models`,
    );
    console.log(
      ["query".padEnd(52), "subject".padEnd(22), "per query".padStart(12), "vs array".padStart(10)].join(" "),
    );
    for (const shape of SHAPES) {
      const array = await timeQueries(queries, (k) => shape.array(models, k));
      console.log(
        [shape.name.padEnd(52), "plain array".padEnd(22), `${array.toFixed(3)} ms`.padStart(12), ""].join(" "),
      );
      for (const [name, store] of [
        ["MemoryReadModelStore", memory],
        ["FileReadModelStore", file],
      ] as const) {
        // Same answer first: the ids of the page.
        const got = (await store.query<Order>(shape.query(7))).items.map((i) => i.model.id);
        const want = shape.array(models, 7).map((m) => m.id);
        if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${name} answered ${got} instead of ${want}`);
        const ms = await timeQueries(queries, (k) => store.query(shape.query(k)));
        const ratio = array / ms;
        console.log(
          [
            shape.name.padEnd(52),
            name.padEnd(22),
            `${ms.toFixed(3)} ms`.padStart(12),
            `${ratio.toFixed(2)}x`.padStart(10),
            ratio >= 1 ? "target >= 1x met" : "target >= 1x NOT met",
          ].join(" "),
        );
      }
    }
  } finally {
    await memory.close();
    await file.close();
    await rm(base, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await runReadModelBenchmarks();
}
