/**
 * A size guard in front of aedes. The MQTT parser buffers a whole packet before anyone sees it, so a device
 * announcing a 256 MB PUBLISH would make the broker hold 256 MB. This reads only the fixed headers as bytes pass
 * ([MQTT-2.2.3] remaining length, a 1-4 byte varint) and cuts the connection as soon as a packet announces more than
 * `maxPacketBytes`, before its body arrives.
 */
import type { Duplex } from "node:stream";
import { BridgeError } from "../../errors/index.ts";
import { BrokerErrorCode } from "../errors.ts";
import { MqttPacketScanner } from "../mqtt-packet-scanner.ts";

/** Tracks MQTT packet boundaries across chunks, and refuses a packet too large or with a malformed length. */
export class PacketSizeTracker {
  readonly #scanner = new MqttPacketScanner();

  constructor(private readonly maxPacketBytes: number) {}

  /** True between packets: every packet fed so far is complete. */
  get atPacketBoundary(): boolean {
    return this.#scanner.atPacketBoundary;
  }

  /** True when `feed` refused a packet for its malformed length rather than for its size. */
  get lengthMalformed(): boolean {
    return this.#scanner.lengthMalformed;
  }

  /** Feeds the next chunk; false as soon as a packet is too large or its length is malformed. */
  feed(chunk: Uint8Array): boolean {
    const scanner = this.#scanner;
    let i = 0;
    while (i < chunk.length) {
      i = scanner.scan(chunk, i);
      // [MQTT-2.2.3] at most four length bytes.
      if (scanner.headerRead && (scanner.lengthMalformed || scanner.remainingLength > this.maxPacketBytes)) {
        return false;
      }
    }
    return true;
  }
}

/**
 * Guards `stream` (a socket or WebSocket stream) in place: aedes pulls bytes with `stream.read()` when the stream is
 * readable, so the guard checks each chunk as aedes takes it, and destroys the connection, calling `onTooLarge`, when
 * a packet announces more than `maxPacketBytes`. No extra stream sits in the data path (a wrapping Duplex cost about
 * as much CPU per message as the rest of the broker's own work). The stream is destroyed with an error that says why
 * (BRIDGE_ERR_PACKET_TOO_LARGE, or a malformed length), so a WebSocket closes with the code for it
 * (websocket-close-code.ts: 1009 message too big, 1008 for the malformed length).
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
      stream.destroy(
        tracker.lengthMalformed
          ? new Error("malformed MQTT remaining length: more than four bytes [MQTT-2.2.3]")
          : new BridgeError(BrokerErrorCode.packetTooLarge, `MQTT packet over ${maxPacketBytes} bytes`),
      );
      return null;
    }
    return chunk;
  };
  return stream;
}
