/**
 * A session's granted subscription filters, and the QoS each down topic gets from them. Down frames ask about the
 * same few topics again and again (one per channel), so the answer per topic is kept until the filters change:
 * matching every filter against every frame's topic was about 2% of the bridge's CPU while it streamed answers to
 * 256 devices (docs/benchmarks.md, "Engine through the bridge").
 */
import { filterMatches } from "./acl.ts";

export class SubscriptionTable {
  readonly #filters = new Map<string, 0 | 1>();
  /** Granted QoS by topic, as last computed; cleared whenever a filter is added, changed or removed. */
  readonly #granted = new Map<string, number>();

  /** Filters held. */
  get size(): number {
    return this.#filters.size;
  }

  has(filter: string): boolean {
    return this.#filters.has(filter);
  }

  /** The QoS granted to `filter` itself, or undefined when the session holds no such filter. */
  filterQos(filter: string): 0 | 1 | undefined {
    return this.#filters.get(filter);
  }

  set(filter: string, qos: 0 | 1): void {
    this.#filters.set(filter, qos);
    this.#granted.clear();
  }

  delete(filter: string): void {
    if (this.#filters.delete(filter)) this.#granted.clear();
  }

  /** The highest QoS a matching filter grants `topic`, or -1 when no filter matches it. */
  grantedQos(topic: string): number {
    let granted = this.#granted.get(topic);
    if (granted === undefined) {
      granted = -1;
      for (const [filter, qos] of this.#filters) {
        if (qos > granted && filterMatches(filter, topic)) granted = qos;
      }
      this.#granted.set(topic, granted);
    }
    return granted;
  }
}
