#!/usr/bin/env node
/**
 * Prepares this machine for `npm test` (runs as `pretest`):
 *  - Debian packages the tests need: nats-server (NATS tests), kcat (Kafka
 *    cross-check), chromium (the inspector's browser tests), librdkafka-dev + pkg-config (the Kafka client built from
 *    source, and the librdkafka mock cluster program);
 *  - the Kafka client's native binding and the mock cluster binary
 *    (scripts/setup-kafka.mjs).
 * Installs what is missing when it can (root + apt-get); otherwise it stops
 * and says exactly what to install. Idempotent and quick when all is there.
 */
import { execFileSync, spawnSync } from "node:child_process";

const APT_PACKAGES = {
  "nats-server": "nats-server",
  kcat: "kcat",
  "librdkafka-dev": "librdkafka-dev",
  "pkg-config": "pkg-config",
  gcc: "gcc",
  "g++": "g++",
  make: "make",
  // mount/umount: the storage fault tests mount a small tmpfs (test/faults/tmpfs.ts).
  mount: "mount",
  // chromium: the web inspector's browser tests drive it with playwright-core.
  chromium: "chromium",
};

function installed(pkg) {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a dpkg-query format, not a template
  const r = spawnSync("dpkg-query", ["-W", "-f=${Status}", pkg], { encoding: "utf8" });
  return r.status === 0 && r.stdout.includes("install ok installed");
}

const missing = Object.values(APT_PACKAGES).filter((p) => !installed(p));
if (missing.length > 0) {
  const isRoot = process.getuid?.() === 0;
  const hasApt = spawnSync("which", ["apt-get"]).status === 0;
  if (!isRoot || !hasApt) {
    console.error(
      `statelog tests need these Debian packages: ${missing.join(" ")}\n` +
        `Install them with:  sudo apt-get update && sudo apt-get install -y ${missing.join(" ")}`,
    );
    process.exit(1);
  }
  console.log(`[setup] installing Debian packages: ${missing.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
  execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { stdio: "inherit", env });
}

const kafka = spawnSync(process.execPath, [new URL("./setup-kafka.mjs", import.meta.url).pathname], {
  stdio: "inherit",
});
if (kafka.status !== 0) process.exit(kafka.status ?? 1);
