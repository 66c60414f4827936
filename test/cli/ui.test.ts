/** `statelog ui`: the web inspector served by the CLI over targets opened from URLs, run as a child process. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExitCode } from "../../src/cli/errors.js";
import { FileStore } from "../../src/file/index.js";
import { outcome, start } from "./run.js";

describe("statelog ui", { timeout: 120_000 }, () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "statelog-cli-ui-"));
    await using store = await FileStore.open({ directory: join(dir, "data"), autoCompact: false });
    await store.save([{ namespace: "a", changeType: "set", entityType: "t", entityId: "1", entity: { v: 1 } }]);
    await store.save([{ namespace: "a", changeType: "set", entityType: "t", entityId: "1", entity: { v: 2 } }]);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("serves the inspector on 127.0.0.1 with a token, shows the file log's history, and stops on SIGINT", async () => {
    const running = start("ui", `file:${join(dir, "data")}`);
    await running.until((out) => /statelog inspector: http:\/\/\S+/.test(out));
    const url = new URL((/statelog inspector: (http:\/\/\S+)/.exec(running.stdout) as RegExpExecArray)[1] as string);
    expect(url.hostname).toBe("127.0.0.1");
    const token = url.searchParams.get("token") as string;
    expect(token.length).toBeGreaterThanOrEqual(32);

    const api = (path: string, headers: Record<string, string> = {}) => fetch(new URL(path, url.origin), { headers });
    const refused = await api("/api/overview");
    expect([401, 403]).toContain(refused.status);

    const auth = { authorization: `Bearer ${token}` };
    const overview = (await (await api("/api/overview", auth)).json()) as { targets: { name: string }[] };
    expect(overview.targets.map((t) => t.name)).toEqual([`file:${join(dir, "data")}`]);

    const history = await api("/api/history?target=0&namespace=a&entityType=t&entityId=1", auth);
    expect(history.status).toBe(200);
    const body = (await history.json()) as { available: boolean; changes: { entity?: unknown }[] };
    expect(body.available).toBe(true);
    expect(body.changes.map((c) => c.entity)).toEqual([{ v: 1 }, { v: 2 }]);

    expect(await running.stop("SIGINT")).toBe(0);
  });

  it("--json prints where it listens as one JSON line, and --allow-writes reaches the page", async () => {
    const running = start("ui", `file:${join(dir, "data")}`, "--json", "--allow-writes");
    await running.until((out) => out.includes("\n"));
    const info = JSON.parse(running.stdout.split("\n")[0] as string) as Record<string, unknown>;
    expect(info).toMatchObject({ host: "127.0.0.1", allowWrites: true });
    const url = new URL(info.url as string);
    expect(url.searchParams.get("token")).toBe(info.token);
    expect(Number(url.port)).toBe(info.port);
    const overview = await fetch(new URL("/api/overview", url.origin), {
      headers: { authorization: `Bearer ${info.token as string}` },
    });
    expect(((await overview.json()) as { allowWrites: boolean }).allowWrites).toBe(true);
    expect(await running.stop("SIGTERM")).toBe(0);
  });

  it("refuses a bad URL with a configuration error and never listens", async () => {
    const result = await outcome("ui", "nosuch://x");
    expect(result.code).toBe(ExitCode.Usage);
    expect(result.stdout).not.toContain("statelog inspector:");
    expect(result.stderr).toContain("STATELOG_CONFIGURATION");
  });
});
