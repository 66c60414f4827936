/**
 * `statelog verify` of a file event store reports what an open decides,
 * from the open's own read-only scan: on these stores, an error exactly
 * when the open refuses the store, and a warning on each segment the open
 * cuts or removes, none on the others. (Verify checks more than an open
 * reads: every line under the index files, snapshot files;
 * damage there is an error although an open, which trusts the index, may
 * succeed and fail later at the read.) The cases where the two used to disagree
 * are pinned by their messages: a damaged last line (the open drops it as
 * a torn write; verify called it damage), an empty line (the open refuses
 * it; verify passed over it), an empty segment before the last one named
 * past the events (the open removes it; verify said nothing), a segment
 * whose name is not its first event's position (the open used it, and
 * reads failed later; verify called it an error).
 */
import { mkdtempSync, readdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseTarget } from "../../src/cli/targets.js";
import { type VerifyReport, verifyTarget } from "../../src/cli/verify.js";
import { segmentName } from "../../src/file/events/format.js";
import { FileEventStore } from "../../src/file/index.js";
import { isCorruptionError } from "../../src/index.js";
import { eventLine } from "../helpers/event-files.js";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** A line of a segment, as the store writes it (`batch`: the length of the append it starts). */
const line = eventLine;

/** `line` with a changed byte in its data: its checksum fails. */
const damaged = (g: number, stream: string, position: number) =>
  line(g, stream, position).replace(`"data":{"g":${g}}`, `"data":{"g":${g + 1}}`);

/** Events 1…n of stream "a", one append each. */
const ones = (n: number, from = 1) => Array.from({ length: n }, (_, i) => line(from + i, "a", from + i)).join("");

/** A store directory of these segments (by first global position), no index file, no LOCK file. */
function store(segments: Record<number, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), "statelog-verify-agrees-"));
  dirs.push(dir);
  for (const [first, text] of Object.entries(segments)) writeFileSync(path.join(dir, segmentName(Number(first))), text);
  return dir;
}

const segmentSizes = (dir: string) =>
  new Map(
    readdirSync(dir)
      .filter((n) => n.startsWith("segment-"))
      .map((n) => [n, statSync(path.join(dir, n)).size]),
  );

/** Verifies `dir`, then opens it: the report, and whether the open refused the store. */
async function verifyThenOpen(dir: string): Promise<{ report: VerifyReport; refused: boolean; changed: string[] }> {
  const report = await verifyTarget(parseTarget(`file+events:${dir}`), new AbortController().signal, true);
  const before = segmentSizes(dir);
  let refused = false;
  try {
    await (await FileEventStore.open({ directory: dir })).close();
  } catch (error) {
    if (!isCorruptionError(error)) throw error;
    refused = true;
  }
  const after = segmentSizes(dir);
  const changed = [...before].filter(([n, size]) => after.get(n) !== size).map(([n]) => n);
  return { report, refused, changed: changed.sort() };
}

const cases: Record<string, Record<number, string>> = {
  "a healthy store of two segments": { 1: ones(3), 4: ones(2, 4) },
  "a damaged last line": { 1: ones(4) + damaged(5, "a", 5) },
  "a damaged last line of an append, then a torn line": {
    1: ones(4) + line(5, "a", 5, 3) + damaged(6, "a", 6) + line(7, "a", 7).slice(0, 30),
  },
  "a damaged line in the middle": { 1: ones(2) + damaged(3, "a", 3) + ones(2, 4) },
  "an empty line in the middle": { 1: `${ones(2)}\n${ones(2, 3)}` },
  "an empty last line": { 1: `${ones(3)}\n` },
  "a torn append before empty segments only (an OS crash after rolls)": {
    1: ones(5) + line(6, "a", 6, 4) + line(7, "a", 7),
    8: "",
    10: "",
  },
  "a torn append before a segment with events": { 1: ones(2) + line(3, "a", 3, 3) + line(4, "a", 4), 5: ones(1, 5) },
  "an empty segment named inside another one's events": { 1: ones(3), 2: "", 4: ones(1, 4) },
  "a segment missing in the middle": { 1: ones(3), 6: ones(2, 6) },
  "a stream that jumps": { 1: ones(2) + line(3, "a", 5) },
  "an append that starts inside another one": { 1: line(1, "a", 1, 3) + line(2, "a", 2) + line(3, "a", 3, 2) },
  "a segment named past its first event": { 1: ones(3), 6: ones(2, 4) },
  "a segment named before its first event": { 1: ones(3), 3: ones(2, 4) },
  "the only segment, named past its first event": { 5: ones(3) },
  "a segment named after another one's position": { 1: ones(2), 2: ones(2, 5), 3: ones(2, 3) },
  "a copy of a segment under another segment's name": { 1: ones(3), 4: ones(3) },
};

describe("verify of a file event store agrees with the open", { timeout: 60_000 }, () => {
  for (const [name, segments] of Object.entries(cases)) {
    it(`${name}: an error when the open refuses it, a warning on each segment it cuts or removes`, async () => {
      const dir = store(segments);
      const { report, refused, changed } = await verifyThenOpen(dir);
      const errors = report.problems.filter((p) => p.severity === "error");
      expect(refused, JSON.stringify(report.problems)).toBe(errors.length > 0);
      if (refused) return;
      const warned = report.problems
        .filter((p) => p.severity === "warning" && /segment-\d+\.log$/.test(p.where))
        .map((p) => path.basename(p.where));
      expect(changed).toEqual([...new Set(warned)].sort());
    });
  }

  it("a damaged last whole line is a torn write the open drops: a warning, not damage", async () => {
    const dir = store(cases["a damaged last line"] as Record<number, string>);
    const { report, changed } = await verifyThenOpen(dir);
    expect(report.problems).toEqual([
      {
        severity: "warning",
        where: path.join(dir, segmentName(1)),
        message:
          "its last line is damaged (checksum or JSON: the next open takes it for an append a crash interrupted and drops it)",
      },
    ]);
    expect(report.checked).toMatchObject({ lines: 5, events: 4 });
    expect(changed).toEqual([segmentName(1)]);
    const batch = store(cases["a damaged last line of an append, then a torn line"] as Record<number, string>);
    expect((await verifyThenOpen(batch)).report.problems).toEqual([
      {
        severity: "warning",
        where: path.join(batch, segmentName(1)),
        message:
          "its last append is torn: the batch of 3 events of line 5 ends after 1 of its lines and a damaged line and a torn line (an append interrupted by a crash: reads leave it out, the next open drops it)",
      },
    ]);
  });

  it("an empty line is a damaged line the open refuses: an error", async () => {
    const dir = store(cases["an empty line in the middle"] as Record<number, string>);
    const { report, refused } = await verifyThenOpen(dir);
    expect(refused).toBe(true);
    expect(report.problems).toEqual([
      {
        severity: "error",
        where: `${path.join(dir, segmentName(1))}:3`,
        message: "damaged line (checksum mismatch or not an event)",
      },
    ]);
  });

  it("a segment whose name is not its first event's position: the same error from verify and the open, which says how to repair it", async () => {
    const rename = (g: number) => `; rename the file to ${segmentName(g)}`;
    const copied = `; ${segmentName(1)} exists too, so one of them is probably a copy: each event must be in one segment only, so remove the copy, and restore from a backup any segment it was copied over`;
    for (const { segments, named, g, repair, events } of [
      { segments: { 1: ones(3), 6: ones(2, 4) }, named: 6, g: 4, repair: rename(4), events: 5 },
      { segments: { 5: ones(3) }, named: 5, g: 1, repair: rename(1), events: 3 },
      { segments: { 1: ones(3), 4: ones(3) }, named: 4, g: 1, repair: copied, events: undefined },
    ]) {
      const dir = store(segments);
      const file = path.join(dir, segmentName(named));
      const reason = `its name says its first event is at global position ${named}, it is at ${g} (a segment is named after the global position of its first event: reads find events by these names)${repair}`;
      const report = await verifyTarget(parseTarget(`file+events:${dir}`), new AbortController().signal, true);
      expect(report.problems[0]).toEqual({ severity: "error", where: file, message: reason });
      const error = await FileEventStore.open({ directory: dir }).catch((e: unknown) => e);
      expect(isCorruptionError(error), String(error)).toBe(true);
      expect((error as Error).message).toBe(`${file}: ${reason}`);
      if (events === undefined) continue;
      // Repaired as told: verify finds nothing, and every event reads back.
      renameSync(file, path.join(dir, segmentName(g)));
      expect((await verifyThenOpen(dir)).report.problems).toEqual([]);
      const reopened = await FileEventStore.open({ directory: dir });
      try {
        const read = (await reopened.readStream("a")).map((e) => e.globalPosition);
        expect(read).toEqual(Array.from({ length: events }, (_, i) => i + 1));
      } finally {
        await reopened.close();
      }
    }
  });

  it("an empty segment before the last one named at the next position is removed by the open: a warning that says so", async () => {
    const dir = store({ 1: ones(5), 6: "", 9: "" });
    const { report, refused, changed } = await verifyThenOpen(dir);
    expect(refused).toBe(false);
    expect(report.problems).toEqual([
      {
        severity: "warning",
        where: path.join(dir, segmentName(6)),
        message:
          "an empty segment before the last one, named at the next position (global position 6, the next is 6): holds nothing: the next open removes it",
      },
      expect.objectContaining({
        severity: "warning",
        where: path.join(dir, segmentName(9)),
        message: expect.stringContaining("an empty last segment named past the events"),
      }),
    ]);
    expect(changed).toEqual([segmentName(6), segmentName(9)].sort());
  });

  it("an empty segment before the last one, named past the events, is removed by the open: a warning", async () => {
    const dir = store(
      cases["a torn append before empty segments only (an OS crash after rolls)"] as Record<number, string>,
    );
    const { report, changed } = await verifyThenOpen(dir);
    expect(report.problems).toEqual([
      expect.objectContaining({ severity: "warning", where: path.join(dir, segmentName(1)) }),
      {
        severity: "warning",
        where: path.join(dir, segmentName(8)),
        message:
          "an empty segment before the last one, named past the events (global position 8, the next is 6): holds nothing: the next open removes it",
      },
      expect.objectContaining({
        severity: "warning",
        where: path.join(dir, segmentName(10)),
        message: expect.stringContaining("an empty last segment named past the events"),
      }),
    ]);
    expect(changed).toEqual([segmentName(1), segmentName(10), segmentName(8)].sort());
  });
});
