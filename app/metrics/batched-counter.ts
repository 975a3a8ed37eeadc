/**
 * A prom-client counter whose increments on the message path are plain number additions. prom-client hashes the
 * label object on every `inc` (a sorted key walk and a string build), which on the bridge's up path ran several
 * times per message; here each label combination gets one slot, found through two map lookups without building a
 * key, and the sums reach prom-client in `collect()`, which it runs at every scrape (and every `get()`). A scrape
 * therefore sees every increment made before it, as with a plain counter.
 */
import { Counter, type Registry } from "prom-client";

/** Options of `BatchedCounter`: as prom-client's, with at most two label names. */
export interface BatchedCounterOptions {
  name: string;
  help: string;
  /** Zero, one or two label names; `inc` takes their values in this order. */
  labelNames?: readonly [] | readonly [string] | readonly [string, string];
  registers: Registry[];
}

interface Slot {
  labels: Record<string, string>;
  pending: number;
}

export class BatchedCounter {
  /** The prom-client counter the sums are published to. */
  readonly counter: Counter<string>;
  readonly #labelNames: readonly string[];
  /** Slots by first label value, then second ("" where a label is absent). Bounded by the labels' value sets. */
  readonly #slots = new Map<string, Map<string, Slot>>();

  constructor(options: BatchedCounterOptions) {
    const labelNames = options.labelNames ?? [];
    this.#labelNames = labelNames;
    const flush = (): void => this.flush();
    this.counter = new Counter({
      name: options.name,
      help: options.help,
      labelNames: [...labelNames],
      registers: options.registers,
      collect() {
        flush();
      },
    });
  }

  /**
   * Adds `by` (default 1) for the given label values (in `labelNames` order; omitted when the counter has none).
   *
   * @example
   * const messagesIn = new BatchedCounter({ name: "x_total", help: "x", labelNames: ["channel", "codec"], registers });
   * messagesIn.inc("telemetry", "cbor");
   */
  inc(first = "", second = "", by = 1): void {
    let inner = this.#slots.get(first);
    if (inner === undefined) {
      inner = new Map();
      this.#slots.set(first, inner);
    }
    let slot = inner.get(second);
    if (slot === undefined) {
      const labels: Record<string, string> = {};
      const [a, b] = this.#labelNames;
      if (a !== undefined) labels[a] = first;
      if (b !== undefined) labels[b] = second;
      slot = { labels, pending: 0 };
      inner.set(second, slot);
    }
    slot.pending += by;
  }

  /** Publishes the pending sums to prom-client (prom-client calls this before it reads the counter). */
  flush(): void {
    for (const inner of this.#slots.values()) {
      for (const slot of inner.values()) {
        if (slot.pending === 0) continue;
        const by = slot.pending;
        slot.pending = 0;
        if (this.#labelNames.length === 0) this.counter.inc(by);
        else this.counter.inc(slot.labels, by);
      }
    }
  }
}
