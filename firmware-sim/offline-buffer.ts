/**
 * The bounded store-and-forward buffer of a device: what it produces while offline (or faster than the broker
 * acknowledges) waits here. When full, the OLDEST entry is dropped, as constrained firmware with a fixed RAM ring does:
 * the newest readings are the valuable ones.
 */

/** Result of adding to the buffer: the entries that fell out to make room (oldest first). */
export type BufferPush<T> = { status: "stored" } | { status: "dropped-oldest"; dropped: T[] };

/** A fixed-capacity FIFO ring that drops its oldest entries when full. */
export class OfflineBuffer<T> {
  readonly capacity: number;
  #items: (T | undefined)[];
  #head = 0;
  #size = 0;

  /** @param capacity entries kept; 0 keeps nothing (every push drops what it was given). */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new RangeError(`capacity must be a non-negative integer, got ${capacity}`);
    }
    this.capacity = capacity;
    this.#items = new Array(Math.min(capacity, 4));
  }

  get size(): number {
    return this.#size;
  }

  /** Appends `item`; when full the oldest entry is dropped and returned. */
  push(item: T): BufferPush<T> {
    if (this.capacity === 0) return { status: "dropped-oldest", dropped: [item] };
    let dropped: T | undefined;
    let didDrop = false;
    if (this.#size === this.capacity) {
      dropped = this.shift();
      didDrop = true;
    }
    this.#grow();
    this.#items[(this.#head + this.#size) % this.#items.length] = item;
    this.#size++;
    return didDrop ? { status: "dropped-oldest", dropped: [dropped as T] } : { status: "stored" };
  }

  /**
   * Puts `items` (oldest first) back in front of what is buffered, e.g. unacknowledged in-flight messages after a
   * disconnect, which are older than anything buffered. Drops the oldest beyond capacity.
   */
  pushFront(items: readonly T[]): T[] {
    const all = [...items, ...this.drain()];
    const excess = Math.max(0, all.length - this.capacity);
    const dropped = all.slice(0, excess);
    for (const item of all.slice(excess)) this.push(item);
    return dropped;
  }

  /** Removes and returns the oldest entry. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#size--;
    return item;
  }

  /** Removes and returns everything, oldest first (the replay order). */
  drain(): T[] {
    const out: T[] = [];
    for (let item = this.shift(); item !== undefined; item = this.shift()) out.push(item);
    return out;
  }

  // Storage grows on demand, so ten thousand devices with a large capacity do not preallocate it all.
  #grow(): void {
    if (this.#size < this.#items.length) return;
    const next: (T | undefined)[] = new Array(Math.min(this.capacity, Math.max(4, this.#items.length * 2)));
    for (let i = 0; i < this.#size; i++) next[i] = this.#items[(this.#head + i) % this.#items.length];
    this.#items = next;
    this.#head = 0;
  }
}
