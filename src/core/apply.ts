/**
 * Applying changes to in-memory repositories (docs/concepts.md, "Apply and
 * the Manager").
 */
import {
  type Change,
  ChangeType,
  changeKey,
  type EntityType,
  type SetChange,
  type UnsetChange,
  validateWithSchema,
} from "./change.js";
import { ApplyError, UnknownEntityTypeError } from "./errors.js";

/** Where the changes of one entity type are applied: the service's in-memory state. */
export interface EntityRepository<T = unknown> {
  /** Creates or replaces the entity. */
  set(entity: T, change: SetChange<T>): void | Promise<void>;
  /** Deletes the entity; deleting one that is not there is not an error. */
  unset(entityId: string, change: UnsetChange): void | Promise<void>;
}

/** A repository with the entity type it serves (and the type's schema, if any). */
export interface EntityRepositoryRegistration {
  readonly type: Pick<EntityType, "name" | "schema">;
  readonly repository: EntityRepository;
}

/** Repositories by entity type name. */
export type EntityRepositoryRegistry = ReadonlyMap<string, EntityRepositoryRegistration>;

/** What an apply did. */
export interface ApplyResult {
  /** Changes applied after de-duplication. */
  readonly applied: number;
  /** Of those, `set` changes. */
  readonly set: number;
  /** Of those, `unset` changes. */
  readonly unset: number;
}

/** Options of {@link applyChanges}. */
export interface ApplyOptions {
  /**
   * The caller guarantees one change per key (namespace, entity type,
   * entity id), as `Store.load` returns: the de-duplication step is
   * skipped. With duplicates in the input, every one of them is applied
   * in input order. @default false
   */
  unique?: boolean;
}

/**
 * De-duplicates by key: per key, the change with the later timestamp wins;
 * on equal timestamps the later one in the input wins. The winners keep
 * their input order.
 */
export function dedupeChanges<C extends Change>(changes: readonly C[]): C[] {
  const winner = new Map<string, number>();
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i] as C;
    const key = `${c.namespace}\u0000${changeKey(c)}`;
    const prev = winner.get(key);
    if (prev === undefined || (changes[prev] as C).timestamp.getTime() <= c.timestamp.getTime()) {
      winner.set(key, i);
    }
  }
  if (winner.size === changes.length) return changes.slice();
  return [...winner.values()].sort((a, b) => a - b).map((i) => changes[i] as C);
}

/**
 * Applies changes to repositories: de-duplicates ({@link dedupeChanges};
 * skipped with `options.unique`, for input known to hold one change per
 * key), then checks that every entity type has a repository and that every
 * entity passes its type's schema, **before applying anything**; then
 * applies in input order.
 * @throws UnknownEntityTypeError naming the first type without a repository (nothing applied)
 * @throws ValidationError when an entity fails its schema (nothing applied)
 * @throws ApplyError naming type and id when a repository throws (`cause` is its error)
 */
export async function applyChanges(
  changes: readonly Change[],
  registry: EntityRepositoryRegistry,
  options?: ApplyOptions,
): Promise<ApplyResult> {
  const winners = options?.unique === true ? changes : dedupeChanges(changes);
  const entities: unknown[] = new Array(winners.length);
  for (let i = 0; i < winners.length; i++) {
    const change = winners[i] as Change;
    const registration = registry.get(change.entityType);
    if (!registration) {
      throw new UnknownEntityTypeError(
        change.entityType,
        `no repository is registered for it (registered: ${[...registry.keys()].join(", ") || "none"}); nothing was applied`,
      );
    }
    if (change.changeType === ChangeType.Set) entities[i] = validateWithSchema(registration.type, change.entity);
  }
  let set = 0;
  let unset = 0;
  for (let i = 0; i < winners.length; i++) {
    const change = winners[i] as Change;
    const { repository } = registry.get(change.entityType) as EntityRepositoryRegistration;
    try {
      if (change.changeType === ChangeType.Set) {
        const entity = entities[i];
        await repository.set(entity, entity === change.entity ? change : { ...change, entity });
        set++;
      } else {
        await repository.unset(change.entityId, change);
        unset++;
      }
    } catch (error) {
      throw new ApplyError(change.entityType, change.entityId, { cause: error });
    }
  }
  return { applied: set + unset, set, unset };
}
