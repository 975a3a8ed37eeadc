/**
 * What a WebSocket still holds for its client, by message: the part of `ws.bufferedAmount` that waits *behind* the
 * message being written. A client that stopped reading lets that grow without end. One that reads holds at most the
 * message being written and what was sent while it was: a single message larger than any bound, read at full speed,
 * is still being written when the next one is sent, and is no backlog, though `bufferedAmount` counts it whole.
 *
 * `ws.bufferedAmount` is what the socket has not handed to the kernel yet, oldest bytes first, so the messages still
 * (partly) unwritten are the last ones sent whose frames cover it: `trim` forgets the older ones, and what follows the
 * oldest one left is the backlog. Sizes are whole frames as ws writes them (unmasked server frames, no compression).
 *
 * @example
 * backlog.trim(ws.bufferedAmount);
 * if (backlog.bytesBehindOldest >= maxBufferedBytes) return closeSlowConsumer();
 * ws.send(text);
 * backlog.add(frameBytes(Buffer.byteLength(text)));
 */
export class WriteBacklog {
  #sizes: number[] = [];
  /** Index of the oldest message in #sizes (shifting an array per message would cost O(n) each). */
  #head = 0;
  #bytes = 0;

  /** A frame of `bytes` was handed to the socket. */
  add(bytes: number): void {
    this.#sizes.push(bytes);
    this.#bytes += bytes;
  }

  /** Forgets the messages written out: the oldest ones while the younger ones still cover `bufferedBytes`. */
  trim(bufferedBytes: number): void {
    while (this.#head < this.#sizes.length && this.#bytes - (this.#sizes[this.#head] as number) >= bufferedBytes) {
      this.#bytes -= this.#sizes[this.#head] as number;
      this.#head++;
    }
    if (this.#head === this.#sizes.length) {
      this.#sizes = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#sizes.length) {
      this.#sizes = this.#sizes.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Bytes of the messages queued behind the oldest one still unwritten (0 when at most one is). */
  get bytesBehindOldest(): number {
    if (this.#head >= this.#sizes.length) return 0;
    return this.#bytes - (this.#sizes[this.#head] as number);
  }
}

/** Bytes of a server's (unmasked, uncompressed) WebSocket frame carrying `payloadBytes` (RFC 6455 5.2). */
export function frameBytes(payloadBytes: number): number {
  if (payloadBytes < 126) return payloadBytes + 2;
  return payloadBytes < 65536 ? payloadBytes + 4 : payloadBytes + 10;
}
