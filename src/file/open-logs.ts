/**
 * The namespaces whose files a store keeps open: at most
 * `maxOpenNamespaces` idle ones; the least recently used idle one is
 * closed (its descriptors released) when a use goes beyond that, and
 * reopens on its next use (docs/file-store.md, "Open files").
 */
import type { NamespaceLog } from "./log.js";

export class OpenLogs {
  /** Logs that may have descriptors open, least recently used first. */
  readonly #open = new Map<string, NamespaceLog>();
  /** Logs of {@link #open} in use now (they are not closed). */
  #inUse = 0;
  #closed = 0;

  /**
   * @param max how many logs may stay open (idle ones beyond it are closed)
   * @param stopped whether the store is closing (it closes every log itself)
   * @param onError errors of closing a log's descriptors
   */
  constructor(
    readonly max: number,
    readonly stopped: () => boolean,
    readonly onError: (error: unknown) => void,
  ) {}

  /** Times a log was closed to stay within {@link max}. */
  get closed(): number {
    return this.#closed;
  }

  /** `log` is in use (a save, load or compaction) until {@link unuse}: it counts as open and is not closed meanwhile. */
  use(log: NamespaceLog): void {
    if (log.users++ === 0) this.#inUse++;
    this.#open.delete(log.namespace);
    this.#open.set(log.namespace, log);
    this.#trim();
  }

  unuse(log: NamespaceLog): void {
    if (--log.users === 0) this.#inUse--;
    this.#trim();
  }

  /**
   * Closes the least recently used idle logs while more than {@link max}
   * are open. A log in use is skipped. A release waits (on the log's
   * mutex) for a write still under way, and a use that starts meanwhile
   * reopens the files after it.
   */
  #trim(): void {
    if (this.#open.size <= this.max || this.#open.size === this.#inUse || this.stopped()) return;
    for (const [namespace, log] of this.#open) {
      if (this.#open.size <= this.max) break;
      if (log.users > 0) continue;
      this.#open.delete(namespace);
      if (!log.isOpen) continue;
      this.#closed++;
      log.release().catch(this.onError);
    }
  }
}
