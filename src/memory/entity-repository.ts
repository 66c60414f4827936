/** `MapEntityRepository`: the simplest in-memory entity repository, a `Map` by id. */
import type { EntityRepository, SetChange } from "../index.js";

/**
 * A repository that keeps entities in a `Map` by id: the simplest
 * in-memory state a service can restore into.
 */
export class MapEntityRepository<T = unknown> implements EntityRepository<T> {
  /** The entities by id. */
  readonly entities = new Map<string, T>();

  set(entity: T, change: SetChange<T>): void {
    this.entities.set(change.entityId, entity);
  }

  unset(entityId: string): void {
    this.entities.delete(entityId);
  }

  get(id: string): T | undefined {
    return this.entities.get(id);
  }

  get size(): number {
    return this.entities.size;
  }

  values(): IterableIterator<T> {
    return this.entities.values();
  }
}
