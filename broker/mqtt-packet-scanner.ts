/**
 * Finds MQTT packet boundaries in a byte stream, chunk by chunk, reading only fixed headers ([MQTT-2.2]: one byte of
 * packet type and flags, then the remaining length, a 1-4 byte varint, [MQTT-2.2.3]) and skipping bodies. The size
 * guard and the read pacer's PUBLISH counter both walk the stream with it, on every device message: the loop allocates
 * nothing, and each stop leaves the decision (refuse, count, cut) to the caller, who reads the packet's type and length
 * from the fields.
 */
export class MqttPacketScanner {
  #state: "type" | "length" | "body" = "type";
  #packetType = 0;
  #length = 0;
  #multiplier = 1;
  #lengthBytes = 0;
  #bodyLeft = 0;
  #headerRead = false;
  #remainingLength = 0;
  #lengthMalformed = false;

  /** True between packets: the next byte is a packet's first (type) byte, and every packet scanned so far is complete. */
  get atPacketBoundary(): boolean {
    return this.#state === "type";
  }

  /** True when the last `scan` stopped right after a packet's fixed header, which the two fields below describe. */
  get headerRead(): boolean {
    return this.#headerRead;
  }

  /** The type (the first byte's high nibble, [MQTT-2.2.1]) of the packet whose first byte was taken last. */
  get packetType(): number {
    return this.#packetType;
  }

  /** The remaining length of the last packet whose fixed header was read in full. */
  get remainingLength(): number {
    return this.#remainingLength;
  }

  /**
   * True when the last fixed header's fourth length byte still had its continuation bit: malformed ([MQTT-2.2.3] at
   * most four bytes). The scanner takes the four bytes as the whole length and goes on.
   */
  get lengthMalformed(): boolean {
    return this.#lengthMalformed;
  }

  /**
   * Reads `chunk` from `from` (below `chunk.length`) to the next place a caller may act, and returns its offset: right
   * after a packet's fixed header (`headerRead`), right before a packet's first byte (`atPacketBoundary`), or the end of
   * the chunk. Both may hold at once (a packet without body). At a packet boundary it first takes that packet's first
   * byte, so every call moves on by at least one byte.
   */
  scan(chunk: Uint8Array, from: number): number {
    this.#headerRead = false;
    let i = from;
    if (this.#state === "type") {
      this.#packetType = chunk[i] >> 4;
      i++;
      this.#state = "length";
      this.#length = 0;
      this.#multiplier = 1;
      this.#lengthBytes = 0;
    }
    if (this.#state === "length") {
      while (i < chunk.length) {
        const byte = chunk[i++];
        this.#length += (byte & 0x7f) * this.#multiplier;
        this.#multiplier *= 128;
        this.#lengthBytes++;
        if (byte & 0x80 && this.#lengthBytes < 4) continue;
        this.#headerRead = true;
        this.#remainingLength = this.#length;
        this.#lengthMalformed = (byte & 0x80) !== 0;
        this.#bodyLeft = this.#length;
        this.#state = this.#bodyLeft === 0 ? "type" : "body";
        return i;
      }
      return i;
    }
    const skip = Math.min(this.#bodyLeft, chunk.length - i);
    i += skip;
    this.#bodyLeft -= skip;
    if (this.#bodyLeft === 0) this.#state = "type";
    return i;
  }
}
