/**
 * The file store's change feed on a file a crash or a fault left damaged:
 * a torn last line (a writer killed mid-write) is no news, so a feed waits
 * for the next change instead of reading again and again (which never
 * yielded to the event loop); a damaged line mid-file is a CorruptionError
 * naming its line, or with `onCorruption: "skip"` left out and reported,
 * as `load` does.
 */
import { spawn } from "node:child_process";
import { appendFileSync, fstatSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { FeedNotifier } from "../../src/core/feed.js";
import { FileFeedSource } from "../../src/file/feed.js";
import { FileStore } from "../../src/file/index.js";
import { type ChangeInput, ErrorCode, type FeedEvent, isStatelogError } from "../../src/index.js";
import { childCommand } from "../helpers/child-command.js";

const here = path.dirname(fileURLToPath(import.meta.url));

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "statelog-feed-damage-"));
  dirs.push(dir);
  return dir;
}

const set = (id: string, n: number): ChangeInput => ({
  namespace: "ws",
  changeType: "set",
  entityType: "item",
  entityId: id,
  entity: { n },
});
const idOf = (e: FeedEvent | undefined) => (e?.type === "change" ? e.change.entityId : e?.type);

describe("FileStore change feed on a damaged file", () => {
  it("a torn last line: the feed waits (timers run), then delivers the next save", { timeout: 60_000 }, async () => {
    const directory = await tempDir();
    const store = await FileStore.open({ directory });
    await store.save([set("a", 1)]);
    appendFileSync(store.fileOf("ws"), '{"namespace":"ws","changeType":"set","ent'); // a writer died mid-line
    await store.close();
    // In a child process with a deadline: a feed that never yields would hang this process too.
    const argv = await childCommand(path.join(here, "fixtures", "torn-feed-child.ts"), await tempDir());
    const child = spawn(process.execPath, [...argv, directory], {
      stdio: ["ignore", "pipe", "pipe"],
      cwd: path.resolve(here, "../.."),
      env: { ...process.env, NODE_PATH: path.resolve(here, "../../node_modules") },
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    const deadline = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    clearTimeout(deadline);
    expect(out, `stderr: ${err}`).toMatch(/^TIMER \d+ \d+\nNEXT b\n$/);
    const [, ms, reads] = /^TIMER (\d+) (\d+)/.exec(out) as RegExpExecArray;
    expect(Number(ms)).toBeLessThan(5_000);
    expect(Number(reads)).toBeLessThan(50); // a read per poll (20 ms) at most, not one after another
    expect(code).toBe(0);
  });

  it("a damaged line is a CorruptionError naming its line; with onCorruption: skip it is left out and reported", async () => {
    const directory = await tempDir();
    const writer = await FileStore.open({ directory });
    for (const [id, n] of [
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ] as const)
      await writer.save([set(id, n)]);
    await writer.close();
    const file = path.join(directory, "ws.jsonl");
    writeFileSync(file, readFileSync(file, "utf8").replace('"n":2', '"n":9')); // line 2 fails its checksum

    const strict = await FileStore.open({ directory });
    const failure = await (async () => {
      for await (const _ of strict.watch("ws"));
    })().catch((e: unknown) => e);
    expect(isStatelogError(failure, ErrorCode.Corruption), String(failure)).toBe(true);
    expect(failure).toMatchObject({ line: 2 });
    await strict.close();

    const skipped: number[][] = [];
    const lenient = await FileStore.open({
      directory,
      onCorruption: "skip",
      onSkippedLines: (report) => skipped.push(report.lines),
    });
    expect((await lenient.load("ws")).map((c) => c.entityId)).toEqual(["a", "c"]);
    const feed = lenient.watch("ws");
    const events = feed[Symbol.asyncIterator]();
    const initial: (string | undefined)[] = [];
    for (let e = await events.next(); ; e = await events.next()) {
      initial.push(idOf(e.value));
      if (e.value?.type === "caught-up") break;
    }
    expect(initial).toEqual(["a", "c", "caught-up"]);
    expect(skipped).toEqual([[2], [2]]); // the load's report, then the feed's
    // A damaged line appended later is left out too, numbered in the whole file; the feed goes on.
    const text = readFileSync(file, "utf8");
    const line = text.split("\n")[0] as string;
    appendFileSync(file, `${line.replace('"n":1', '"n":7')}\n`);
    await lenient.save([set("d", 4)]);
    expect(idOf((await events.next()).value)).toBe("d");
    expect(skipped.at(-1)).toEqual([4]);
    feed.close();
    await lenient.close();
  });

  it("a whole line another process appends right after the feed's read is news, not a torn tail", async () => {
    const store = await FileStore.open({ directory: await tempDir() });
    await store.save([set("a", 1)]);
    const file = store.fileOf("ws");
    await store.close();
    const line = readFileSync(file, "utf8");
    let first = true;
    const source = new FileFeedSource({
      namespace: "ws",
      file,
      chunkBytes: 65_536,
      batchSize: 10_000,
      loaded: (c) => c,
      skip: false,
      onSkipped: () => undefined,
      notifier: new FeedNotifier(),
      pollIntervalMs: 20,
      snapshot: async () => {
        const fd = openSync(file, "r");
        const st = fstatSync(fd);
        const snap = { fd, size: st.size, rawSize: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev };
        // Another process's save lands right after the shared lock is released.
        if (first) {
          first = false;
          appendFileSync(file, line);
        }
        return snap;
      },
    });
    const batch = await source.read(undefined, new AbortController().signal);
    expect(batch.items).toHaveLength(1);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 3_000);
    await source.wait(batch.cursor, abort.signal);
    clearTimeout(timer);
    expect(abort.signal.aborted, "wait() returned only when aborted: the appended line was taken for a torn tail").toBe(
      false,
    );
  });
});
