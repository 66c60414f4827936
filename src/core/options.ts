/**
 * Checking options: one way for every class of the package (and for
 * backends written outside it) to refuse a bad option. Each check throws a
 * {@link ConfigurationError} that names the class, the option, what it
 * accepts and what it got.
 *
 * @example
 * const check = new OptionChecker("FileStore", options, FILE_STORE_DEFAULTS);
 * const sync = check.oneOf("sync", SyncPolicy);
 * const maxOpen = check.integer("maxOpenNamespaces", { min: 1, infinity: true });
 */
import { ConfigurationError } from "./errors.js";

/** Bounds of a numeric option. */
export interface NumberBounds {
  /** Smallest accepted value. @default no bound */
  min?: number;
  /** Largest accepted value. @default no bound */
  max?: number;
  /** Accept `Infinity` (as "no limit"). @default false */
  infinity?: boolean;
}

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "function") return "a function";
  if (value === null || typeof value !== "object") return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * Reads options given to `owner` over their defaults, checking each one.
 * An option left `undefined` takes its default from `defaults`.
 */
export class OptionChecker<
  O extends object,
  D extends Partial<Record<keyof O, unknown>> = Partial<Record<keyof O, unknown>>,
> {
  readonly #options: Record<string, unknown>;

  constructor(
    /** The class or function the options belong to, for messages: `"FileStore"`. */
    readonly owner: string,
    options: O | undefined,
    readonly defaults: D = {} as D,
  ) {
    if (options !== undefined && (typeof options !== "object" || options === null || Array.isArray(options))) {
      throw new ConfigurationError(`${owner} options must be an object, got ${show(options)}`);
    }
    this.#options = (options ?? {}) as Record<string, unknown>;
  }

  /** The given value of `name`, or its default. */
  value<K extends keyof O & string>(name: K): unknown {
    const v = this.#options[name];
    return v === undefined ? (this.defaults as Record<string, unknown>)[name] : v;
  }

  /** A refusal of option `name`: `"<owner> option <name> must be <accepted>, got <value>"`. */
  error(name: string, accepted: string, value: unknown = this.value(name as keyof O & string)): ConfigurationError {
    return new ConfigurationError(`${this.owner} option ${name} must be ${accepted}, got ${show(value)}`);
  }

  /** Refuses option names that `owner` does not know (a typo, or an old spelling). */
  known(names: readonly string[], renamed: Readonly<Record<string, string>> = {}): this {
    for (const key of Object.keys(this.#options)) {
      if (this.#options[key] === undefined || names.includes(key)) continue;
      const hint = renamed[key] ? `; it is called ${renamed[key]}` : "";
      throw new ConfigurationError(
        `${this.owner} has no option ${key}${hint} (its options: ${[...names].sort().join(", ")})`,
      );
    }
    return this;
  }

  /** A number within `bounds`. */
  number<K extends keyof O & string>(name: K, bounds: NumberBounds = {}): number {
    return this.#number(name, bounds, false);
  }

  /** An integer within `bounds` (or `Infinity` when `bounds.infinity`). */
  integer<K extends keyof O & string>(name: K, bounds: NumberBounds = {}): number {
    return this.#number(name, bounds, true);
  }

  #number(name: string, bounds: NumberBounds, integer: boolean): number {
    const v = this.value(name as keyof O & string);
    const { min, max, infinity = false } = bounds;
    const ok =
      typeof v === "number" &&
      !Number.isNaN(v) &&
      (v === Number.POSITIVE_INFINITY ? infinity : Number.isFinite(v) && (!integer || Number.isInteger(v))) &&
      (min === undefined || v >= min) &&
      (max === undefined || v <= max);
    if (!ok) {
      const range = [min !== undefined ? `>= ${min}` : "", max !== undefined ? `<= ${max}` : ""]
        .filter(Boolean)
        .join(" and ");
      throw this.error(
        name,
        `${integer ? "an integer" : "a finite number"}${range ? ` ${range}` : ""}${infinity ? " (or Infinity)" : ""}`,
        v,
      );
    }
    return v as number;
  }

  /** One of the values of an `as const` table (or a list). */
  oneOf<K extends keyof O & string, V extends string | number | boolean>(
    name: K,
    accepted: Readonly<Record<string, V>> | readonly V[],
  ): V {
    const v = this.value(name);
    const values = (Array.isArray(accepted) ? accepted : Object.values(accepted)) as readonly V[];
    if (!values.includes(v as V)) throw this.error(name, `one of ${values.map(show).join(", ")}`, v);
    return v as V;
  }

  /** `true` or `false`. */
  boolean<K extends keyof O & string>(name: K): boolean {
    const v = this.value(name);
    if (typeof v !== "boolean") throw this.error(name, "true or false", v);
    return v;
  }

  /** A non-empty string. */
  string<K extends keyof O & string>(name: K): string {
    const v = this.value(name);
    if (typeof v !== "string" || v.length === 0) throw this.error(name, "a non-empty string", v);
    return v;
  }

  /** A function (or `undefined` when it has no default). */
  optionalFunction<K extends keyof O & string>(name: K): O[K] | undefined {
    const v = this.value(name);
    if (v !== undefined && typeof v !== "function") throw this.error(name, "a function", v);
    return v as O[K] | undefined;
  }

  /** A value checked by `accept`, which returns `undefined` when the value is fine or what is accepted. */
  custom<K extends keyof O & string, T>(name: K, accept: (value: unknown) => string | undefined): T {
    const v = this.value(name);
    const accepted = accept(v);
    if (accepted !== undefined) throw this.error(name, accepted, v);
    return v as T;
  }
}
