/**
 * `QueryBuilder` (a fluent way to write a {@link Query}) and
 * `Pagination.fromQuery` (page numbers of an offset/limit query).
 */
import { ValidationError } from "../index.js";
import { checkQuery } from "./query.js";
import { FilterOperator, type Query, type QueryFilter, type QuerySort, SortDirection } from "./types.js";

/**
 * Builds a {@link Query} over the models of one type:
 *
 * ```
 * new QueryBuilder("OrderSummary").filter("customer.id", "c1").gt("total", 100)
 *   .sortBy("total", "desc").limit(20).build()
 * ```
 */
export class QueryBuilder {
  readonly #modelType: string;
  readonly #filters: QueryFilter[] = [];
  readonly #sort: QuerySort[] = [];
  #limit: number | undefined;
  #offset: number | undefined;
  #after: string | undefined;

  constructor(modelType: string) {
    this.#modelType = modelType;
  }

  /** Keeps models whose value at `path` equals `value` (the classic equality filter; the same as `eq`). */
  filter(path: string, value: unknown): this {
    return this.where(path, FilterOperator.Eq, value);
  }

  /** Keeps models whose value at `path` passes `op` with `value`. */
  where(path: string, op: FilterOperator, value: unknown): this {
    this.#filters.push({ path, op, value });
    return this;
  }

  /** Equal to `value`. */
  eq(path: string, value: unknown): this {
    return this.where(path, FilterOperator.Eq, value);
  }
  /** Missing, or not equal to `value`. */
  ne(path: string, value: unknown): this {
    return this.where(path, FilterOperator.Ne, value);
  }
  /** Greater than `value` (same type). */
  gt(path: string, value: number | string | boolean): this {
    return this.where(path, FilterOperator.Gt, value);
  }
  /** Greater than or equal to `value` (same type). */
  gte(path: string, value: number | string | boolean): this {
    return this.where(path, FilterOperator.Gte, value);
  }
  /** Less than `value` (same type). */
  lt(path: string, value: number | string | boolean): this {
    return this.where(path, FilterOperator.Lt, value);
  }
  /** Less than or equal to `value` (same type). */
  lte(path: string, value: number | string | boolean): this {
    return this.where(path, FilterOperator.Lte, value);
  }
  /** Equal to one of `values` (an array; anything else is refused when the query is checked). */
  in(path: string, values: readonly unknown[]): this {
    // A copy of an array only: spreading a string would make one value per character.
    return this.where(path, FilterOperator.In, Array.isArray(values) ? [...values] : values);
  }
  /** A string starting with `prefix`. */
  prefix(path: string, prefix: string): this {
    return this.where(path, FilterOperator.Prefix, prefix);
  }
  /** Present (`true`, `null` included) or missing (`false`). */
  exists(path: string, exists = true): this {
    return this.where(path, FilterOperator.Exists, exists);
  }

  /** Adds a sort key (after the ones before it). */
  sortBy(path: string, direction: SortDirection = SortDirection.Ascending): this {
    this.#sort.push({ path, direction });
    return this;
  }

  /** Returns at most `n` models. */
  limit(n: number): this {
    this.#limit = n;
    return this;
  }

  /** Skips the first `n` matches (not with `after`). */
  offset(n: number): this {
    this.#offset = n;
    return this;
  }

  /** Continues after a previous page: its `next` cursor. */
  after(cursor: string | undefined): this {
    this.#after = cursor;
    return this;
  }

  /**
   * The query.
   * @throws ValidationError (or InvalidNameError for the model type) when it is not a valid query
   */
  build(): Query {
    const query: Query = {
      modelType: this.#modelType,
      filters: this.#filters.map((f) => ({ ...f })),
      sort: this.#sort.map((s) => ({ ...s })),
      ...(this.#limit !== undefined ? { limit: this.#limit } : {}),
      ...(this.#offset !== undefined ? { offset: this.#offset } : {}),
      ...(this.#after !== undefined ? { after: this.#after } : {}),
    };
    checkQuery(query);
    return query;
  }
}

/** Page numbers of an offset/limit query. */
export interface PageInfo {
  /** The page the offset falls in, from 1: `floor(offset / perPage) + 1`. */
  readonly page: number;
  /** The page size: the query's limit. */
  readonly perPage: number;
  /** How many models match. */
  readonly total: number;
  /** `ceil(total / perPage)`. */
  readonly totalPages: number;
  /** Whether models follow this page: `offset + items < total`, items being `min(limit, total - offset)`. */
  readonly hasMore: boolean;
}

/** Page numbers for offset/limit queries. */
export const Pagination = {
  /**
   * The page numbers of a query with `limit` and `offset` whose filters
   * match `total` models.
   * @throws ValidationError when `limit` is not an integer >= 1, or `offset` or `total` not an integer >= 0
   */
  fromQuery(limit: number, offset: number, total: number): PageInfo {
    const integer = (v: number, min: number, name: string) => {
      if (!Number.isSafeInteger(v) || v < min)
        throw new ValidationError(name, `must be an integer >= ${min}, got ${v}`);
    };
    integer(limit, 1, "limit");
    integer(offset, 0, "offset");
    integer(total, 0, "total");
    const items = Math.max(0, Math.min(limit, total - offset));
    return {
      page: Math.floor(offset / limit) + 1,
      perPage: limit,
      total,
      totalPages: Math.ceil(total / limit),
      hasMore: offset + items < total,
    };
  },
} as const;
