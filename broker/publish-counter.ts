/**
 * Counts the MQTT PUBLISH packets (or packets of every kind) that start in a byte stream, chunk by chunk, and finds
 * where to cut a chunk so that no more than a given number of them reach the parser ([MQTT-2.2] fixed header: the
 * packet type in the first byte's high nibble, 3 for PUBLISH; [MQTT-2.2.3] the remaining length, a 1-4 byte varint).
 * Only headers are read; bodies are skipped.
 */

const PUBLISH = 3;

export class PublishCounter {
  private state: "type" | "length" | "body" = "type";
  /** The packet being read counted (a PUBLISH, or any packet with `everyPacket`) when its first byte was taken. */
  private inCounted = false;
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private bodyLeft = 0;

  /**
   * The offset in `chunk` where the PUBLISH after the first `allowance` starts (a PUBLISH already begun in an earlier
   * chunk counts as one of them), or `chunk.length` when there are no more. The count moves up to that offset only:
   * the bytes from there are fed again, with the next chunk. With `everyPacket`, packets of every kind count.
   */
  cut(chunk: Uint8Array, allowance: number, everyPacket = false): number {
    let counted = this.state !== "type" && this.inCounted ? 1 : 0;
    let i = 0;
    while (i < chunk.length) {
      if (this.state === "type") {
        this.inCounted = everyPacket || chunk[i] >> 4 === PUBLISH;
        if (this.inCounted) {
          if (counted >= allowance) return i;
          counted++;
        }
        i++;
        this.state = "length";
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else if (this.state === "length") {
        const byte = chunk[i++];
        this.length += (byte & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes++;
        // A fifth length byte is malformed; the packet size guard cuts the connection for it.
        if (byte & 0x80 && this.lengthBytes < 4) continue;
        this.bodyLeft = this.length;
        this.state = this.bodyLeft === 0 ? "type" : "body";
      } else {
        const skip = Math.min(this.bodyLeft, chunk.length - i);
        i += skip;
        this.bodyLeft -= skip;
        if (this.bodyLeft === 0) this.state = "type";
      }
    }
    return chunk.length;
  }
}
