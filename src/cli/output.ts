/**
 * How the `statelog` command shows its work: progress of long work (a bar
 * with rate and ETA on a terminal, plain lines otherwise, both on stderr
 * so stdout stays data), tables, and JSON.
 */
import { Presets, SingleBar } from "cli-progress";

/** Progress of one piece of long work (copying a namespace, dumping, verifying). */
export interface Progress {
  /** Sets the amount of work (it may grow as the work learns more). */
  total(total: number): void;
  /** Sets how much is done. */
  update(done: number): void;
  /** Ends the progress (the final line shows the totals). */
  stop(): void;
}

/** Where progress goes: a terminal gets a bar, anything else plain lines. */
export interface ProgressOptions {
  /** Show nothing. @default false */
  quiet?: boolean;
  /** The stream (stderr). */
  stream?: NodeJS.WriteStream;
  /** Least time between two plain lines, in ms (the last line is always printed). @default 1000 */
  lineIntervalMs?: number;
}

const NONE: Progress = { total: () => undefined, update: () => undefined, stop: () => undefined };

/** Seconds as `1m05s` / `12s`. */
function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/** Starts progress for `label`, counting `unit` (e.g. "changes"). */
export function startProgress(label: string, unit: string, options: ProgressOptions = {}): Progress {
  if (options.quiet) return NONE;
  const stream = options.stream ?? process.stderr;
  const started = Date.now();
  let total = 0;
  let done = 0;
  const rate = () => done / Math.max(0.001, (Date.now() - started) / 1000);
  if (stream.isTTY) {
    const bar = new SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate}/s | ETA {eta_formatted}`,
        hideCursor: true,
        stream,
        etaBuffer: 50,
      },
      Presets.shades_classic,
    );
    bar.start(1, 0, { rate: "0" }); // 0%, until the total is known
    return {
      total: (n) => {
        total = n;
        bar.setTotal(n);
      },
      update: (n) => {
        done = n;
        bar.update(n, { rate: rate().toFixed(0) });
      },
      stop: () => bar.stop(),
    };
  }
  const interval = options.lineIntervalMs ?? 1000;
  let last = 0;
  /** What the last line printed showed (the final line is not printed twice). */
  let printed: { done: number; total: number } | undefined;
  const line = () => {
    const r = rate();
    const eta = total > done && r > 0 ? ` ETA ${duration((total - done) / r)}` : "";
    stream.write(`${label}: ${done}/${total} ${unit} (${r.toFixed(0)}/s${eta})\n`);
    printed = { done, total };
  };
  return {
    total: (n) => {
      total = n;
    },
    update: (n) => {
      done = n;
      const now = Date.now();
      if (now - last >= interval) {
        last = now;
        line();
      }
    },
    stop: () => {
      if (printed?.done !== done || printed.total !== total) line();
    },
  };
}

/** Prints rows as an aligned table on stdout: numbers right-aligned, text left-aligned. */
export function printTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): void {
  const width = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? "").length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number"));
  const cell = (v: string | number | undefined, i: number) => {
    const text = String(v ?? "");
    return numeric[i] ? text.padStart(width[i] as number) : text.padEnd(width[i] as number);
  };
  const lines = [headers.map(cell), ...rows.map((r) => r.map(cell))].map((cells) => cells.join("  ").trimEnd());
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** Prints one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Text cut to `max` characters (with `…`), for table cells. */
export function clip(text: string, max = 60): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
