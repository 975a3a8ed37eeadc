/**
 * A set of integers stored as sorted closed ranges. Acknowledged telemetry sequence numbers mostly arrive in order, so
 * a device that sent a million messages usually needs one range, not a million entries.
 */
export class SeqRanges {
  // Flat pairs [start0, end0, start1, end1, ...], sorted and non-overlapping.
  #ranges: number[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(n: number): void {
    const r = this.#ranges;
    const last = r.length - 1;
    // Fast path: in-order arrival extends the last range.
    if (last > 0 && r[last] + 1 === n) {
      r[last] = n;
      this.#size++;
      return;
    }
    if (last < 0 || n > r[last] + 1) {
      r.push(n, n);
      this.#size++;
      return;
    }
    if (this.has(n)) return;
    // Out of order (a retransmission acknowledged late): find the first range starting after n, then merge.
    let lo = 0;
    let hi = r.length / 2;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (r[2 * mid] > n) hi = mid;
      else lo = mid + 1;
    }
    const next = lo;
    const joinsPrev = next > 0 && r[2 * next - 1] + 1 === n;
    const joinsNext = next < r.length / 2 && r[2 * next] - 1 === n;
    if (joinsPrev && joinsNext) r.splice(2 * next - 1, 2);
    else if (joinsPrev) r[2 * next - 1] = n;
    else if (joinsNext) r[2 * next] = n;
    else r.splice(2 * next, 0, n, n);
    this.#size++;
  }

  has(n: number): boolean {
    const r = this.#ranges;
    let lo = 0;
    let hi = r.length / 2 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (n < r[2 * mid]) hi = mid - 1;
      else if (n > r[2 * mid + 1]) lo = mid + 1;
      else return true;
    }
    return false;
  }

  *values(): IterableIterator<number> {
    const r = this.#ranges;
    for (let i = 0; i < r.length; i += 2) for (let n = r[i]; n <= r[i + 1]; n++) yield n;
  }
}
