/**
 * The projections the inspector shows: their statuses, read from each
 * target's read-model store, and a history of their lag sampled at an
 * interval for the page's lag chart.
 */
import { messageOf } from "../index.js";
import type { ProjectionStatusRecord } from "../read-models/index.js";
import { statusView } from "./data.js";
import { INSPECTOR_DEFAULTS, type InspectorTarget } from "./options.js";

/** One sample of a projection's lag. */
export interface LagSample {
  /** When it was taken (ms since the epoch). */
  readonly at: number;
  /** Events behind the end of its source, when known. */
  readonly lagEvents: number | undefined;
  /** Its checkpoint (global position of the last event handled). */
  readonly checkpoint: number;
}

/** Samples projection statuses of every target at an interval, keeping the latest ones. */
export class ProjectionSampler {
  /** `<target index>/<projection name>` → samples, oldest first. */
  readonly #samples = new Map<string, LagSample[]>();
  readonly #timer: NodeJS.Timeout | undefined;
  #running = false;
  /** Target index → why its last sampling failed (a target's failure is its own). */
  readonly #errors = new Map<number, string>();

  constructor(
    private readonly targets: readonly InspectorTarget[],
    intervalMs: number,
  ) {
    if (!targets.some((t) => t.readModels)) return;
    this.#timer = setInterval(() => this.#tick(), intervalMs);
    this.#timer.unref();
    this.#tick();
  }

  /** Stops sampling. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /**
   * The projections of target `index` with their current status (read
   * now, and kept as a sample) and their lag samples.
   */
  async projections(index: number) {
    const target = this.targets[index] as InspectorTarget;
    const found = await this.#read(index, target);
    return {
      samplingError: this.#errors.get(index),
      projections: found.map(({ name, record, lagEvents }) => ({
        name,
        status: record ? statusView(record, lagEvents) : undefined,
        samples: this.#samples.get(`${index}/${name}`) ?? [],
      })),
    };
  }

  /** Reads the statuses of a target's projections and records a sample of each. */
  async #read(index: number, target: InspectorTarget) {
    const store = target.readModels;
    if (!store) return [];
    const records = new Map<string, ProjectionStatusRecord | undefined>();
    for (const name of target.projections ?? []) records.set(name, undefined);
    if (typeof store.listProjectionStatuses === "function") {
      for (const r of await store.listProjectionStatuses()) records.set(r.name, r);
    }
    const out: { name: string; record: ProjectionStatusRecord | undefined; lagEvents: number | undefined }[] = [];
    for (const [name, listed] of [...records].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const record = listed ?? (await store.getProjectionStatus(name));
      const lagEvents = record ? this.#lag(target, record) : undefined;
      if (record) this.#record(`${index}/${name}`, { at: Date.now(), lagEvents, checkpoint: record.checkpoint });
      out.push({ name, record, lagEvents });
    }
    return out;
  }

  /** The lag the projector wrote, or (without one) how far its checkpoint is behind the target's event store. */
  #lag(target: InspectorTarget, record: ProjectionStatusRecord): number | undefined {
    if (record.lagEvents !== undefined) return record.lagEvents;
    if (!target.eventStore) return undefined;
    try {
      return Math.max(0, target.eventStore.stats().globalPosition - record.checkpoint);
    } catch {
      return undefined;
    }
  }

  #record(key: string, sample: LagSample): void {
    let list = this.#samples.get(key);
    if (!list) {
      list = [];
      this.#samples.set(key, list);
    }
    list.push(sample);
    if (list.length > INSPECTOR_DEFAULTS.lagSamples) list.splice(0, list.length - INSPECTOR_DEFAULTS.lagSamples);
  }

  #tick(): void {
    if (this.#running) return;
    this.#running = true;
    (async () => {
      // Each target on its own: one that fails leaves the others sampled, and its error on its own page.
      for (const [index, target] of this.targets.entries()) {
        if (!target.readModels) continue;
        try {
          await this.#read(index, target);
          this.#errors.delete(index);
        } catch (error) {
          this.#errors.set(index, messageOf(error));
        }
      }
    })().finally(() => {
      this.#running = false;
    });
  }
}
