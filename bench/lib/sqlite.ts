/**
 * The SQLite baseline (better-sqlite3): what a careful engineer would do
 * to keep the same compacted state durably in SQLite.
 *
 * - `journal_mode=WAL`, `synchronous=FULL`: a committed transaction is
 *   fsynced, like a resolved FileStore `save`.
 * - One transaction per batch; one prepared upsert per change
 *   (`INSERT … ON CONFLICT DO UPDATE`) keyed by (namespace, entity type,
 *   entity id).
 * - A delete is an upsert of a **tombstone row** (`change_type = 'unset'`,
 *   `entity` NULL), not a `DELETE`: statelog's `load` returns tombstones
 *   too (the Store contract, docs/concepts.md), so both sides keep and return the same state.
 * - Load: one `SELECT` of the namespace's rows (raw arrays, the fastest
 *   better-sqlite3 read), `JSON.parse` of each entity and a `Date` per
 *   timestamp: the same `Change` objects `FileStore.load` returns. No
 *   `ORDER BY` (statelog returns write order; SQLite is spared the sort).
 */
import Database from "better-sqlite3";
import type { Change, ChangeInput } from "../../src/core/change.js";

/** The upsert SQLite runs per change. */
export const SQLITE_UPSERT = `INSERT INTO changes (namespace, entity_type, entity_id, change_type, entity, ts)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (namespace, entity_type, entity_id) DO UPDATE SET
  change_type = excluded.change_type, entity = excluded.entity, ts = excluded.ts`;

/** A better-sqlite3 database holding one row per key. */
export class SqliteBaseline {
  readonly #db: Database.Database;
  readonly #upsert: Database.Statement;
  readonly #select: Database.Statement;
  readonly #saveBatch: (changes: readonly ChangeInput[]) => void;

  /** Opens (creating if needed) the database file `file`. */
  constructor(file: string) {
    this.#db = new Database(file);
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = FULL");
    this.#db.exec(`CREATE TABLE IF NOT EXISTS changes (
      namespace TEXT NOT NULL,
      entity_type TEXT NOT NULL,
      entity_id TEXT NOT NULL,
      change_type TEXT NOT NULL,
      entity TEXT,
      ts TEXT NOT NULL,
      PRIMARY KEY (namespace, entity_type, entity_id)
    )`);
    this.#upsert = this.#db.prepare(SQLITE_UPSERT);
    this.#select = this.#db
      .prepare("SELECT entity_type, entity_id, change_type, entity, ts FROM changes WHERE namespace = ?")
      .raw(true);
    const upsert = this.#upsert;
    this.#saveBatch = this.#db.transaction((changes: readonly ChangeInput[]) => {
      for (const c of changes) {
        upsert.run(
          c.namespace,
          c.entityType,
          c.entityId,
          c.changeType,
          c.changeType === "set" ? JSON.stringify(c.entity) : null,
          (c.timestamp ?? new Date()).toISOString(),
        );
      }
    });
  }

  /** Saves one batch in one transaction (one fsync of the WAL at commit). */
  save(changes: readonly ChangeInput[]): void {
    this.#saveBatch(changes);
  }

  /** Every row of `namespace` as a `Change`, tombstones included. */
  load(namespace: string): Change[] {
    const rows = this.#select.all(namespace) as [string, string, string, string | null, string][];
    const out: Change[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const [entityType, entityId, changeType, entity, ts] = rows[i]!;
      out[i] =
        changeType === "set"
          ? { namespace, changeType: "set", entityType, entityId, entity: JSON.parse(entity!), timestamp: new Date(ts) }
          : { namespace, changeType: "unset", entityType, entityId, timestamp: new Date(ts) };
    }
    return out;
  }

  close(): void {
    this.#db.close();
  }
}
