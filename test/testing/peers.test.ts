import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ErrorCode, isPeerMissingError } from "../../src/index.js";
import { importPeer, isModuleNotFound, missingPeerError } from "../../src/testing/peers.js";
import { tempDir } from "../helpers/temp.js";

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** A Node module that registers a resolve hook making `name` (and its subpaths) "not installed". */
function hidingHook(dir: string, name: string): string {
  const hooks = path.join(dir, `hide-${name}-hooks.mjs`);
  writeFileSync(
    hooks,
    `export async function resolve(specifier, context, next) {
  if (specifier === ${JSON.stringify(name)} || specifier.startsWith(${JSON.stringify(`${name}/`)})) {
    const error = new Error("Cannot find package '" + specifier + "' imported from " + context.parentURL);
    error.code = "ERR_MODULE_NOT_FOUND";
    throw error;
  }
  return next(specifier, context);
}
`,
  );
  const register = path.join(dir, `hide-${name}.mjs`);
  writeFileSync(
    register,
    `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
  );
  return register;
}

/** Runs `code` (an ES module) in a child node with tsx and `hide`'s package hidden; returns its exit code and output. */
async function runWithout(hide: string, code: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = tempDir("statelog-peers-");
  const script = path.join(dir, "main.mts");
  writeFileSync(script, code);
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ["--import", "tsx", "--import", hidingHook(dir, hide), script],
      {
        cwd: root,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

const testingIndex = pathToFileURL(path.join(root, "src/testing/index.ts")).href;
const peersModule = pathToFileURL(path.join(root, "src/testing/peers.ts")).href;

describe("statelog/testing without its optional peers", () => {
  it("imports without vitest: deciderSpec works, and registering a suite fails with an error that says to install vitest", async () => {
    const result = await runWithout(
      "vitest",
      `const testing = await import(${JSON.stringify(testingIndex)});
console.log("imported");
const spec = testing.deciderSpec({
  initialState: () => ({ n: 0 }),
  evolve: (s, e) => ({ n: s.n + e.data.by }),
  decide: (c, s) => {
    if (s.n + c.by > 2) throw new Error("over 2");
    return [{ type: "Added", data: { by: c.by } }];
  },
});
spec.given([]).when({ by: 1 }).thenEvents([{ type: "Added", data: { by: 1 } }]);
spec.given([{ type: "Added", data: { by: 2 } }]).when({ by: 1 }).thenThrows(/over 2/);
try {
  spec.given([]).when({ by: 1 }).thenEvents([{ type: "Added", data: { by: 5 } }]);
  console.log("wrong events passed");
} catch (error) {
  console.log("assertion: " + error.name);
}
console.log("decider specs ran");
try {
  testing.describeStoreContract("x", () => undefined);
  console.log("registered");
} catch (error) {
  console.log("error: " + error.message);
}
`,
    );
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("imported");
    expect(result.stdout).toContain("assertion: AssertionError");
    expect(result.stdout).not.toContain("wrong events passed");
    expect(result.stdout).toContain("decider specs ran");
    expect(result.stdout.split("\n")).not.toContain("registered");
    expect(result.stdout).toContain('error: statelog/testing needs the package "vitest"');
    expect(result.stdout).toContain("npm install --save-dev vitest");
  }, 60_000);

  it("imports without fast-check; the property tests then fail with an error that says to install fast-check", async () => {
    const result = await runWithout(
      "fast-check",
      `await import(${JSON.stringify(testingIndex)});
console.log("imported");
const { loadFastCheck } = await import(${JSON.stringify(peersModule)});
try {
  await loadFastCheck();
  console.log("loaded");
} catch (error) {
  console.log("error: " + error.message);
}
`,
    );
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("imported");
    expect(result.stdout.split("\n")).not.toContain("loaded"); // the line the script prints after a successful load
    expect(result.stdout).toContain('error: statelog/testing needs the package "fast-check"');
    expect(result.stdout).toContain("npm install --save-dev fast-check");
  }, 60_000);
});

describe("importPeer", () => {
  it("turns a missing module into an error naming the package to install, keeping the cause", async () => {
    const cause = Object.assign(new Error("Cannot find package 'vitest' imported from /x/y.js"), {
      code: "ERR_MODULE_NOT_FOUND",
    });
    const error = await importPeer("vitest", "to register its conformance suites", () => Promise.reject(cause)).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect(isPeerMissingError(error), String(error)).toBe(true);
    expect((error as Error).message).toBe(
      "statelog/testing needs the package \"vitest\" to register its conformance suites, an optional peer dependency of statelog, and it is not installed: run `npm install --save-dev vitest` — it could not be loaded: Cannot find package 'vitest' imported from /x/y.js",
    );
    expect(error).toMatchObject({
      code: ErrorCode.PeerMissing,
      module: "statelog/testing",
      packages: ["vitest"],
      install: "npm install --save-dev vitest",
    });
    expect((error as Error).cause).toBe(cause);
  });

  it("lets other errors through unchanged, and returns the module when it loads", async () => {
    const other = new SyntaxError("Unexpected token");
    await expect(importPeer("vitest", "x", () => Promise.reject(other))).rejects.toBe(other);
    const missingOther = Object.assign(new Error("Cannot find package 'left-pad'"), { code: "ERR_MODULE_NOT_FOUND" });
    await expect(importPeer("vitest", "x", () => Promise.reject(missingOther))).rejects.toBe(missingOther);
    await expect(importPeer("vitest", "x", async () => ({ ok: 1 }))).resolves.toEqual({ ok: 1 });
  });

  it("recognizes Node's and Vite's wordings of a missing package", () => {
    expect(
      isModuleNotFound({ code: "MODULE_NOT_FOUND", message: "Cannot find module 'fast-check'" }, "fast-check"),
    ).toBe(true);
    expect(isModuleNotFound(new Error("Failed to load url fast-check (resolved id: fast-check)"), "fast-check")).toBe(
      true,
    );
    expect(isModuleNotFound(new Error("fast-check exploded"), "fast-check")).toBe(false);
    expect(isModuleNotFound("not an error", "fast-check")).toBe(false);
    expect(missingPeerError("fast-check", "for x", undefined).name).toBe("PeerMissingError");
    expect(isPeerMissingError(missingPeerError("fast-check", "for x", undefined))).toBe(true);
  });
});
