/**
 * Counts the MQTT PUBLISH packets (or packets of every kind) that start in a byte stream, chunk by chunk, and finds
 * where to cut a chunk so that no more than a given number of them reach the parser ([MQTT-2.2] fixed header: the
 * packet type in the first byte's high nibble, 3 for PUBLISH; [MQTT-2.2.3] the remaining length, a 1-4 byte varint).
 * Only headers are read; bodies are skipped.
 */

import { MqttPacketScanner } from "./mqtt-packet-scanner.ts";

const PUBLISH = 3;

export class PublishCounter {
  readonly #scanner = new MqttPacketScanner();
  /** The packet being read counted (a PUBLISH, or any packet with `everyPacket`) when its first byte was taken. */
  #inCounted = false;

  /**
   * The offset in `chunk` where the PUBLISH after the first `allowance` starts (a PUBLISH already begun in an earlier
   * chunk counts as one of them), or `chunk.length` when there are no more. The count moves up to that offset only:
   * the bytes from there are fed again, with the next chunk. With `everyPacket`, packets of every kind count.
   */
  cut(chunk: Uint8Array, allowance: number, everyPacket = false): number {
    const scanner = this.#scanner;
    let counted = !scanner.atPacketBoundary && this.#inCounted ? 1 : 0;
    let i = 0;
    while (i < chunk.length) {
      if (scanner.atPacketBoundary) {
        this.#inCounted = everyPacket || chunk[i] >> 4 === PUBLISH;
        if (this.#inCounted) {
          if (counted >= allowance) return i;
          counted++;
        }
      }
      // A fifth length byte is malformed: the scanner reads on past four, and the packet size guard cuts the connection.
      i = scanner.scan(chunk, i);
    }
    return chunk.length;
  }
}
