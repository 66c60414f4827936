/**
 * Test doubles of the read-model contract for the projector's tests: a
 * Map-based store (with or without `saveWithCheckpoint`) and a durable
 * one (one JSON file per model, written atomically, no atomic checkpoint).
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { VersionConflictError } from "../../src/index.js";
import type {
  Projection,
  ProjectionStatusRecord,
  Query,
  QueryResult,
  ReadModelMetadata,
  ReadModelStore,
  ReadModelWrite,
  StoredReadModel,
} from "../../src/read-models/index.js";

const get = (model: unknown, dotted: string): unknown =>
  dotted
    .split(".")
    .reduce<unknown>((v, k) => (v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined), model);

/** Filter (eq only) / sort / slice, enough for the projector's tests. */
function runQuery<M>(all: StoredReadModel[], q: Query): QueryResult<M> {
  const hits = all.filter((m) => q.filters.every((f) => get(m.model, f.path) === f.value));
  hits.sort((a, b) => {
    for (const s of q.sort) {
      const x = get(a.model, s.path) as number;
      const y = get(b.model, s.path) as number;
      if (x !== y) return (x < y ? -1 : 1) * (s.direction === "desc" ? -1 : 1);
    }
    return a.metadata.id < b.metadata.id ? -1 : 1;
  });
  const offset = q.offset ?? 0;
  return {
    items: hits.slice(offset, q.limit === undefined ? undefined : offset + q.limit) as StoredReadModel<M>[],
    total: hits.length,
  };
}

/** A projection counting the `hit` events of each key `k` (model type `Counter`). */
export const counter: Projection<{ n: number }, { k: string }> = {
  name: "counter",
  modelType: "Counter",
  handles: ["hit"],
  id: (e) => e.data.k,
  evolve: (m) => ({ n: (m?.n ?? 0) + 1 }),
};

/** Counts calls, so tests can see what the projector (or the cache) asked the store. */
export interface CallCounts {
  loads: number;
  saves: number;
}

/** A ReadModelStore in a Map. `atomic`: it has `saveWithCheckpoint`. */
export class MapReadModelStore implements ReadModelStore {
  readonly capabilities;
  readonly models = new Map<string, StoredReadModel>();
  readonly statuses = new Map<string, ProjectionStatusRecord>();
  readonly calls: CallCounts = { loads: 0, saves: 0 };
  /** Throws on the next `n` writes (a failing store). */
  failWrites = 0;
  closed = false;

  constructor(atomic = false) {
    this.capabilities = { atomicCheckpoint: atomic, indexes: false, durable: false };
    if (!atomic) (this as { saveWithCheckpoint?: unknown }).saveWithCheckpoint = undefined;
  }

  #key(type: string, id: string): string {
    return `${type}\u0000${id}`;
  }

  #check(): void {
    if (this.failWrites > 0) {
      this.failWrites--;
      throw new Error("store write failed");
    }
  }

  async save<M>(
    model: M,
    metadata: ReadModelMetadata,
    options?: { expectedRevision?: number | undefined },
  ): Promise<number> {
    this.#check();
    this.calls.saves++;
    const key = this.#key(metadata.modelType, metadata.id);
    const revision = this.models.get(key)?.revision ?? 0;
    if (options?.expectedRevision !== undefined && options.expectedRevision !== revision) {
      throw new VersionConflictError(options.expectedRevision, revision, "revision");
    }
    this.models.set(key, { model: structuredClone(model), metadata: { ...metadata }, revision: revision + 1 });
    return revision + 1;
  }

  async load<M>(modelType: string, id: string): Promise<StoredReadModel<M> | undefined> {
    this.calls.loads++;
    const m = this.models.get(this.#key(modelType, id));
    return m && ({ ...m, model: structuredClone(m.model) } as StoredReadModel<M>);
  }

  async delete(modelType: string, id: string, options?: { expectedRevision?: number }): Promise<boolean> {
    this.#check();
    const key = this.#key(modelType, id);
    const m = this.models.get(key);
    if (options?.expectedRevision !== undefined && options.expectedRevision !== (m?.revision ?? 0)) {
      throw new VersionConflictError(options.expectedRevision, m?.revision ?? 0, "revision");
    }
    return this.models.delete(key);
  }

  async list(modelType: string): Promise<string[]> {
    return [...this.models.values()]
      .filter((m) => m.metadata.modelType === modelType)
      .map((m) => m.metadata.id)
      .sort();
  }

  async query<M>(q: Query): Promise<QueryResult<M>> {
    return runQuery<M>(
      [...this.models.values()].filter((m) => m.metadata.modelType === q.modelType),
      q,
    );
  }

  async updateProjectionStatus(record: ProjectionStatusRecord): Promise<void> {
    this.#check();
    this.statuses.set(record.name, { ...record });
  }

  async getProjectionStatus(name: string): Promise<ProjectionStatusRecord | undefined> {
    return this.statuses.get(name);
  }

  async deleteProjectionStatus(name: string): Promise<boolean> {
    this.#check();
    return this.statuses.delete(name);
  }

  async saveWithCheckpoint(writes: readonly ReadModelWrite[], status: ProjectionStatusRecord): Promise<number[]> {
    this.#check();
    const keyOf = (w: ReadModelWrite) =>
      w.type === "save" ? this.#key(w.metadata.modelType, w.metadata.id) : this.#key(w.modelType, w.id);
    for (const w of writes) {
      const now = this.models.get(keyOf(w))?.revision ?? 0;
      if (w.expectedRevision !== undefined && now !== w.expectedRevision) {
        throw new VersionConflictError(w.expectedRevision, now, "revision");
      }
    }
    const out = writes.map((w) => {
      const key = keyOf(w);
      const now = this.models.get(key)?.revision ?? 0;
      if (w.type === "delete") {
        this.models.delete(key);
        return now;
      }
      const revision = now + 1;
      this.models.set(key, { model: structuredClone(w.model), metadata: { ...w.metadata }, revision });
      return revision;
    });
    this.statuses.set(status.name, { ...status });
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A durable ReadModelStore: one JSON file per model and per status, each written atomically (no atomic checkpoint). */
export class JsonFileReadModelStore implements ReadModelStore {
  readonly capabilities = { atomicCheckpoint: false, indexes: false, durable: true };

  constructor(readonly directory: string) {
    mkdirSync(path.join(directory, "models"), { recursive: true });
    mkdirSync(path.join(directory, "status"), { recursive: true });
  }

  #file(kind: string, ...parts: string[]): string {
    return path.join(this.directory, kind, parts.map((p) => encodeURIComponent(p)).join("."));
  }

  #write(file: string, value: unknown): void {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(value));
    renameSync(tmp, file);
  }

  #read<T>(file: string): T | undefined {
    try {
      return JSON.parse(readFileSync(file, "utf8")) as T;
    } catch {
      return undefined;
    }
  }

  async save<M>(
    model: M,
    metadata: ReadModelMetadata,
    options?: { expectedRevision?: number | undefined },
  ): Promise<number> {
    const file = this.#file("models", metadata.modelType, metadata.id);
    const revision = (await this.load(metadata.modelType, metadata.id))?.revision ?? 0;
    if (options?.expectedRevision !== undefined && options.expectedRevision !== revision) {
      throw new VersionConflictError(options.expectedRevision, revision, "revision");
    }
    this.#write(file, { model, metadata, revision: revision + 1 });
    return revision + 1;
  }

  async load<M>(modelType: string, id: string): Promise<StoredReadModel<M> | undefined> {
    const raw = this.#read<StoredReadModel<M>>(this.#file("models", modelType, id));
    return raw && { ...raw, metadata: { ...raw.metadata, lastUpdated: new Date(raw.metadata.lastUpdated) } };
  }

  async delete(modelType: string, id: string): Promise<boolean> {
    const file = this.#file("models", modelType, id);
    const existed = this.#read(file) !== undefined;
    rmSync(file, { force: true });
    return existed;
  }

  async list(modelType: string): Promise<string[]> {
    const prefix = `${encodeURIComponent(modelType)}.`;
    return readdirSync(path.join(this.directory, "models"))
      .filter((f) => f.startsWith(prefix) && !f.endsWith(".tmp"))
      .map((f) => decodeURIComponent(f.slice(prefix.length)))
      .sort();
  }

  async query<M>(q: Query): Promise<QueryResult<M>> {
    const all = await Promise.all((await this.list(q.modelType)).map((id) => this.load(q.modelType, id)));
    return runQuery<M>(
      all.filter((m): m is StoredReadModel => m !== undefined),
      q,
    );
  }

  async updateProjectionStatus(record: ProjectionStatusRecord): Promise<void> {
    this.#write(this.#file("status", record.name), record);
  }

  async getProjectionStatus(name: string): Promise<ProjectionStatusRecord | undefined> {
    return this.#read<ProjectionStatusRecord>(this.#file("status", name));
  }

  async close(): Promise<void> {}

  async [Symbol.asyncDispose](): Promise<void> {}
}
