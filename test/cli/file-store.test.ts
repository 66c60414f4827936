/** The CLI on file and memory stores, run as a child process: every store command, its --json, its exit codes. */
import { appendFileSync, closeSync, existsSync, fstatSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExitCode } from "../../src/cli/errors.js";
import { readHint } from "../../src/file/hint.js";
import { FileStore } from "../../src/file/index.js";
import { appendLineCrc } from "../../src/file/lines.js";
import { jsonLines, outcome, start } from "./run.js";
import { set } from "./sample.js";

describe("statelog CLI on file stores", { timeout: 120_000 }, () => {
  let dir: string;
  let data: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "statelog-cli-file-"));
    data = join(dir, "data");
    await using store = await FileStore.open({ directory: data });
    await store.save([set("a", "1", { v: 1 }), set("a", "2", { v: 1 }), set("b", "1", { w: true })]);
    await store.save([set("a", "1", { v: 2 })]);
    await store.save([{ namespace: "a", changeType: "unset", entityType: "t", entityId: "2" }]);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("names a store as file:<dir> like a bare directory", async () => {
    const bare = await outcome("namespaces", data, "--json");
    const url = await outcome("namespaces", `file:${data}`, "--json");
    expect(bare.code).toBe(ExitCode.Ok);
    expect(JSON.parse(url.stdout)).toEqual(JSON.parse(bare.stdout));
    expect(JSON.parse(url.stdout)).toEqual([
      { namespace: "a", live: 1, deleted: 1 },
      { namespace: "b", live: 1, deleted: 0 },
    ]);
  });

  it("dump: every namespace when none is named, a table, --json, progress lines on stderr", async () => {
    const all = await outcome("dump", `file:${data}`);
    expect(all.code).toBe(ExitCode.Ok);
    expect(jsonLines(all.stdout).map((c) => [c.namespace, c.entityID, c.changeType])).toEqual([
      ["a", "1", "set"],
      ["a", "2", "unset"],
      ["b", "1", "set"],
    ]);
    // Not a terminal: plain progress lines, with the rate.
    expect(all.stderr).toMatch(/^dump: 3\/3 changes \(\d+\/s\)$/m);
    const table = await outcome("dump", data, "a", "--format", "table", "--no-progress");
    expect(table.stdout.split("\n")[0]).toMatch(/^entityType\s+entityId\s+change\s+timestamp\s+entity$/);
    expect(table.stdout).toMatch(/^t\s+1\s+set\s+\S+Z\s+\{"v":2\}$/m);
    expect(table.stderr).toBe("");
    // A namespace named twice is printed once.
    const twice = await outcome("dump", data, "b", "b", "a", "b", "--no-progress");
    expect(twice.code, twice.stderr).toBe(ExitCode.Ok);
    expect(jsonLines(twice.stdout).map((c) => [c.namespace, c.entityID])).toEqual([
      ["b", "1"],
      ["a", "1"],
      ["a", "2"],
    ]);
    const json = await outcome("dump", data, "b", "--json", "--no-progress");
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({ namespace: "b", entityID: "1", entity: { w: true }, changeType: "set" }),
    ]);
    const badFormat = await outcome("dump", data, "a", "--format", "xml");
    expect(badFormat.code).toBe(ExitCode.Usage);
    expect(badFormat.stderr).toContain('--format must be "jsonl" or "table", got "xml" [STATELOG_CONFIGURATION]');
  });

  it("history: every line of a key in the log until compaction, oldest first", async () => {
    const h = await outcome("history", `file:${data}`, "a", "t", "1", "--json");
    expect(h.code).toBe(ExitCode.Ok);
    const entries = JSON.parse(h.stdout) as { position: number; change: { entity: unknown } }[];
    expect(entries.map((e) => e.change.entity)).toEqual([{ v: 1 }, { v: 2 }]);
    expect(entries[0]!.position).toBeLessThan(entries[1]!.position);
    const text = await outcome("history", data, "a", "t", "2");
    expect(
      text.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(" ")[2]),
    ).toEqual(["set", "unset"]);
    const none = await outcome("history", data, "a", "t", "nope");
    expect(none.code).toBe(ExitCode.NotFound);
    expect(none.stderr).toContain('key of namespace "a" "t/nope" not found [STATELOG_NOT_FOUND]');
  });

  it("tail: the current state then the barrier; -f follows saves of another process until SIGTERM", async () => {
    const once = await outcome("tail", data, "a", "--json");
    expect(once.code).toBe(ExitCode.Ok);
    const events = jsonLines(once.stdout);
    expect(events.map((e) => e.type)).toEqual(["change", "change", "caught-up"]);
    expect(events.map((e) => (e.change as { entityID?: string } | undefined)?.entityID)).toEqual(["1", "2", undefined]);

    const resumed = await outcome("tail", data, "a", "--json", "--from", String(events[0]!.position));
    expect(jsonLines(resumed.stdout).map((e) => [e.type, e.position])).toEqual([
      ["change", events[1]!.position],
      ["caught-up", events[2]!.position],
    ]);
    const behind = await outcome("tail", data, "a", "--from", "999999");
    expect(behind.code).toBe(ExitCode.FeedBehind);
    expect(behind.stderr).toContain("[STATELOG_FEED_BEHIND]");

    const follow = start("tail", `file:${data}`, "b", "-f");
    await follow.until((_out, err) => err.includes("caught up at position"));
    expect(follow.stdout).toMatch(/^@\d+ set t 1 \{"w":true\}$/m);
    {
      await using store = await FileStore.open({ directory: data, autoCompact: false });
      await store.save([set("b", "2", { live: 1 })]);
    }
    await follow.until((out) => out.includes('set t 2 {"live":1}'));
    expect(await follow.stop("SIGTERM")).toBe(ExitCode.Ok);
  });

  it("stats: counts and bytes per namespace", async () => {
    const s = await outcome("stats", data, "--json");
    expect(s.code).toBe(ExitCode.Ok);
    const stats = JSON.parse(s.stdout);
    expect(stats).toMatchObject({ backend: "file", namespaces: 2 });
    const a = stats.perNamespace.find((r: { namespace: string }) => r.namespace === "a");
    expect(a).toMatchObject({ live: 1, deleted: 1 });
    expect(a.bytes).toBe(readFileSync(join(data, "a.jsonl")).length);
    const table = await outcome("stats", data);
    expect(table.stdout).toMatch(/^\(total\)\s+\d+\s+1\s+\d+$/m);
  });

  it("copy to a memory store, and migrate to a new file store; a copy onto itself is refused", async () => {
    const toMemory = await outcome("copy", data, "memory:", "--json", "--no-progress");
    expect(toMemory.code).toBe(ExitCode.Ok);
    expect(JSON.parse(toMemory.stdout)).toMatchObject({ namespaces: 2, changes: 4 });
    const target = join(dir, "migrated");
    const migrated = await outcome("migrate", `file:${data}`, `file:${target}`);
    expect(migrated.stdout).toContain("copied 4 change(s) in 2 namespace(s)");
    expect(migrated.stderr).toMatch(/^copy a: 2\/2 changes/m);
    await using copy = await FileStore.open({ directory: target });
    expect((await copy.load("b")).map((c) => c.entityId)).toEqual(["1", "2"]);
    const self = await outcome("copy", data, `file:${data}/.`);
    expect(self.code).toBe(ExitCode.Usage);
    expect(self.stderr).toContain("cannot copy a store onto itself");
  });

  it("copy interrupted by Ctrl-C says how many changes it copied in all, the namespaces done before too, and that the directory it created was removed", async () => {
    const source = join(dir, "two-namespaces");
    {
      await using store = await FileStore.open({ directory: source });
      await store.save([set("a", "1", { v: 1 }), set("a", "2", { v: 2 }), set("a", "3", { v: 3 })]);
      await store.save(Array.from({ length: 200_000 }, (_, i) => set("b", String(i), { i })));
    }
    // Small saves of "b": it is still under way when the signal comes, right after "a" is done.
    const target = join(dir, "two-namespaces-copy");
    const copy = start("copy", source, target, "-b", "50");
    await copy.until((_, stderr) => /^copy a: 3\/3 changes/m.test(stderr), 60_000);
    expect(await copy.stop("SIGINT")).toBe(ExitCode.Interrupted);
    // The directory it created is removed (as after any failure): the message says so, not that the changes are kept.
    expect(copy.stderr).toMatch(
      /^statelog: operation aborted \(interrupted\): (\d+) change\(s\) copied in whole saves: 1 of 2 namespace\(s\) in full, (\d+) change\(s\) of namespace "b"; the target directory ".*two-namespaces-copy", which this copy created, was removed: nothing copied is kept; copying again is safe \[STATELOG_ABORTED\]$/m,
    );
    expect(existsSync(target)).toBe(false);
    const [, all, ofB] = /(\d+) change\(s\) copied in whole saves: .*, (\d+) change\(s\) of namespace "b"/.exec(
      copy.stderr,
    ) as RegExpExecArray;
    expect(Number(all)).toBe(3 + Number(ofB));
    expect(Number(ofB)).toBeLessThan(200_000);
  });

  it("copy --json: a namespace named __proto__ is counted like any other; one named twice is copied once", async () => {
    const odd = join(dir, "odd-names");
    {
      await using store = await FileStore.open({ directory: odd });
      await store.save([set("__proto__", "1", { v: 1 }), set("ws-1", "1", { v: 1 }), set("ws-1", "2", { v: 1 })]);
    }
    const all = await outcome("copy", odd, "memory:", "--json", "--no-progress");
    expect(all.code, all.stderr).toBe(ExitCode.Ok);
    const summary = JSON.parse(all.stdout);
    expect(summary).toMatchObject({ namespaces: 2, changes: 3 });
    expect(Object.entries(summary.perNamespace)).toEqual([
      ["__proto__", 1],
      ["ws-1", 2],
    ]);
    const twice = await outcome("copy", odd, "memory:", "-n", "ws-1", "ws-1", "--json", "--no-progress");
    expect(twice.code, twice.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(twice.stdout)).toEqual({ namespaces: 1, changes: 2, perNamespace: { "ws-1": 2 } });
  });

  it("verify: a healthy store passes; a damaged line exits 7; a torn last line is a warning", async () => {
    const ok = await outcome("verify", data, "--json", "--no-progress");
    expect(ok.code).toBe(ExitCode.Ok);
    const report = JSON.parse(ok.stdout);
    expect(report).toMatchObject({ ok: true, problems: [], checked: { namespaces: 2, lines: 6, changes: 4 } });

    const damaged = join(dir, "damaged");
    {
      await using store = await FileStore.open({ directory: damaged });
      await store.save([set("x", "1", { v: 1 }), set("x", "2", { v: 2 }), set("y", "1", 1)]);
    }
    const file = join(damaged, "x.jsonl");
    writeFileSync(file, readFileSync(file, "utf8").replace('{"v":1}', '{"v":9}'));
    const bad = await outcome("verify", `file:${damaged}`);
    expect(bad.code).toBe(ExitCode.Damaged);
    expect(bad.stdout).toContain(`error   ${file}:1: checksum mismatch`);
    expect(bad.stdout).toMatch(/^DAMAGED: .*; 1 error\(s\), 0 warning\(s\)$/m);

    const torn = join(dir, "torn");
    {
      await using store = await FileStore.open({ directory: torn });
      await store.save([set("z", "1", 1)]);
    }
    appendFileSync(join(torn, "z.jsonl"), '{"namespace":"z","changeTy');
    const warned = await outcome("verify", torn, "--json", "--no-progress");
    expect(warned.code).toBe(ExitCode.Ok);
    expect(JSON.parse(warned.stdout).problems).toEqual([
      expect.objectContaining({ severity: "warning", message: expect.stringContaining("last line is torn") }),
    ]);
  });

  it("verify: a hint that no longer matches the bytes of its data file is a warning; the store still loads the file", async () => {
    const edited = join(dir, "edited");
    const keys = Array.from({ length: 1200 }, (_, k) => String(k));
    {
      await using store = await FileStore.open({ directory: edited, autoCompact: false });
      // Every key twice, the odd ones a third time: superseded lines lie between the winners.
      for (let v = 1; v <= 2; v++) await store.save(keys.map((k) => set("h", k, { v })));
      await store.save(keys.filter((k) => Number(k) % 2 === 1).map((k) => set("h", k, { v: 3 })));
      await store.load("h"); // reads the long history, and leaves a hint
      expect(store.stats().hintsWritten).toBe(1);
    }
    const ok = await outcome("verify", edited, "--json", "--no-progress");
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, problems: [], checked: { "hint files": 1 } });
    // A superseded line in the middle, edited by hand with its checksum recomputed (as docs/file-store.md allows).
    const file = join(edited, "h.jsonl");
    const lines = readFileSync(file, "utf8").split("\n");
    const at = 1200 + 601; // key 601's second line, between the winners of keys 600 and 602
    expect(JSON.parse(lines[at]!)).toMatchObject({ entityID: "601", entity: { v: 2 } });
    const body = lines[at]!.slice(0, lines[at]!.lastIndexOf(',"crc":"')).replace('{"v":2}', '{"v":7}');
    lines[at] = appendLineCrc(body);
    writeFileSync(file, lines.join("\n"));
    // Not where the hint's fingerprint samples the file: only the span checksum tells.
    const fd = openSync(file, "r");
    expect(readHint(file, "h", fd, fstatSync(fd))?.spans).toBeDefined();
    closeSync(fd);
    const warned = await outcome("verify", edited, "--json", "--no-progress");
    expect(warned.code).toBe(ExitCode.Ok);
    expect(JSON.parse(warned.stdout).problems).toEqual([
      expect.objectContaining({ severity: "warning", message: expect.stringContaining("hint file does not match") }),
    ]);
    // verify's own load read the file in full and wrote the hint again: it holds now.
    const again = await outcome("verify", edited, "--json", "--no-progress");
    expect(JSON.parse(again.stdout)).toMatchObject({ ok: true, problems: [] });
    await using store = await FileStore.open({ directory: edited, autoCompact: false });
    const loaded = await store.load("h");
    expect(loaded.find((c) => c.entityId === "601")?.entity).toEqual({ v: 3 });
    expect(loaded.find((c) => c.entityId === "600")?.entity).toEqual({ v: 2 });
    expect(store.stats()).toMatchObject({ hintedLoads: 1, hintsWritten: 0 });
  });

  it("compact rewrites the log: history then holds the latest change only", async () => {
    const target = join(dir, "compacting");
    await outcome("copy", data, target, "--no-progress");
    {
      await using store = await FileStore.open({ directory: target, autoCompact: false });
      await store.save([set("a", "1", { v: 3 })]);
    }
    const before = JSON.parse((await outcome("history", target, "a", "t", "1", "--json")).stdout);
    expect(before).toHaveLength(2);
    const compacted = await outcome("compact", target, "--json");
    expect(JSON.parse(compacted.stdout)).toEqual({ compacted: ["a", "b"] });
    // Progress on stderr, like the other long commands, and --no-progress turns it off.
    const shown = await outcome("compact", target, "a");
    expect(shown.code, shown.stderr).toBe(ExitCode.Ok);
    expect(shown.stderr).toMatch(/^compact: 1\/1 namespaces/m);
    const quiet = await outcome("compact", target, "--no-progress");
    expect(quiet.code, quiet.stderr).toBe(ExitCode.Ok);
    expect(quiet.stdout).toBe("compacted 2 namespace(s)\n");
    expect(quiet.stderr).toBe("");
    const after = JSON.parse((await outcome("history", target, "a", "t", "1", "--json")).stdout);
    expect(after.map((e: { change: { entity: unknown } }) => e.change.entity)).toEqual([{ v: 3 }]);
  });

  it("exit codes by outcome: a wrong kind of target, a memory store without history, an unknown option", async () => {
    const wrongKind = await outcome("dump", `file+events:${data}`, "a");
    expect(wrongKind.code).toBe(ExitCode.Usage);
    expect(wrongKind.stderr).toContain("dump needs a store URL (file:./dir, nats://host:4222/bucket");
    expect(wrongKind.stderr).toContain("names an event store");
    const noHistory = await outcome("history", "memory:", "a", "t", "1", "--json");
    expect(noHistory.code).toBe(ExitCode.Unsupported);
    expect(JSON.parse(noHistory.stderr)).toEqual({
      error: {
        code: "STATELOG_UNSUPPORTED",
        message: "memory:: a memory store keeps only the latest change of each key (no history)",
        exitCode: ExitCode.Unsupported,
      },
    });
    const unknownScheme = await outcome("namespaces", "redis://x/y");
    expect(unknownScheme.code).toBe(ExitCode.Usage);
    expect(unknownScheme.stderr).toContain('unknown scheme "redis:"');
    const unknownOption = await outcome("namespaces", data, "--frobnicate");
    expect(unknownOption.code).toBe(ExitCode.Usage);
    expect(unknownOption.stderr).toContain("unknown option '--frobnicate'");
    const missing = await outcome("tail", join(dir, "missing"), "a");
    expect(missing.code).toBe(ExitCode.NotFound);
    expect(await readdir(dir)).not.toContain("missing");
    const help = await outcome("--help");
    expect(help.code).toBe(ExitCode.Ok);
    for (const command of [
      "namespaces",
      "dump",
      "tail",
      "history",
      "copy|migrate",
      "compact",
      "verify",
      "stats",
      "streams",
      "read",
      "subscribe",
      "status",
    ]) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command.replace("|", "\\|")} `, "m"));
    }
  });
});
