/**
 * CONNECTs waiting behind their own source address, one line per address (`addressKey`), in arrival order. A CONNECT
 * waits here when its address already has as many verifications running or queued as failures left: devices behind
 * one NAT then take their turns one after the other instead of being refused, and never stand in the shared queue
 * where they would hold devices of other addresses. Each line is bounded, so memory stays bounded per address.
 */

/** What a line holds: anything that can tell whether it is still wanted (its connection still open). */
export interface LineEntry {
  stillWanted(): boolean;
}

export class AddressLines<T extends LineEntry> {
  readonly #lines = new Map<string, T[]>();
  #size = 0;

  /** `maxPerAddress`: entries one address's line holds at most. */
  constructor(private readonly maxPerAddress: number) {}

  /** Entries waiting in the address's line. */
  length(key: string): number {
    return this.#lines.get(key)?.length ?? 0;
  }

  /**
   * Puts `entry` at the end of the address's line; false (nothing added) when the line is full even after dropping the
   * entries no longer wanted, which are handed to `dropped` so their callers get an answer.
   */
  join(key: string, entry: T, dropped: (entry: T) => void): boolean {
    let line = this.#lines.get(key);
    if (line !== undefined && line.length >= this.maxPerAddress) {
      // Only when full: a line of connections that went away must not refuse one that is still there.
      for (const gone of this.#removeWhere(key, (e) => !e.stillWanted())) dropped(gone);
      line = this.#lines.get(key);
    }
    if ((line?.length ?? 0) >= this.maxPerAddress) return false;
    if (line === undefined) {
      line = [];
      this.#lines.set(key, line);
    }
    line.push(entry);
    this.#size++;
    return true;
  }

  /** The first entry of the address's line, left in place. */
  head(key: string): T | undefined {
    return this.#lines.get(key)?.[0];
  }

  /** Takes the first entry of the address's line. */
  shift(key: string): T | undefined {
    const line = this.#lines.get(key);
    const entry = line?.shift();
    if (entry === undefined) return undefined;
    this.#size--;
    if (line?.length === 0) this.#lines.delete(key);
    return entry;
  }

  /** Takes every entry of the address's line, in order. */
  drain(key: string): T[] {
    return this.#removeWhere(key, () => true);
  }

  /** Entries waiting in all lines. */
  get size(): number {
    return this.#size;
  }

  #removeWhere(key: string, remove: (entry: T) => boolean): T[] {
    const line = this.#lines.get(key);
    if (line === undefined) return [];
    const removed: T[] = [];
    const kept: T[] = [];
    for (const entry of line) (remove(entry) ? removed : kept).push(entry);
    this.#size -= removed.length;
    if (kept.length === 0) this.#lines.delete(key);
    else this.#lines.set(key, kept);
    return removed;
  }
}
