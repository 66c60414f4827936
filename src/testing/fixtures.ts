/**
 * Names and change builders shared by the conformance suites: unique
 * namespaces (so tests never collide on a shared server), hostile names,
 * and `set`/`unset` shorthands.
 */
import { type Change, type ChangeInput, OptionChecker } from "../index.js";

/** Old spellings of the suites' options, with their names now: the hint of a refused option. */
const CONTRACT_RENAMED_OPTIONS: Readonly<Record<string, string>> = {
  timeout: "timeoutMs",
  modelTimeout: "modelTimeoutMs",
};

/**
 * Refuses option names a suite does not know (a typo, or an old spelling
 * such as `timeout`): a `ConfigurationError` naming the suite, the option
 * and its name now.
 */
export function checkContractOptions<O extends object>(
  suite: string,
  options: O,
  names: readonly (keyof O & string)[],
): void {
  new OptionChecker(suite, options).known(names, CONTRACT_RENAMED_OPTIONS);
}

let counter = 0;
/** A namespace name no other test (or test run on a shared server) uses. */
export function uniqueName(prefix = "ns"): string {
  counter++;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Names that break naive encodings: path tricks, case, wildcards, Unicode, the longest allowed. */
export const HOSTILE_NAMES: readonly string[] = [
  "..",
  ".",
  "...",
  "..\\..\\windows",
  "a b",
  "Abc",
  "abc",
  "ABC",
  "*",
  ">",
  "a.b.c",
  "a..b",
  ".hidden",
  "trailing.",
  "trailing ",
  " leading",
  "%2e%2e",
  "%2F",
  "~user",
  "CON",
  "nul",
  "x".repeat(255),
  "é".repeat(127),
  "日本語",
  "emoji-😀",
  "a:b",
  "a?b#c",
  "quote\"'`",
  "back\\slash",
  "$dollar",
  "=eq",
  "-dash",
  "_",
  "ns.jsonl",
  "z".repeat(200) + "é".repeat(27),
];

/** Entity ids additionally may contain "/". */
export const HOSTILE_IDS: readonly string[] = [
  ...HOSTILE_NAMES,
  "a/b",
  "/",
  "//",
  "../../etc/passwd",
  "a/../b",
  "/leading",
  "trailing/",
];

/** A `set` change. */
export function set(
  namespace: string,
  entityType: string,
  entityId: string,
  entity: unknown,
  timestamp?: Date,
): ChangeInput {
  return { namespace, changeType: "set", entityType, entityId, entity, ...(timestamp ? { timestamp } : {}) };
}

/** An `unset` change (a tombstone). */
export function unset(namespace: string, entityType: string, entityId: string, timestamp?: Date): ChangeInput {
  return { namespace, changeType: "unset", entityType, entityId, ...(timestamp ? { timestamp } : {}) };
}

/** The load result reduced to comparable data: `[type, id, "set", entity]` or `[type, id, "unset"]`. */
export function summary(changes: readonly Change[]): unknown[] {
  return changes.map((c) =>
    c.changeType === "set" ? [c.entityType, c.entityId, "set", c.entity] : [c.entityType, c.entityId, "unset"],
  );
}
