/** The CLI on file event stores and file read-model stores, run as a child process. */
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExitCode } from "../../src/cli/errors.js";
import { createEvent } from "../../src/events/index.js";
import { segmentName } from "../../src/file/events/format.js";
import { FileEventStore } from "../../src/file/index.js";
import { eventLine, filesOf } from "../helpers/event-files.js";
import { jsonLines, outcome } from "./run.js";
import { writeOrdersStatus } from "./sample.js";

/**
 * The sample event store: two segments (a snapshot between them), four
 * events. Tests that damage a store write their own (a copy would not keep
 * the segments' modification times exactly, which the index files check).
 */
async function writeEvents(directory: string): Promise<void> {
  await using store = await FileEventStore.open({ directory });
  await store.append("order-1", [createEvent("placed", { n: 1 }), createEvent("paid", { n: 2 })]);
  await store.append("order-2", [createEvent("placed", { n: 3 })]);
  await store.snapshot();
  await store.append("order-1", [createEvent("shipped", { n: 4 })]);
}

describe("statelog CLI on file event and read-model stores", { timeout: 120_000 }, () => {
  let dir: string;
  let events: string;
  let models: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "statelog-cli-events-"));
    events = join(dir, "events");
    await writeEvents(events);
    models = join(dir, "models");
    await writeOrdersStatus(models);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("streams, read and stats", async () => {
    const streams = await outcome("streams", `file+events:${events}`, "--json");
    expect(streams.code).toBe(ExitCode.Ok);
    expect(JSON.parse(streams.stdout)).toEqual([
      expect.objectContaining({ streamId: "order-1", eventCount: 3, firstPosition: 1, lastPosition: 3 }),
      expect.objectContaining({ streamId: "order-2", eventCount: 1, lastPosition: 1 }),
    ]);
    const table = await outcome("streams", `file+events:${events}`, "--prefix", "order-2");
    expect(table.stdout).toMatch(/^order-2\s+1\s+1\s+1\s+\S+Z$/m);
    expect(table.stdout).not.toContain("order-1");

    const read = await outcome("read", `file+events:${events}`, "order-1");
    expect(jsonLines(read.stdout).map((e) => [e.position, e.globalPosition, e.type, e.data])).toEqual([
      [1, 1, "placed", { n: 1 }],
      [2, 2, "paid", { n: 2 }],
      [3, 4, "shipped", { n: 4 }],
    ]);
    const page = await outcome("read", `file+events:${events}`, "order-1", "--from", "1", "--limit", "1", "--json");
    expect(JSON.parse(page.stdout).map((e: { type: string }) => e.type)).toEqual(["paid"]);
    const missing = await outcome("read", `file+events:${events}`, "order-9");
    expect(missing.code).toBe(ExitCode.NotFound);
    expect(missing.stderr).toContain("[STATELOG_NOT_FOUND]");

    const stats = await outcome("stats", `file+events:${events}`, "--json");
    expect(JSON.parse(stats.stdout)).toMatchObject({ backend: "file", streams: 2, events: 4, globalPosition: 4 });
  });

  it("subscribe --no-follow prints every stream's events in global order, or one stream's, then stops", async () => {
    const all = await outcome("subscribe", `file+events:${events}`, "--no-follow");
    expect(all.code).toBe(ExitCode.Ok);
    expect(jsonLines(all.stdout).map((e) => e.globalPosition)).toEqual([1, 2, 3, 4]);
    const after = await outcome("subscribe", `file+events:${events}`, "order-1", "--from", "2", "--no-follow");
    expect(jsonLines(after.stdout).map((e) => e.type)).toEqual(["shipped"]);
    // A stream that is not there is not found, as for `read` (followed, it would be waited for).
    const missing = await outcome("subscribe", `file+events:${events}`, "order-9", "--no-follow");
    expect(missing.code).toBe(ExitCode.NotFound);
    expect(missing.stderr).toContain("[STATELOG_NOT_FOUND]");
  });

  it("read refuses an unknown --format (exit 2)", async () => {
    const bad = await outcome("read", `file+events:${events}`, "order-1", "--format", "xml");
    expect(bad.code).toBe(ExitCode.Usage);
    expect(bad.stderr).toContain('--format must be "jsonl" or "table", got "xml" [STATELOG_CONFIGURATION]');
    expect(bad.stdout).toBe("");
  });

  it("subscribe --no-follow and verify end on a store whose events all expired (retention)", async () => {
    const expired = join(dir, "expired-events");
    {
      await using store = await FileEventStore.open({ directory: expired, retentionDurationMs: 60_000 });
      const old = new Date("1970-01-02T00:00:00.000Z");
      await store.append("s1", [createEvent("old", { n: 1 }, { timestamp: old })]);
      await store.snapshot(); // a new segment: the old one's events can all expire
      await store.append("s1", [createEvent("old", { n: 2 }, { timestamp: old })]);
      await store.snapshot();
      await store.applyRetention();
      expect(store.stats()).toMatchObject({ globalPosition: 2 });
      expect(await store.readStream("s1").catch(() => [])).toEqual([]);
    }
    for (const args of [
      ["subscribe", `file+events:${expired}`, "--no-follow"],
      ["subscribe", `file+events:${expired}`, "s1", "--no-follow"],
    ]) {
      const run = await outcome(...args);
      expect(run.code, args.join(" ")).toBe(ExitCode.Ok);
      expect(run.stdout).toBe("");
    }
    const verified = await outcome("verify", `file+events:${expired}`, "--json", "--no-progress");
    expect(verified.code, verified.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, problems: [] });
  });

  it("verify's progress on a file event store counts the segments' bytes: it ends at its total", async () => {
    const run = await outcome("verify", `file+events:${events}`);
    expect(run.code, run.stderr).toBe(ExitCode.Ok);
    const segments = readdirSync(events).filter((n) => n.startsWith("segment-"));
    const bytes = segments.reduce((n, name) => n + statSync(join(events, name)).size, 0);
    // The directory holds more (LOCK, index files, a snapshot): the total counted them, the reads never reached it.
    expect(readdirSync(events).length).toBeGreaterThan(segments.length);
    const lines = run.stderr.split("\n").filter((l) => l.startsWith("verify files: "));
    expect(lines.at(-1)).toMatch(new RegExp(`^verify files: ${bytes}/${bytes} bytes `));
  });

  it("verify checks segment checksums and order and the index snapshot; damage exits 7", async () => {
    const ok = await outcome("verify", `file+events:${events}`, "--json", "--no-progress");
    expect(ok.code).toBe(ExitCode.Ok);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      ok: true,
      problems: [],
      checked: { segments: 2, lines: 4, snapshots: 1, events: 4, streams: 2 },
    });

    const damaged = join(dir, "damaged-events");
    await writeEvents(damaged);
    const segment = readdirSync(damaged).find((n) => n.startsWith("segment-")) as string;
    const snapshot = readdirSync(damaged).find((n) => n.startsWith("snapshot-")) as string;
    const text = readFileSync(join(damaged, segment), "utf8");
    writeFileSync(join(damaged, segment), text.replace('"paid","ts"', '"PAID","ts"'));
    const bytes = readFileSync(join(damaged, snapshot));
    bytes.writeUInt8((bytes.at(-2) as number) ^ 0x20, bytes.length - 2);
    writeFileSync(join(damaged, snapshot), bytes);
    const bad = await outcome("verify", `file+events:${damaged}`, "--no-progress");
    expect(bad.code).toBe(ExitCode.Damaged);
    expect(bad.stdout).toContain(
      `error   ${join(damaged, segment)}:2: damaged line (checksum mismatch or not an event)`,
    );
    expect(bad.stdout).toContain(`error   ${join(damaged, snapshot)}: `);
    expect(bad.stdout).toContain("snapshot checksum mismatch");
    expect(bad.stdout).toMatch(/^DAMAGED: .*; 2 error\(s\)/m);
  });

  it("verify: a damaged index file, or one without its segment, is a warning (derived data), not damage", async () => {
    const copy = join(dir, "damaged-index");
    await writeEvents(copy);
    const indexes = readdirSync(copy).filter((n) => n.startsWith("index-"));
    expect(indexes.length).toBeGreaterThan(0);
    const index = join(copy, indexes[0] as string);
    const bytes = readFileSync(index);
    bytes.writeUInt8((bytes.at(-1) as number) ^ 0xff, bytes.length - 1);
    writeFileSync(index, bytes);
    const orphan = join(copy, "index-0000000000099999.idx");
    cpSync(join(events, indexes[0] as string), orphan);
    const result = await outcome("verify", `file+events:${copy}`, "--json", "--no-progress");
    expect(result.code).toBe(ExitCode.Ok);
    const report = JSON.parse(result.stdout);
    expect(report.checked["index files"]).toBe(indexes.length + 1);
    expect(report.problems).toEqual([
      expect.objectContaining({
        severity: "warning",
        where: index,
        message: expect.stringContaining("index file damaged"),
      }),
      expect.objectContaining({
        severity: "warning",
        where: orphan,
        message: expect.stringContaining("index file without its segment"),
      }),
    ]);
  });

  it("verify: a segment missing in the middle is damage; many segments, retention and snapshots are not", async () => {
    // Healthy: many small segments, each append to its own stream.
    const many = join(dir, "many-segments");
    {
      await using store = await FileEventStore.open({ directory: many, segmentBytes: 400 });
      for (let i = 1; i <= 30; i++) await store.append(`s${i}`, [createEvent("e", { i })]);
    }
    const segments = readdirSync(many).filter((n) => n.startsWith("segment-"));
    expect(segments.length).toBeGreaterThan(5);
    const healthy = await outcome("verify", `file+events:${many}`, "--json", "--no-progress");
    expect(healthy.code, healthy.stdout).toBe(ExitCode.Ok);
    expect(JSON.parse(healthy.stdout)).toMatchObject({ ok: true, problems: [], checked: { events: 30 } });

    // A segment in the middle deleted (with its index): the events it held are missing, as an open says.
    const middle = segments[Math.floor(segments.length / 2)] as string;
    const first = Number(middle.slice("segment-".length, -".log".length));
    const after = segments[segments.indexOf(middle) + 1] as string;
    const firstAfter = Number(after.slice("segment-".length, -".log".length));
    rmSync(join(many, middle));
    rmSync(join(many, middle.replace("segment-", "index-").replace(/\.log$/, ".idx")));
    const gap = await outcome("verify", `file+events:${many}`, "--json", "--no-progress");
    expect(gap.code, gap.stdout).toBe(ExitCode.Damaged);
    expect(JSON.parse(gap.stdout).problems).toEqual([
      {
        severity: "error",
        where: `${join(many, after)}:1`,
        message: `global position ${firstAfter} follows ${first - 1} (expected ${first}): events ${first} to ${firstAfter - 1} are missing (a segment deleted or lost?)`,
      },
    ]);

    // Healthy: retention deleted the leading segments (after a snapshot), and the last segment is the empty one
    // a snapshot rolled to.
    const retained = join(dir, "retained-segments");
    {
      await using store = await FileEventStore.open({
        directory: retained,
        segmentBytes: 400,
        retentionDurationMs: 60_000,
      });
      const old = new Date("1970-01-02T00:00:00.000Z");
      // 11 old events: the segment that holds the last of them also holds new ones (it is kept).
      for (let i = 1; i <= 11; i++) await store.append(`s${i % 4}`, [createEvent("old", { i }, { timestamp: old })]);
      for (let i = 1; i <= 12; i++) await store.append(`s${i % 4}`, [createEvent("new", { i })]);
      await store.applyRetention();
      await store.snapshot();
    }
    const kept = readdirSync(retained);
    expect(kept).not.toContain(segmentName(1));
    expect(kept.filter((n) => n.startsWith("snapshot-"))).toHaveLength(1);
    expect(readFileSync(join(retained, kept.filter((n) => n.startsWith("segment-")).at(-1) as string))).toHaveLength(0);
    const afterRetention = await outcome("verify", `file+events:${retained}`, "--json", "--no-progress");
    expect(afterRetention.code, afterRetention.stdout).toBe(ExitCode.Ok);
    const report = JSON.parse(afterRetention.stdout);
    expect(report).toMatchObject({ ok: true, problems: [] });
    // The expired lines of the kept segment are lines, not events: the count is the one stats gives.
    expect(report.checked.lines).toBeGreaterThan(12);
    expect(report.checked.events).toBe(12);
    const stats = await outcome("stats", `file+events:${retained}`, "--json");
    expect(JSON.parse(stats.stdout)).toMatchObject({ events: 12 });

    // Healthy: a store written by the earlier version (its snapshot holds the events).
    const v1 = join(import.meta.dirname, "..", "file", "fixtures", "events-v1");
    const older = await outcome("verify", `file+events:${v1}`, "--json", "--no-progress");
    expect(older.code, older.stdout).toBe(ExitCode.Ok);
    expect(JSON.parse(older.stdout)).toMatchObject({ ok: true, problems: [] });
  });

  it("verify: a damaged line is one error, not also one for the next event of its stream", async () => {
    const copy = join(dir, "damaged-repeated-streams");
    {
      await using store = await FileEventStore.open({ directory: copy });
      for (let i = 1; i <= 6; i++) await store.append(`s${i % 2}`, [createEvent("e", { i })]);
    }
    const segment = join(copy, segmentName(1));
    const text = readFileSync(segment, "utf8");
    expect(text).toContain('"data":{"i":3}');
    writeFileSync(segment, text.replace('"data":{"i":3}', '"data":{"i":4}'));
    const result = await outcome("verify", `file+events:${copy}`, "--json", "--no-progress");
    expect(result.code, result.stdout).toBe(ExitCode.Damaged);
    // (Its index file no longer matches the edited segment: a warning.)
    const errors = JSON.parse(result.stdout).problems.filter((p: { severity: string }) => p.severity === "error");
    expect(errors).toEqual([
      { severity: "error", where: `${segment}:3`, message: "damaged line (checksum mismatch or not an event)" },
    ]);
  });

  it("verify: an empty segment whose name claims events an earlier segment holds is a warning", async () => {
    const copy = join(dir, "stray-segment");
    await writeEvents(copy);
    const first = readdirSync(copy).filter((n) => n.startsWith("segment-"))[0] as string;
    const g = Number(first.slice("segment-".length, -".log".length)) + 1;
    const stray = join(copy, `segment-${String(g).padStart(first.length - "segment-.log".length, "0")}.log`);
    writeFileSync(stray, "");
    const result = await outcome("verify", `file+events:${copy}`, "--json", "--no-progress");
    expect(result.code).toBe(ExitCode.Ok);
    expect(JSON.parse(result.stdout).problems).toEqual([
      expect.objectContaining({
        severity: "warning",
        where: stray,
        message: expect.stringContaining("an empty segment whose name claims global position"),
      }),
    ]);
  });

  it("verify: an intact index file that no longer matches its segment (cut by hand) is a warning", async () => {
    const copy = join(dir, "edited-segment");
    await writeEvents(copy);
    const segments = readdirSync(copy).filter((n) => n.startsWith("segment-"));
    const last = join(copy, segments.at(-1) as string);
    const index = join(copy, (segments.at(-1) as string).replace("segment-", "index-").replace(/\.log$/, ".idx"));
    expect(readdirSync(copy)).toContain(index.slice(copy.length + 1));
    // Drop the segment's last event: every line left is whole and checksummed, the index still lists the dropped one.
    const lines = readFileSync(last, "utf8")
      .split("\n")
      .filter((l) => l !== "");
    writeFileSync(
      last,
      lines
        .slice(0, -1)
        .map((l) => `${l}\n`)
        .join(""),
    );
    const result = await outcome("verify", `file+events:${copy}`, "--json", "--no-progress");
    expect(result.code, result.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(result.stdout).problems).toEqual([
      expect.objectContaining({
        severity: "warning",
        where: index,
        message: expect.stringContaining("index file does not match its segment after byte 0"),
      }),
    ]);
  });

  it("verify changes nothing, and reports a last append cut short of its batch as a torn append", async () => {
    const cut = join(dir, "cut-batch");
    {
      await using store = await FileEventStore.open({ directory: cut });
      for (let i = 0; i < 4; i++) await store.append(`s${i % 2}`, [createEvent("one", { i })]);
      await store.append(
        "batch",
        [1, 2, 3, 4, 5].map((k) => createEvent("five", { k })),
      );
    }
    rmSync(join(cut, "LOCK")); // as after a crash that left no LOCK file: verify must not make one
    const segment = join(cut, segmentName(1));
    const lines = readFileSync(segment, "utf8").split("\n").slice(0, -1);
    expect(lines).toHaveLength(9);
    // Cut at a line boundary: 3 of the batch's 5 lines left.
    writeFileSync(
      segment,
      lines
        .slice(0, 7)
        .map((l) => `${l}\n`)
        .join(""),
    );
    const before = filesOf(cut);
    const atLine = await outcome("verify", `file+events:${cut}`, "--json", "--no-progress");
    expect(atLine.code, atLine.stderr).toBe(ExitCode.Ok);
    expect(filesOf(cut)).toEqual(before);
    const report = JSON.parse(atLine.stdout);
    expect(report).toMatchObject({ ok: true, checked: { segments: 1, lines: 7, events: 4, streams: 2 } });
    expect(report.problems).toContainEqual({
      severity: "warning",
      where: segment,
      message:
        "its last append is torn: the batch of 5 events of line 5 ends after 3 of its lines (an append interrupted by a crash: reads leave it out, the next open drops it)",
    });
    expect(report.problems.every((p: { severity: string }) => p.severity === "warning")).toBe(true);

    // Cut inside the batch's fourth line.
    writeFileSync(segment, `${lines.slice(0, 7).join("\n")}\n${(lines[7] as string).slice(0, 20)}`);
    const midLine = filesOf(cut);
    const inLine = await outcome("verify", `file+events:${cut}`, "--no-progress");
    expect(inLine.code, inLine.stderr).toBe(ExitCode.Ok);
    expect(filesOf(cut)).toEqual(midLine);
    expect(inLine.stdout).toContain(
      `warning ${segment}: its last append is torn: the batch of 5 events of line 5 ends after 3 of its lines and a torn line`,
    );
  });

  it("verify: order and batch checks from the lines alone; a store open elsewhere is refused (exit 6)", async () => {
    const crafted = join(dir, "crafted-events");
    mkdirSync(crafted);
    // Segment 1: a batch of 3 cut after 2 lines, in a segment that is not the last (error). Segment 4: a stream
    // that jumps, and a global position that skips one.
    writeFileSync(join(crafted, segmentName(1)), eventLine(1, "a", 1) + eventLine(2, "b", 1, 3) + eventLine(3, "b", 2));
    writeFileSync(join(crafted, segmentName(4)), eventLine(4, "a", 3) + eventLine(6, "a", 4));
    const result = await outcome("verify", `file+events:${crafted}`, "--json", "--no-progress");
    expect(result.code, result.stderr).toBe(ExitCode.Damaged);
    expect(JSON.parse(result.stdout).problems).toEqual([
      {
        severity: "error",
        where: `${join(crafted, segmentName(1))}:2`,
        message:
          "the batch of 3 events of line 2 ends after 2 of its lines, and it is not the last segment (a crash can only cut the log's last append)",
      },
      {
        severity: "error",
        where: `${join(crafted, segmentName(4))}:1`,
        message: 'stream "a": position 3 follows 1 (expected 2)',
      },
      {
        severity: "error",
        where: `${join(crafted, segmentName(4))}:2`,
        message: "global position 6 follows 4 (expected 5)",
      },
    ]);
    expect(readdirSync(crafted)).toEqual([segmentName(1), segmentName(4)]);

    await using _open = await FileEventStore.open({ directory: join(dir, "events-in-use") });
    const locked = await outcome("verify", `file+events:${join(dir, "events-in-use")}`, "--no-progress");
    expect(locked.code).toBe(ExitCode.Unavailable);
    expect(locked.stderr).toContain("[STATELOG_LOCKED]");
  });

  it("verify: a torn append in the last segment that holds events, before an empty one, is a warning as for the last", async () => {
    // What an OS crash with sync "none" after a roll leaves: the segment rolled away from lost the end of its
    // last append (2 of its 4 lines kept); the new segment, named after that append, is empty. An open accepts it.
    const crashed = join(dir, "lost-tail");
    mkdirSync(crashed);
    const lines = [1, 2, 3, 4, 5].map((g) => eventLine(g, "a", g)).join("");
    writeFileSync(join(crashed, segmentName(1)), lines + eventLine(6, "a", 6, 4) + eventLine(7, "a", 7));
    writeFileSync(join(crashed, segmentName(10)), "");
    const result = await outcome("verify", `file+events:${crashed}`, "--json", "--no-progress");
    expect(result.code, result.stdout).toBe(ExitCode.Ok);
    const report = JSON.parse(result.stdout);
    expect(report.checked).toMatchObject({ segments: 2, lines: 7, events: 5 });
    expect(report.problems).toEqual([
      {
        severity: "warning",
        where: join(crashed, segmentName(1)),
        message: expect.stringContaining("its last append is torn: the batch of 4 events of line 6 ends after 2"),
      },
      {
        severity: "warning",
        where: join(crashed, segmentName(10)),
        message:
          "an empty last segment named past the events (global position 10, the next is 6): left by a roll before a crash lost the last appends; holds nothing: the next open removes it",
      },
    ]);
    await using store = await FileEventStore.open({ directory: crashed });
    expect(store.stats().globalPosition).toBe(5);
  });

  it("commands that read refuse a directory that holds no event store or read-model store (exit 3), creating nothing", async () => {
    const empty = join(dir, "mistyped");
    mkdirSync(empty);
    // A file store's directory: a line per change, no segment, no read-model log.
    const fileStore = join(dir, "a-file-store");
    mkdirSync(fileStore);
    writeFileSync(join(fileStore, "ws-1.jsonl"), "");
    for (const where of [empty, fileStore]) {
      const before = readdirSync(where).sort();
      for (const args of [
        ["streams", `file+events:${where}`],
        ["stats", `file+events:${where}`],
        ["read", `file+events:${where}`, "order-1"],
        ["subscribe", `file+events:${where}`, "--no-follow"],
        ["verify", `file+events:${where}`, "--no-progress"],
        ["status", `file+models:${where}`, "orders"],
        ["verify", `file+models:${where}`, "--no-progress"],
      ]) {
        const run = await outcome(...args);
        expect(run.code, `${args.join(" ")}: ${run.stderr}`).toBe(ExitCode.NotFound);
        expect(run.stdout, args.join(" ")).toBe("");
        const events = args[1]!.startsWith("file+events:");
        expect(run.stderr, args.join(" ")).toBe(
          `statelog: ${events ? "event store" : "read-model store"} not found in directory ${JSON.stringify(where)}: it holds no ${
            events ? "segment-*.log" : "read-models.jsonl"
          } file (a command that reads creates none) [STATELOG_NOT_FOUND]\n`,
        );
        expect(readdirSync(where).sort(), args.join(" ")).toEqual(before);
      }
    }
    const json = await outcome("streams", `file+events:${empty}`, "--json");
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: "STATELOG_NOT_FOUND", exitCode: 3 } });
    // A missing read-model store directory is not found by verify either (it reported "ok: checked nothing").
    const missing = await outcome("verify", `file+models:${join(dir, "no-such-models")}`, "--no-progress");
    expect(missing.code).toBe(ExitCode.NotFound);
    expect(missing.stderr).toContain("read-model store directory");
  });

  it("status shows projections by name; an unknown one exits 3", async () => {
    const status = await outcome("status", `file+models:${models}`, "orders", "--json");
    expect(status.code).toBe(ExitCode.Ok);
    expect(JSON.parse(status.stdout)).toEqual([
      { name: "orders", status: "up_to_date", checkpoint: 4, updatedAt: "2026-01-02T03:04:05.000Z", lagEvents: 0 },
    ]);
    const table = await outcome("status", `file+models:${models}`, "orders", "nope");
    expect(table.code).toBe(ExitCode.NotFound);
    expect(table.stdout).toMatch(/^orders\s+up_to_date\s+4\s+0\s+2026-01-02T03:04:05.000Z$/m);
    expect(table.stderr).toContain('projection "nope" not found [STATELOG_NOT_FOUND]');
    const verify = await outcome("verify", `file+models:${models}`, "--json", "--no-progress");
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, checked: { lines: 1 } });
    const stats = await outcome("stats", `file+models:${models}`);
    expect(stats.code).toBe(ExitCode.Unsupported);
  });
});
