#!/usr/bin/env node
/**
 * Builds what the Kafka tests and benchmarks need (runs from scripts/setup-test-env.mjs, the `pretest` step):
 *  1. the native binding of @confluentinc/kafka-javascript, when `require()` of it fails. npm 11 does not run
 *     its install script (package.json `allowScripts` denies it so that an offline `npm install` succeeds), and
 *     offline its prebuilt binary cannot be downloaded; so it is built from source with CKJS_LINKING=dynamic:
 *     the bundled librdkafka is compiled into build/deps/librdkafka.so (with rdkafka_mock.h), ~2 min on 2 cores.
 *  2. .test-tools/kafka-mock-<hash>, librdkafka's mock cluster as a program (test/kafka/kafka-mock.c), compiled
 *     against that same librdkafka (build/deps), so the tests' broker and client speak the same version.
 *     <hash> is the first 12 hex digits of the source's SHA-256: a changed kafka-mock.c is a new binary name,
 *     so test/kafka/cluster.ts (which computes the same name) never runs a stale build. .test-tools/kafka-mock
 *     is a symlink to the latest build, for running it by hand.
 * Idempotent and quick when all is built. Needs gcc, g++, make (Debian: build-essential or `gcc g++ make`).
 * Exits non-zero with what is missing otherwise. See docs/kafka.md.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "package.json"));
const PKG = "@confluentinc/kafka-javascript";
const log = (msg) => console.log(`[setup] kafka: ${msg}`);
const fail = (msg) => {
  console.error(`[setup] kafka: ${msg}`);
  process.exit(1);
};

function has(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

function loads() {
  // A child process: a failed require() of a native module must not poison this one.
  const r = spawnSync(process.execPath, ["-e", `require(${JSON.stringify(PKG)})`], { cwd: root, encoding: "utf8" });
  return { ok: r.status === 0, error: (r.stderr || "").trim().split("\n").slice(0, 3).join(" ") };
}

let pkgDir;
try {
  pkgDir = dirname(require.resolve(`${PKG}/package.json`));
} catch {
  fail(`${PKG} is not installed: run \`npm ci\` (it is a devDependency).`);
}

// 1. The native binding.
const first = loads();
if (first.ok) {
  log("client binding loads");
} else {
  const missingTools = ["gcc", "g++", "make"].filter((c) => !has(c));
  if (missingTools.length > 0) {
    fail(
      `cannot build ${PKG}'s native binding (${first.error}): missing ${missingTools.join(", ")}.\n` +
        `Install them: sudo apt-get install -y ${missingTools.join(" ")}`,
    );
  }
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) fail("cannot find node-gyp (it ships with npm): run this under npm, or `npm install -g node-gyp`.");
  const args = [nodeGyp, "rebuild"];
  // Offline, node-gyp cannot download Node's headers: use the ones installed with Node when present.
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, "include", "node", "common.gypi"))) args.push(`--nodedir=${prefix}`);
  log(`building the native binding from source (CKJS_LINKING=dynamic; about 2 minutes): node ${args.join(" ")}`);
  const started = Date.now();
  const r = spawnSync(process.execPath, args, {
    cwd: pkgDir,
    stdio: ["ignore", "ignore", "pipe"],
    encoding: "utf8",
    env: { ...process.env, CKJS_LINKING: "dynamic", BUILD_LIBRDKAFKA: "1" },
  });
  if (r.status !== 0) {
    fail(`building ${PKG} failed (exit ${r.status}):\n${(r.stderr || "").split("\n").slice(-30).join("\n")}`);
  }
  const again = loads();
  if (!again.ok) fail(`built ${PKG}, but it still does not load: ${again.error}`);
  log(`built the client binding in ${Math.round((Date.now() - started) / 1000)} s`);
}

// 2. The mock cluster program.
const deps = join(pkgDir, "build", "deps");
const bundled =
  existsSync(join(deps, "include", "librdkafka", "rdkafka_mock.h")) && existsSync(join(deps, "librdkafka.so"));
const system = existsSync("/usr/include/librdkafka/rdkafka_mock.h");
if (!bundled && !system) {
  fail(
    `no librdkafka with rdkafka_mock.h to compile the mock cluster against: ${deps} is missing (the client came ` +
      "prebuilt) and the system has no librdkafka headers. Either install them (sudo apt-get install -y librdkafka-dev) " +
      `or rebuild the client from source: rm -rf ${join(pkgDir, "build")} && node scripts/setup-kafka.mjs`,
  );
}
// Prefer the librdkafka the client itself uses (the choice); else the system's (Debian's librdkafka-dev).
const compileFlags = bundled
  ? [`-I${join(deps, "include")}`, `-L${deps}`, `-Wl,-rpath,${deps}`, "-lrdkafka", "-lpthread"]
  : ["-lrdkafka", "-lpthread"];
const lib = bundled ? join(deps, "librdkafka.so") : "/usr/include/librdkafka/rdkafka_mock.h";
const source = join(root, "test", "kafka", "kafka-mock.c");
const toolsDir = join(root, ".test-tools");
const hash = createHash("sha256").update(readFileSync(source)).digest("hex").slice(0, 12);
const binary = join(toolsDir, `kafka-mock-${hash}`);
const stampFile = `${binary}.stamp`;
// The source is in the name; a rebuilt librdkafka (a new file time) also makes a new build.
const stamp = JSON.stringify({ lib, libTime: mtime(lib) });
if (existsSync(binary) && existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp) {
  log(`mock cluster ready: ${binary}`);
} else {
  if (!has("gcc")) fail("cannot compile the Kafka mock cluster: gcc is missing (sudo apt-get install -y gcc)");
  mkdirSync(toolsDir, { recursive: true });
  const tmp = `${binary}.tmp`;
  execFileSync("gcc", ["-O2", "-Wall", "-o", tmp, source, ...compileFlags], { stdio: "inherit" });
  renameSync(tmp, binary);
  writeFileSync(stampFile, stamp);
  log(`compiled the mock cluster: ${binary}`);
}
// .test-tools/kafka-mock: the latest build, for running it by hand (replaced atomically).
const link = join(toolsDir, "kafka-mock");
const linkTmp = `${link}.${process.pid}.tmp`;
try {
  symlinkSync(`kafka-mock-${hash}`, linkTmp);
  renameSync(linkTmp, link);
} catch {
  // another setup run replaced it at the same time: it points to a build as well
  if (existsSync(linkTmp)) unlinkSync(linkTmp);
}

function mtime(path) {
  return statSync(path).mtimeMs;
}

function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath)
    candidates.push(join(dirname(process.env.npm_execpath), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  const npmCli = spawnSync("sh", ["-c", 'readlink -f "$(command -v npm)"'], { encoding: "utf8" }).stdout?.trim();
  if (npmCli) candidates.push(join(dirname(npmCli), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  candidates.push(
    join(
      dirname(dirname(process.execPath)),
      "lib",
      "node_modules",
      "npm",
      "node_modules",
      "node-gyp",
      "bin",
      "node-gyp.js",
    ),
  );
  try {
    candidates.push(require.resolve("node-gyp/bin/node-gyp.js"));
  } catch {
    // not installed locally
  }
  return candidates.find((c) => existsSync(c));
}
