/**
 * The file-system primitives both file stores share: checksummed lines,
 * atomic file replacement, directory fsync.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NameJsonCache } from "../../src/file/encode.js";
import { checkLineCrc } from "../../src/file/format.js";
import { fsyncDir, writeFileAtomic } from "../../src/file/fs.js";
import { appendLineCrc, lineCrc, verifyLineCrc } from "../../src/file/lines.js";
import { ChangeType } from "../../src/index.js";
import { encodeLines } from "./helpers.js";

const base = await mkdtemp(join(tmpdir(), "statelog-fs-"));
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe("checksummed lines", () => {
  const body = '{"a":1,"note":"grüße 🛒"';

  it("a line ends in the CRC-32 of its UTF-8 bytes before the crc field, as 8 lower-case hex digits", () => {
    const line = appendLineCrc(body);
    expect(line).toMatch(/^\{"a":1,"note":"grüße 🛒","crc":"[0-9a-f]{8}"\}$/);
    expect(JSON.parse(line)).toEqual({ a: 1, note: "grüße 🛒", crc: lineCrc(body) });
    expect(lineCrc("")).toBe("00000000");
    expect(lineCrc("123456789")).toBe("cbf43926"); // the CRC-32 check value
    expect(verifyLineCrc(line)).toBe(true);
  });

  it("a changed, torn or re-cased line fails the check", () => {
    const line = appendLineCrc(body);
    expect(verifyLineCrc(line.replace('"a":1', '"a":2'))).toBe(false);
    expect(verifyLineCrc(line.slice(0, -1))).toBe(false);
    expect(verifyLineCrc(line.slice(0, 10))).toBe(false);
    expect(verifyLineCrc(`${body}}`)).toBe(false);
    expect(verifyLineCrc("")).toBe(false);
    expect(lineCrc(body)).toMatch(/[a-f]/);
    expect(verifyLineCrc(line.replace(lineCrc(body), lineCrc(body).toUpperCase()))).toBe(false);
  });

  it("is the FileStore's checksum: its lines verify, and its reader accepts ours", () => {
    const buf = encodeLines(
      [
        {
          namespace: "ws-1",
          changeType: ChangeType.Set,
          entityType: "system",
          entityId: "s1",
          timestamp: new Date("2025-10-25T12:00:00.000Z"),
          json: '{"name":"grüße 🛒"}',
        },
      ],
      new NameJsonCache(),
      true,
    );
    const fileStoreLine = buf.toString("utf8").replace(/\n$/, "");
    expect(verifyLineCrc(fileStoreLine)).toBe(true);
    const at = fileStoreLine.lastIndexOf(',"crc":"');
    const ours = Buffer.from(appendLineCrc(fileStoreLine.slice(0, at)), "utf8");
    expect(ours.toString("utf8")).toBe(fileStoreLine);
    expect(() => checkLineCrc(ours, 0, ours.length, "ws-1")).not.toThrow();
    const damaged = Buffer.from(ours.toString("utf8").replace("s1", "s2"), "utf8");
    expect(() => checkLineCrc(damaged, 0, damaged.length, "ws-1")).toThrow(/checksum/);
  });
});

describe("writeFileAtomic", () => {
  it("replaces a file with new content and leaves no temp file", async () => {
    const dir = join(base, "replace");
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    const file = join(dir, "data.bin");
    await writeFile(file, "old content that is longer");
    const bytes = await writeFileAtomic(file, [Buffer.from("new "), Buffer.from("content")], "fsync");
    expect(bytes).toBe(11);
    expect(await readFile(file, "utf8")).toBe("new content");
    expect(await writeFileAtomic(file, Buffer.from("again"), "none")).toBe(5);
    expect(await readFile(file, "utf8")).toBe("again");
    expect(await readdir(dir)).toEqual(["data.bin"]);
  });

  it("a failed write leaves the old file and no temp file", async () => {
    const dir = join(base, "fail");
    await mkdir(dir);
    const file = join(dir, "data.bin");
    await writeFile(file, "old");
    // The target is a directory: the rename fails after the temp file was written.
    const target = join(dir, "sub");
    await mkdir(target);
    await writeFile(join(target, "x"), "keeps the directory non-empty");
    await expect(writeFileAtomic(target, Buffer.from("new"), "fsync")).rejects.toMatchObject({
      errno: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST)$/),
    });
    expect((await readdir(dir)).sort()).toEqual(["data.bin", "sub"]);
    expect(await readFile(file, "utf8")).toBe("old");
    await expect(writeFileAtomic(join(base, "missing", "f"), Buffer.from("x"), "fsync")).rejects.toMatchObject({
      errno: "ENOENT",
    });
  });
});

describe("fsyncDir", () => {
  it("fsyncs a directory; a missing one is an error", () => {
    expect(() => fsyncDir(base)).not.toThrow();
    expect(() => fsyncDir(join(base, "missing"))).toThrow(/ENOENT/);
  });
});
