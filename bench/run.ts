/**
 * `npm run bench [-- <suite…>] [--quick] [--json <file>]`: runs the
 * benchmark suites one after the other in this process and prints each
 * suite's ratios against baselines measured in the same run.
 *
 * A suite that is missing or fails is reported and the others still run;
 * the exit code is non-zero if any suite failed.
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Command, InvalidArgumentError } from "commander";
import { formatMachine, loadNow, machineInfo } from "./lib/machine.js";
import { BENCH_ROOT, type BenchOptions, type BenchResult, formatMs, markdownTable, now, table } from "./lib/measure.js";

/** A suite: the module that holds it and the function that runs it. */
interface Suite {
  readonly name: string;
  readonly module: string;
  readonly run: string;
  /** Left out when no suite is named (it takes minutes): run it by name. @default true */
  readonly inDefault?: boolean;
}

/** Every suite, in the order they run. */
const SUITES: readonly Suite[] = [
  { name: "core", module: "./core.js", run: "runCoreBenchmarks" },
  { name: "events", module: "./events.js", run: "runEventBenchmarks" },
  { name: "aggregates", module: "./aggregates.js", run: "runAggregateBenchmarks" },
  { name: "read-models", module: "./read-models.js", run: "runReadModelBenchmarks" },
  { name: "kafka", module: "./kafka.js", run: "runKafkaBenchmarks" },
  { name: "nats", module: "./nats.js", run: "runNatsBenchmarks" },
  { name: "projections", module: "./projections.js", run: "runProjectionBenchmarks" },
  // Minutes long (180 s, --quick 20 s, STATELOG_SOAK_SECONDS): only when named, `npm run bench -- soak`.
  { name: "soak", module: "./soak.js", run: "runSoakBenchmarks", inDefault: false },
];

/** What one suite did. */
interface SuiteOutcome {
  readonly suite: string;
  readonly status: "ok" | "missing" | "failed";
  readonly ms: number;
  /** The suite's rows when it returned {@link BenchResult}s; anything else it returned otherwise. */
  readonly results?: unknown;
  readonly error?: string;
}

interface Args {
  readonly suites: Suite[];
  readonly quick: boolean;
  readonly json: string | undefined;
  readonly markdown: string | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  const names = SUITES.map((s) => s.name);
  const program = new Command()
    .name("npm run bench --")
    .description("Runs statelog's benchmarks: ratios against baselines measured in the same run.")
    .argument(
      "[suites...]",
      `suites to run (default: all but soak): ${names.join(", ")}`,
      (value: string, previous: string[] | undefined) => {
        if (!names.includes(value)) {
          throw new InvalidArgumentError(`unknown suite ${JSON.stringify(value)}; choose from ${names.join(", ")}`);
        }
        return [...(previous ?? []), value];
      },
    )
    .option("--quick", "smaller workloads and fewer repetitions: a smoke run, not figures to record")
    .option("--json <file>", "also write every result, with the machine, as JSON to <file>")
    .option("--markdown <file>", "also write the results as Markdown tables (for docs/performance.md) to <file>")
    .showHelpAfterError()
    .parse(argv as string[], { from: "node" });
  const selected = (program.processedArgs[0] as string[] | undefined) ?? [];
  const opts = program.opts<{ quick?: boolean; json?: string; markdown?: string }>();
  return {
    suites:
      selected.length === 0
        ? SUITES.filter((s) => s.inDefault !== false)
        : SUITES.filter((s) => selected.includes(s.name)),
    quick: opts.quick === true,
    json: opts.json,
    markdown: opts.markdown,
  };
}

function isBenchResults(value: unknown): value is BenchResult[] {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every(
      (r) =>
        typeof r === "object" &&
        r !== null &&
        "operation" in r &&
        "ratio" in r &&
        "subjectMs" in r &&
        "baselineMs" in r,
    )
  );
}

function describeError(error: unknown): string {
  if (error instanceof AggregateError) return error.message;
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}

async function runSuite(suite: Suite, options: BenchOptions): Promise<SuiteOutcome> {
  const start = now();
  const source = `bench/${path.basename(suite.module, ".js")}.ts`;
  if (!existsSync(fileURLToPath(new URL(suite.module.replace(/\.js$/, ".ts"), import.meta.url)))) {
    return { suite: suite.name, status: "missing", ms: now() - start, error: `${source} not found` };
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(suite.module)) as Record<string, unknown>;
  } catch (error) {
    return {
      suite: suite.name,
      status: "failed",
      ms: now() - start,
      error: `loading ${source}: ${describeError(error)}`,
    };
  }
  const run = mod[suite.run];
  if (typeof run !== "function") {
    return {
      suite: suite.name,
      status: "missing",
      ms: now() - start,
      error: `${source} exports no function ${suite.run}`,
    };
  }
  try {
    const results: unknown = await run(options);
    return { suite: suite.name, status: "ok", ms: now() - start, results };
  } catch (error) {
    // A suite may attach the rows it did measure before failing.
    const partial = (error as { partialResults?: unknown } | null)?.partialResults;
    return {
      suite: suite.name,
      status: "failed",
      ms: now() - start,
      error: describeError(error),
      ...(partial === undefined ? {} : { results: partial }),
    };
  }
}

async function main(): Promise<number> {
  const { suites, quick, json, markdown } = parseArgs(process.argv);
  const machine = machineInfo(process.cwd());
  console.log(`statelog benchmarks${quick ? " (--quick: smoke run, do not record these figures)" : ""}`);
  console.log(`machine: ${formatMachine(machine)}`);
  console.log(`files under ${BENCH_ROOT}\n`);
  const controller = new AbortController();
  process.once("SIGINT", () => {
    console.log("\ninterrupted: stopping after the current measurement");
    controller.abort(new Error("interrupted"));
  });
  const outcomes: SuiteOutcome[] = [];
  for (const suite of suites) {
    if (controller.signal.aborted) break;
    console.log(`=== ${suite.name} === (${loadNow()})`);
    const outcome = await runSuite(suite, { quick, signal: controller.signal });
    outcomes.push(outcome);
    if (outcome.status !== "ok") console.error(`[${suite.name}] ${outcome.status.toUpperCase()}: ${outcome.error}\n`);
  }

  console.log("=== summary ===");
  const rows = outcomes.flatMap((o) => (isBenchResults(o.results) ? o.results : []));
  if (rows.length > 0) console.log(`${table(rows)}\n`);
  for (const o of outcomes) {
    const detail = o.status === "ok" ? "" : `: ${o.error?.split("\n")[0]}`;
    console.log(`${o.suite.padEnd(7)} ${o.status.padEnd(8)} ${formatMs(o.ms)}${detail}`);
  }
  console.log(`finished (${loadNow()}; ${machine.cpus} CPUs)`);
  const notMet = rows.filter((r) => r.met === false);
  if (notMet.length > 0)
    console.log(`\ntargets not met: ${notMet.map((r) => `${r.operation} (${r.subject} vs ${r.baseline})`).join("; ")}`);

  if (json) {
    const file = path.resolve(json);
    await writeFile(file, `${JSON.stringify({ quick, machine, suites: outcomes }, null, 2)}\n`);
    console.log(`\nresults written to ${file}`);
  }
  if (markdown) {
    const file = path.resolve(markdown);
    const sections = outcomes.map((o) =>
      isBenchResults(o.results) ? `### ${o.suite}\n\n${markdownTable(o.results)}\n` : `### ${o.suite}\n\n${o.status}\n`,
    );
    const header = `Measured${quick ? " (--quick)" : ""} on ${formatMachine(machine)}.\n\n`;
    await writeFile(file, header + sections.join("\n"));
    console.log(`Markdown tables written to ${file}`);
  }
  return outcomes.some((o) => o.status !== "ok") ? 1 : 0;
}

process.exitCode = await main();
