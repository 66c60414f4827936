/**
 * Every TypeScript code block of the README and of docs/*.md is complete:
 * it type-checks on its own (imports, definitions) and runs as written, with
 * `statelog…` imports pointed at this checkout's sources, each in a fresh
 * temp directory. Blocks that talk to a server run against servers this
 * test starts: a stock nats-server (default `max_payload`, as a user's
 * first server) and a Kafka cluster (librdkafka's mock, or `$KAFKA_BROKERS`),
 * given to the blocks as `NATS_URL` and `KAFKA_BROKERS` in their environment
 * and in place of the literal addresses `nats://127.0.0.1:4222` and
 * `kafka-1:9092`.
 *
 * librdkafka's mock cluster has no admin API (CreateTopics,
 * DescribeConfigs): there, a block calling `ensureChangelogTopic` must fail
 * with the clear `STATELOG_KAFKA_ADMIN_UNSUPPORTED` error the docs describe
 * (the topic it names exists: this test creates `workspace-changelog`); with
 * a real broker it must succeed like every other block.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "./kafka/cluster.js";
import { type NatsServerProcess, startNatsServer } from "./nats/nats-server.js";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "..");
const NATS_PLACEHOLDER = "nats://127.0.0.1:4222";
const KAFKA_PLACEHOLDER = "kafka-1:9092";

interface Block {
  readonly doc: string;
  /** 1-based line of the block's opening fence. */
  readonly line: number;
  readonly code: string;
}

async function docs(): Promise<string[]> {
  const inDocs = (await readdir(join(root, "docs"))).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`);
  return ["README.md", ...inDocs.sort()];
}

async function blocksOf(doc: string): Promise<Block[]> {
  const text = await readFile(join(root, doc), "utf8");
  const blocks: Block[] = [];
  for (const m of text.matchAll(/^```(ts|typescript)\n([\s\S]*?)^```$/gm)) {
    const line = text.slice(0, m.index).split("\n").length;
    blocks.push({ doc, line, code: m[2] as string });
  }
  return blocks;
}

function pointAtSources(code: string): string {
  return code.replace(/from "statelog(\/[a-z-]+)?"/g, (_m, sub: string | undefined) => {
    const file = sub ? join(root, "src", sub.slice(1), "index.ts") : join(root, "src", "index.ts");
    return `from ${JSON.stringify(file)}`;
  });
}

const label = (b: Block) => `${b.doc}:${b.line}`;
const slug = (b: Block) => `${b.doc.replace(/[^a-z0-9]+/gi, "_")}_${b.line}`;

let blocks: Block[] = [];
let nats: NatsServerProcess | undefined;
let kafka: TestCluster | undefined;
const dirs: string[] = [];
const runs = join(root, "node_modules", ".cache", "statelog-docs-run");

beforeAll(async () => {
  blocks = (await Promise.all((await docs()).map(blocksOf))).flat();
  await mkdir(runs, { recursive: true });
  [nats, kafka] = await Promise.all([startNatsServer({ name: "docs", maxPayload: "server-default" }), startCluster()]);
  if (kafka.isMock) await kafka.createTopic("workspace-changelog", 10);
}, 120_000);

afterAll(async () => {
  await Promise.all([nats?.stop(), kafka?.stop(), ...dirs.map((d) => rm(d, { recursive: true, force: true }))]);
});

describe("code blocks of the README and docs/", () => {
  it("there are blocks in the README and in the docs", () => {
    expect(blocks.filter((b) => b.doc === "README.md").length).toBeGreaterThan(3);
    expect(blocks.filter((b) => b.doc !== "README.md").length).toBeGreaterThan(10);
  });

  it("every block type-checks on its own", { timeout: 180_000 }, async () => {
    // Inside the checkout, so that the blocks resolve the optional peers from node_modules.
    const dir = join(root, "node_modules", ".cache", "statelog-docs");
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    for (const b of blocks) await writeFile(join(dir, `${slug(b)}.ts`), `${b.code}\nexport {};\n`);
    const paths: Record<string, string[]> = { statelog: [join(root, "src", "index.ts")] };
    for (const sub of await readdir(join(root, "src"))) paths[`statelog/${sub}`] = [join(root, "src", sub, "index.ts")];
    const tsconfig = {
      extends: join(root, "tsconfig.json"),
      compilerOptions: { noEmit: true, rootDir: root, paths, noUnusedLocals: false },
      include: [join(dir, "*.ts")],
    };
    await writeFile(join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
    const result = await run(process.execPath, [tsc, "-p", join(dir, "tsconfig.json")], { cwd: root }).catch(
      (e: { stdout?: string; message: string }) => ({ stdout: e.stdout ?? e.message, failed: true }),
    );
    const errors = "failed" in result ? result.stdout : "";
    // Name the doc and line of each failing block rather than the temp file.
    const named = blocks.reduce((text, b) => text.replaceAll(`${slug(b)}.ts`, label(b)), errors);
    expect(named).toBe("");
  });

  it("every block runs as written", { timeout: 600_000 }, async () => {
    const tsx = join(root, "node_modules", "tsx", "dist", "esm", "index.mjs");
    const failures: string[] = [];
    for (const b of blocks) {
      // The file inside the checkout (imports of optional peers resolve from its
      // node_modules); the working directory a fresh temp one (./data …).
      const dir = await mkdtemp(join(tmpdir(), "statelog-doc-"));
      const home = await mkdtemp(join(runs, "run-"));
      dirs.push(dir, home);
      const code = pointAtSources(b.code)
        .replaceAll(NATS_PLACEHOLDER, (nats as NatsServerProcess).url)
        .replaceAll(KAFKA_PLACEHOLDER, (kafka as TestCluster).brokers);
      const file = join(home, "example.mts");
      await writeFile(file, code);
      const env = { ...process.env, NATS_URL: nats?.url, KAFKA_BROKERS: kafka?.brokers };
      const adminOnMock = (kafka as TestCluster).isMock && b.code.includes("ensureChangelogTopic(");
      try {
        const result = await run(process.execPath, ["--import", tsx, file], { cwd: dir, env, timeout: 60_000 });
        if (adminOnMock)
          failures.push(`${label(b)} created or checked a topic on the mock cluster, which has no admin API`);
        else if (result.stderr !== "") failures.push(`${label(b)} wrote to stderr:\n${result.stderr}`);
      } catch (e) {
        const err = e as { stderr?: string; message: string };
        if (adminOnMock && err.stderr?.includes("STATELOG_KAFKA_ADMIN_UNSUPPORTED")) continue;
        failures.push(`${label(b)} failed:\n${err.stderr || err.message}\n--- code ---\n${b.code}`);
      }
    }
    expect(failures).toEqual([]);
  });
});
