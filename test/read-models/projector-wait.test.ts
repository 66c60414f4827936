/**
 * `waitForCatchUp({ timeoutMs })` in a process that nothing else keeps
 * alive: its timer does, so the script gets the time-out instead of
 * exiting before it (fixtures/wait-timeout-child.ts).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { childCommand } from "../helpers/child-command.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const base = await mkdtemp(path.join(tmpdir(), "statelog-projector-wait-"));
afterAll(() => rm(base, { recursive: true, force: true }));

describe("Projector.waitForCatchUp's timer", () => {
  it("keeps a script waiting on a stalled projection alive until its time-out", async () => {
    const argv = await childCommand(path.join(here, "fixtures", "wait-timeout-child.ts"), base);
    const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    expect({ code, stdout: stdout.trim() }, stderr).toEqual({ code: 0, stdout: "AbortError TimeoutError" });
  });
});
