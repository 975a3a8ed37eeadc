/**
 * A size guard in front of aedes. The MQTT parser buffers a whole packet before anyone sees it, so a device
 * announcing a 256 MB PUBLISH would make the broker hold 256 MB. This reads only the fixed headers as bytes pass
 * ([MQTT-2.2.3] remaining length, a 1-4 byte varint) and cuts the connection as soon as a packet announces more than
 * `maxPacketBytes`, before its body arrives.
 */
import type { Duplex } from "node:stream";

/** Tracks MQTT packet boundaries across chunks. */
export class PacketSizeTracker {
  private state: "type" | "length" | "body" = "type";
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private bodyLeft = 0;

  constructor(private readonly maxPacketBytes: number) {}

  /** True between packets: every packet fed so far is complete. */
  get atPacketBoundary(): boolean {
    return this.state === "type";
  }

  /** Feeds the next chunk; false as soon as a packet is too large or its length is malformed. */
  feed(chunk: Uint8Array): boolean {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === "type") {
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
        if (byte & 0x80) {
          // [MQTT-2.2.3] at most four length bytes.
          if (this.lengthBytes >= 4) return false;
          continue;
        }
        if (this.length > this.maxPacketBytes) return false;
        this.bodyLeft = this.length;
        this.state = this.bodyLeft === 0 ? "type" : "body";
      } else {
        const skip = Math.min(this.bodyLeft, chunk.length - i);
        i += skip;
        this.bodyLeft -= skip;
        if (this.bodyLeft === 0) this.state = "type";
      }
    }
    return true;
  }
}

/**
 * Guards `stream` (a socket or WebSocket stream) in place: aedes pulls bytes with `stream.read()` when the stream is
 * readable, so the guard checks each chunk as aedes takes it, and destroys the connection, calling `onTooLarge`, when
 * a packet announces more than `maxPacketBytes`. No extra stream sits in the data path (a wrapping Duplex cost about
 * as much CPU per message as the rest of the broker's own work).
 */
export function guardPacketSize<S extends Duplex>(
  stream: S,
  maxPacketBytes: number,
  onTooLarge: (stream: S) => void,
): S {
  const tracker = new PacketSizeTracker(maxPacketBytes);
  // `call` rather than `bind`: one bound function less per connection.
  const read = stream.read;
  stream.read = (size?: number) => {
    const chunk: unknown = read.call(stream, size);
    if (chunk instanceof Uint8Array && !tracker.feed(chunk)) {
      onTooLarge(stream);
      stream.destroy();
      return null;
    }
    return chunk;
  };
  return stream;
}
