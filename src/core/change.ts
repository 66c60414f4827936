/**
 * The change model (docs/concepts.md, "Changes"): a change sets or unsets one
 * entity, keyed by (namespace, entityType, entityId).
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { ValidationError } from "./errors.js";
import { validateEntityId, validateEntityType, validateNamespace } from "./validation.js";

/** What a change does to its entity. */
export const ChangeType = {
  /** The entity is created or replaced by `entity`. */
  Set: "set",
  /** The entity is deleted; the change is a tombstone and carries no entity. */
  Unset: "unset",
} as const;
export type ChangeType = (typeof ChangeType)[keyof typeof ChangeType];

/** The fields every change has. */
export interface ChangeBase {
  /** The namespace (a workspace, a tenant…) the entity lives in. */
  readonly namespace: string;
  /** The entity's type name, e.g. `"deployment"`. */
  readonly entityType: string;
  /** The entity's id, unique within namespace and type. */
  readonly entityId: string;
  /** When the change happened. Defaults to the store's clock at save time. */
  readonly timestamp: Date;
}

/** A change that creates or replaces an entity. */
export interface SetChange<T = unknown> extends ChangeBase {
  readonly changeType: "set";
  readonly entity: T;
}

/** A change that deletes an entity (a tombstone). */
export interface UnsetChange extends ChangeBase {
  readonly changeType: "unset";
  readonly entity?: undefined;
}

/** One change to one entity. */
export type Change<T = unknown> = SetChange<T> | UnsetChange;

/** A list of changes. */
export type Changes<T = unknown> = readonly Change<T>[];

/** A change as given to `save`: the timestamp may be left out. */
export type ChangeInput<T = unknown> =
  | (Omit<SetChange<T>, "timestamp"> & { readonly timestamp?: Date | undefined })
  | (Omit<UnsetChange, "timestamp"> & { readonly timestamp?: Date | undefined });

/** The key of a change, as one string: unique per (namespace, entityType, entityId). */
export function changeKey(change: Pick<ChangeBase, "entityType" | "entityId">): string {
  // entityType cannot contain "/", so this is collision-free within a namespace.
  return `${change.entityType}/${change.entityId}`;
}

/** Only the live entities of a loaded namespace: drops `unset` tombstones. */
export function liveChanges<T>(changes: Changes<T>): SetChange<T>[] {
  return changes.filter((c): c is SetChange<T> => c.changeType === ChangeType.Set);
}

/**
 * Describes an entity type: its name, how to get an entity's id and,
 * optionally, a Standard Schema (zod, valibot, arktype…) that validates
 * entities before they are saved and after they are loaded.
 */
export interface EntityType<T = unknown, Name extends string = string> {
  /** The type name stored with every change. */
  readonly name: Name;
  /** Extracts the entity's id. */
  readonly id: (entity: T) => string;
  /** Validates (and may transform) entities. Must validate synchronously. */
  readonly schema?: StandardSchemaV1<unknown, T> | undefined;
}

/** Options of {@link defineEntityType}. */
export interface EntityTypeOptions<T> {
  /** Extracts the entity's id. @default `entity.id` */
  id?: (entity: T) => string;
  /** A Standard Schema that validates entities. */
  schema?: StandardSchemaV1<unknown, T>;
}

/**
 * Defines an entity type.
 * @example
 * const Deployment = defineEntityType<Deployment>("deployment");          // id = entity.id
 * const Env = defineEntityType("environment", { schema: zodEnvSchema });  // validated
 */
export function defineEntityType<T = unknown, const Name extends string = string>(
  name: Name,
  options: EntityTypeOptions<T> = {},
): EntityType<T, Name> {
  validateEntityType(name);
  const id =
    options.id ??
    ((entity: T) => {
      const value = (entity as { id?: unknown } | null)?.id;
      if (typeof value !== "string") {
        throw new ValidationError(`${name}.id`, "entity has no string `id`; pass an `id` function to defineEntityType");
      }
      return value;
    });
  return { name, id, schema: options.schema };
}

/**
 * Validates a value with an entity type's schema, if it has one.
 * @returns the schema's output (or the value itself without a schema)
 * @throws ValidationError naming the type and the schema's issues
 */
export function validateWithSchema<T>(type: Pick<EntityType<T>, "name" | "schema">, value: unknown): T {
  if (!type.schema) return value as T;
  const result = type.schema["~standard"].validate(value);
  if (result instanceof Promise) {
    throw new ValidationError(type.name, "the schema validates asynchronously; statelog needs a synchronous schema");
  }
  if (result.issues) {
    const detail = result.issues
      .map((i) => `${i.path?.map((p) => (typeof p === "object" ? p.key : p)).join(".") || "(root)"}: ${i.message}`)
      .join("; ");
    throw new ValidationError(type.name, `entity failed its schema: ${detail}`, { issues: result.issues });
  }
  return result.value;
}

/** Per-change options of {@link ChangesBuilder}. */
export interface ChangeOptions {
  /** When the change happened. @default the store's clock at save time */
  timestamp?: Date;
}

/**
 * Builds a list of changes for one namespace.
 * @example
 * const changes = new ChangesBuilder("workspace-1")
 *   .set(Deployment, { id: "d1", name: "API" })
 *   .set("environment", "e1", { id: "e1", name: "Prod" })
 *   .unset(Deployment, "d0")
 *   .build();
 */
export class ChangesBuilder {
  readonly #namespace: string;
  readonly #changes: ChangeInput[] = [];

  constructor(namespace: string) {
    validateNamespace(namespace);
    this.#namespace = namespace;
  }

  /** Sets an entity of a defined type (its id comes from the type). */
  set<T>(type: EntityType<T>, entity: T, options?: ChangeOptions): this;
  /** Sets an entity by type name and id. */
  set(entityType: string, entityId: string, entity: unknown, options?: ChangeOptions): this;
  set(...args: unknown[]): this {
    let entityType: string;
    let entityId: string;
    let entity: unknown;
    let options: ChangeOptions | undefined;
    if (typeof args[0] === "string") {
      [entityType, entityId, entity, options] = args as [string, string, unknown, ChangeOptions?];
    } else {
      const type = args[0] as EntityType;
      entity = validateWithSchema(type, args[1]);
      entityType = type.name;
      entityId = type.id(entity);
      options = args[2] as ChangeOptions | undefined;
    }
    validateEntityType(entityType);
    validateEntityId(entityId);
    this.#changes.push({
      namespace: this.#namespace,
      changeType: ChangeType.Set,
      entityType,
      entityId,
      entity,
      timestamp: options?.timestamp,
    });
    return this;
  }

  /** Deletes an entity: records an `unset` tombstone. */
  unset<T>(type: EntityType<T> | string, entityId: string, options?: ChangeOptions): this {
    const entityType = typeof type === "string" ? type : type.name;
    validateEntityType(entityType);
    validateEntityId(entityId);
    this.#changes.push({
      namespace: this.#namespace,
      changeType: ChangeType.Unset,
      entityType,
      entityId,
      timestamp: options?.timestamp,
    });
    return this;
  }

  /** Alias of {@link set}, for a new entity. */
  create<T>(type: EntityType<T>, entity: T, options?: ChangeOptions): this {
    return this.set(type, entity, options);
  }

  /** Alias of {@link set}, for an existing entity. */
  update<T>(type: EntityType<T>, entity: T, options?: ChangeOptions): this {
    return this.set(type, entity, options);
  }

  /** Alias of {@link unset}: a delete (a tombstone). */
  delete<T>(type: EntityType<T> | string, entityId: string, options?: ChangeOptions): this {
    return this.unset(type, entityId, options);
  }

  /** The changes built so far, in order (a copy). */
  build(): ChangeInput[] {
    return this.#changes.slice();
  }
}
