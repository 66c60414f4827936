/**
 * The Manager: restores namespaces from a store into repositories
 * and persists new changes.
 */
import { type ApplyResult, applyChanges, type EntityRepository, type EntityRepositoryRegistration } from "./apply.js";
import type { ChangeInput, EntityType } from "./change.js";
import { ConfigurationError, throwIfAborted } from "./errors.js";
import { Follower, type FollowOptions } from "./follower.js";
import type { CallOptions, Store } from "./store.js";
import { validateEntityType } from "./validation.js";

/** What a restore did. */
export interface RestoreResult extends ApplyResult {
  readonly namespace: string;
  /** Changes the store returned (one per key, tombstones included). */
  readonly loaded: number;
  /** Wall-clock time of load plus apply, in milliseconds. */
  readonly durationMs: number;
}

/** Restores namespaces into repositories and persists changes. Build one with {@link ManagerBuilder}. */
export class Manager {
  /** @internal use {@link ManagerBuilder} */
  constructor(
    readonly store: Store,
    private readonly registry: ReadonlyMap<string, EntityRepositoryRegistration>,
  ) {}

  /**
   * Loads the current state of `namespace` (one change per key, as every
   * `Store.load` returns it) and applies it to the repositories
   * (tombstones delete). Checks every entity type first and
   * applies nothing when one has no repository. Restoring twice gives the
   * same state.
   */
  async restore(namespace: string, options?: CallOptions): Promise<RestoreResult> {
    const started = performance.now();
    const changes = await this.store.load(namespace, options);
    throwIfAborted(options?.signal);
    // A store's load returns one change per key already: no second de-duplication.
    const result = await applyChanges(changes, this.registry, { unique: true });
    return { namespace, loaded: changes.length, ...result, durationMs: performance.now() - started };
  }

  /**
   * Follows `namespace` through the store's change feed: applies its
   * current state (resolving then), then keeps the repositories current
   * with every later change, from this process or any other.
   * @throws UnsupportedError when the store cannot watch; the errors of the initial part
   */
  follow(namespace: string, options?: FollowOptions): Promise<Follower> {
    return Follower.start(this.store, this.registry, namespace, options);
  }

  /** Saves changes to the store (see {@link Store.save}). */
  persist(changes: readonly ChangeInput[], options?: CallOptions): Promise<void> {
    return this.store.save(changes, options);
  }

  /** The registered entity type names. */
  get entityTypes(): string[] {
    return [...this.registry.keys()];
  }
}

/**
 * Builds a {@link Manager}.
 * @example
 * const manager = new ManagerBuilder()
 *   .withStore(store)
 *   .registerRepository(Deployment, deployments)
 *   .registerRepository("environment", environments)
 *   .build();
 */
export class ManagerBuilder {
  #store: Store | undefined;
  readonly #registry = new Map<string, EntityRepositoryRegistration>();

  /**
   * The store to load from and save to. Required.
   * @throws ConfigurationError for a value that is not a store
   */
  withStore(store: Store): this {
    const missing = missingMethods(store, ["load", "save"]);
    if (missing !== undefined) throw new ConfigurationError(`ManagerBuilder.withStore(): not a store (${missing})`);
    this.#store = store;
    return this;
  }

  /**
   * Registers the repository of an entity type. With an {@link EntityType}
   * that has a schema, restored entities are validated (and transformed)
   * by it before anything is applied.
   * @throws ConfigurationError for a type registered twice, a repository
   * without `set` and `unset` methods or a schema that is not a Standard
   * Schema; InvalidNameError for a bad type name
   */
  registerRepository<T>(type: EntityType<T> | string, repository: EntityRepository<NoInfer<T>>): this {
    const entityType = typeof type === "string" ? { name: type, schema: undefined } : type;
    validateEntityType(entityType?.name);
    const missing = missingMethods(repository, ["set", "unset"]);
    if (missing !== undefined) {
      throw new ConfigurationError(
        `the repository registered for entity type ${JSON.stringify(entityType.name)} is not one (${missing})`,
      );
    }
    const schema: unknown = entityType.schema;
    if (
      schema !== undefined &&
      typeof (schema as { "~standard"?: { validate?: unknown } })["~standard"]?.validate !== "function"
    ) {
      throw new ConfigurationError(
        `the schema of entity type ${JSON.stringify(entityType.name)} is not a Standard Schema (no ~standard.validate)`,
      );
    }
    if (this.#registry.has(entityType.name)) {
      throw new ConfigurationError(
        `a repository for entity type ${JSON.stringify(entityType.name)} is already registered`,
      );
    }
    this.#registry.set(entityType.name, { type: entityType, repository: repository as EntityRepository });
    return this;
  }

  /** @throws ConfigurationError without a store */
  build(): Manager {
    if (!this.#store) throw new ConfigurationError("ManagerBuilder.build(): no store; call withStore(store) first");
    return new Manager(this.#store, new Map(this.#registry));
  }
}

/** What of `methods` `value` lacks, said for an error message; undefined if it has them all. */
function missingMethods(value: unknown, methods: readonly string[]): string | undefined {
  if (typeof value !== "object" || value === null) return `got ${value === null ? "null" : typeof value}`;
  const missing = methods.filter((m) => typeof (value as Record<string, unknown>)[m] !== "function");
  return missing.length === 0 ? undefined : `no ${missing.join(" or ")} method`;
}
