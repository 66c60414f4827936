/**
 * `statelog verify` reads a file as it was when the check began: a line a
 * writer appends meanwhile (half-written when it is read) is neither
 * checked nor taken for damage.
 */
import { appendFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { eachLine } from "../../src/cli/verify.js";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const progress = { total() {}, update() {}, stop() {} };

describe("verify's line reader", () => {
  it("reads the lines the file had when it began, not those appended meanwhile", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "statelog-verify-lines-"));
    dirs.push(dir);
    const file = path.join(dir, "ns.jsonl");
    // Larger than one read of the stream (64 KiB): the stream reads on after the first lines are handed out.
    const lines = Array.from({ length: 4000 }, (_, i) => JSON.stringify({ i, pad: "x".repeat(40) }));
    writeFileSync(file, `${lines.join("\n")}\n`);
    const seen: string[] = [];
    const torn = await eachLine(file, progress, { bytes: 0 }, (line) => {
      // A writer appends while the check runs: a whole line, then half of another.
      if (seen.length === 0) appendFileSync(file, `${JSON.stringify({ i: "late" })}\n{"i":"half`);
      seen.push(line);
    });
    expect(torn).toBe(false);
    expect(seen).toEqual(lines);
  });

  it("leaves out a torn last line and says so", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "statelog-verify-lines-"));
    dirs.push(dir);
    const file = path.join(dir, "ns.jsonl");
    writeFileSync(file, '{"a":1}\n{"b":2}\n{"c":');
    const seen: string[] = [];
    expect(await eachLine(file, progress, { bytes: 0 }, (line) => seen.push(line))).toBe(true);
    expect(seen).toEqual(['{"a":1}', '{"b":2}']);
  });
});
