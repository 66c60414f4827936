/**
 * The caches of decoded events of the file event store's index
 * (`./disk-log.ts`): events by global position, bounded by their
 * estimated size and by their slots.
 */
import type { RecordedEvent } from "../../events/index.js";

/**
 * A direct-mapped cache of events by global position, bounded by the
 * estimated size of what it holds (the estimate of `stats().memoryUsageBytes`:
 * `EVENT_OVERHEAD_BYTES` plus two bytes per byte of the event's line): an
 * event that does not fit is not kept. Each slot holds at most one event,
 * so it never holds more than its slot count either.
 */
export class EventCache {
  readonly #slots: (RecordedEvent | undefined)[];
  readonly #sizes: Float64Array;
  readonly #mask: number;
  #bytes = 0;
  constructor(
    slots: number,
    readonly maxBytes: number,
  ) {
    this.#slots = new Array(slots);
    this.#sizes = new Float64Array(slots);
    this.#mask = slots - 1;
  }
  /** The event at global position `g`, when kept. */
  get(g: number): RecordedEvent | undefined {
    const hit = this.#slots[g & this.#mask];
    return hit !== undefined && hit.globalPosition === g ? hit : undefined;
  }
  /** Keeps `e` (of estimated `size` bytes) in its slot, in place of the event there; not when it does not fit. */
  put(e: RecordedEvent, size: number): void {
    const slot = e.globalPosition & this.#mask;
    let bytes = this.#bytes - (this.#sizes[slot] as number);
    if (bytes + size > this.maxBytes) {
      this.#slots[slot] = undefined;
      this.#sizes[slot] = 0;
    } else {
      this.#slots[slot] = e;
      this.#sizes[slot] = size;
      bytes += size;
    }
    this.#bytes = bytes;
  }
  /** Estimated size of the events kept. */
  get bytes(): number {
    return this.#bytes;
  }
}
