/**
 * `npm start`: a small "workspace engine" on the embedded file store.
 *
 * It keeps deployments, environments and resources of a few workspaces in
 * in-memory repositories, persists a stream of changes (creates, updates,
 * deletes) to a FileStore under ./data, then restores every workspace into
 * a fresh Manager and prints what it restored and how long it took.
 *
 * Idempotent: the change stream is deterministic, so every run ends in the
 * same state (the digest printed at the end does not change from run to
 * run), and automatic compaction keeps the files from growing with runs.
 */
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { z } from "zod";
import { FileStore } from "../src/file/index.js";
import { ChangesBuilder, defineEntityType, type Manager, ManagerBuilder } from "../src/index.js";
import { MapEntityRepository } from "../src/memory/index.js";

const DeploymentSchema = z.object({
  id: z.string(),
  name: z.string(),
  version: z.string(),
  replicas: z.number().int().min(0),
});
type Deployment = z.infer<typeof DeploymentSchema>;
const Deployment = defineEntityType("deployment", { schema: DeploymentSchema });
const Environment = defineEntityType("environment", {
  schema: z.object({ id: z.string(), name: z.string(), region: z.string() }),
});
const Resource = defineEntityType("resource", {
  schema: z.object({
    id: z.string(),
    kind: z.string(),
    environmentId: z.string(),
    labels: z.record(z.string(), z.string()),
  }),
});

const WORKSPACES = ["acme", "globex", "initech"];
const CHANGES_PER_WORKSPACE = 4_000;
const BATCH = 250;

/** The in-memory state of one workspace: one repository per entity type. */
function makeEngine(store: FileStore) {
  const repos = {
    deployments: new MapEntityRepository<Deployment>(),
    environments: new MapEntityRepository(),
    resources: new MapEntityRepository(),
  };
  const manager = new ManagerBuilder()
    .withStore(store)
    .registerRepository(Deployment, repos.deployments)
    .registerRepository(Environment, repos.environments)
    .registerRepository(Resource, repos.resources)
    .build();
  return { manager, repos };
}

/** A deterministic pseudo-random generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The change stream of one workspace: creates, then a mix of updates and deletes. */
async function persistWorkspace(manager: Manager, workspace: string, seed: number): Promise<number> {
  const random = rng(seed);
  const pick = (n: number) => Math.floor(random() * n);
  let written = 0;
  let builder = new ChangesBuilder(workspace);
  let inBatch = 0;
  // Timestamps are part of the deterministic stream too (base + sequence).
  const base = Date.UTC(2025, 0, 1);
  for (let i = 0; i < CHANGES_PER_WORKSPACE; i++) {
    const timestamp = new Date(base + i * 1000);
    const roll = random();
    if (roll < 0.1) {
      const id = `env-${pick(12)}`;
      builder.set(
        Environment,
        { id, name: `Env ${id}`, region: ["eu-west-1", "us-east-1", "ap-south-1"][pick(3)] ?? "" },
        { timestamp },
      );
    } else if (roll < 0.5) {
      const id = `dep-${pick(300)}`;
      builder.set(
        Deployment,
        { id, name: `service-${id}`, version: `v1.${pick(40)}.${pick(10)}`, replicas: pick(8) },
        { timestamp },
      );
    } else if (roll < 0.92) {
      const id = `res-${pick(900)}`;
      builder.set(
        Resource,
        {
          id,
          kind: ["EC2Instance", "Bucket", "Queue"][pick(3)] ?? "",
          environmentId: `env-${pick(12)}`,
          labels: { team: `t${pick(5)}` },
        },
        { timestamp },
      );
    } else {
      // Deletes: a resource or a deployment goes away (it may come back later).
      if (random() < 0.7) builder.delete(Resource, `res-${pick(900)}`, { timestamp });
      else builder.delete(Deployment, `dep-${pick(300)}`, { timestamp });
    }
    if (++inBatch === BATCH) {
      await manager.persist(builder.build());
      written += inBatch;
      builder = new ChangesBuilder(workspace);
      inBatch = 0;
    }
  }
  if (inBatch > 0) await manager.persist(builder.build());
  return written + inBatch;
}

type Repos = ReturnType<typeof makeEngine>["repos"];

function digest(engines: Map<string, Repos>): string {
  const hash = createHash("sha256");
  for (const [ws, repos] of engines) {
    for (const [name, repo] of Object.entries(repos)) {
      for (const id of [...repo.entities.keys()].sort()) {
        hash.update(`${ws}\u0000${name}\u0000${id}\u0000${JSON.stringify(repo.get(id))}\n`);
      }
    }
  }
  return hash.digest("hex").slice(0, 16);
}

async function main(): Promise<void> {
  const dir = resolve(process.env.STATELOG_DEMO_DIR ?? "data");
  console.log(`statelog demo: workspace engine on a FileStore in ${dir}\n`);

  // 1. Write: persist every workspace's change stream.
  {
    await using store = await FileStore.open({ directory: dir });
    for (const type of [Deployment, Environment, Resource]) store.registerEntityType(type);
    const { manager } = makeEngine(store);
    const started = performance.now();
    let total = 0;
    for (const [i, ws] of WORKSPACES.entries()) total += await persistWorkspace(manager, ws, 1000 + i);
    const ms = performance.now() - started;
    console.log(`persisted ${total} changes (creates, updates, deletes) in ${ms.toFixed(0)} ms, fsynced`);
  }

  // 2. Restore: a fresh store and fresh Managers (one engine per workspace), as after a restart.
  await using store = await FileStore.open({ directory: dir });
  for (const type of [Deployment, Environment, Resource]) store.registerEntityType(type);
  console.log("\nrestored into fresh Managers:");
  const engines = new Map<string, Repos>();
  let totalMs = 0;
  for (const ws of WORKSPACES) {
    const { manager, repos } = makeEngine(store);
    const r = await manager.restore(ws);
    engines.set(ws, repos);
    totalMs += r.durationMs;
    console.log(
      `  ${ws.padEnd(8)} ${String(r.loaded).padStart(5)} keys: ${String(repos.deployments.size).padStart(4)} deployments, ` +
        `${String(repos.environments.size).padStart(3)} environments, ${String(repos.resources.size).padStart(4)} resources, ` +
        `${String(r.unset).padStart(4)} deleted  (${r.durationMs.toFixed(1)} ms)`,
    );
  }
  console.log(
    `\nrestore took ${totalMs.toFixed(1)} ms in all; state digest ${digest(engines)} (the same on every run)`,
  );
  const sample = engines.get("acme")?.deployments.get("dep-42");
  if (sample) console.log(`sample: acme deployment dep-42 = ${JSON.stringify(sample)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
