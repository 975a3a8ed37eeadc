/**
 * A guard in front of aedes that reads only the fixed headers as bytes pass ([MQTT-2.2]: the packet type, then the
 * remaining length, a 1-4 byte varint) and cuts the connection at the first one it refuses, before aedes parses it:
 * - a packet announcing more than `maxPacketBytes`, before its body arrives. The MQTT parser buffers a whole packet
 *   before anyone sees it, so a device announcing a 256 MB PUBLISH would make the broker hold 256 MB;
 * - a remaining length of more than four bytes ([MQTT-2.2.3]);
 * - a packet type only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP, [MQTT-2.2.1]). aedes drops such a client
 *   without an error, so its session read as a plain disconnect (or its last will) rather than a protocol violation;
 * - a reserved packet type, 0 or 15 ([MQTT-2.2.1]: "Forbidden"; 15 is AUTH in MQTT 5 only, which aedes does not
 *   speak). aedes' parser refused it with an error of the session, which no counter saw.
 */
import type { Duplex } from "node:stream";
import { BridgeError } from "../../errors/index.ts";
import { BrokerErrorCode } from "../errors.ts";
import { MqttPacketScanner } from "../mqtt-packet-scanner.ts";

/**
 * Why the guard refused a packet; `text-frame` is the MQTT WebSocket's own refusal of a text frame, whatever it holds
 * (websocket-stream.ts), counted and logged as the guard's refusals are.
 */
export type PacketRefusal = "too-large" | "malformed-length" | "server-only" | "reserved-type" | "text-frame";

/** The packet types only a server sends, by type number ([MQTT-2.2.1]); the others are undefined. */
const SERVER_ONLY_PACKET_NAMES: Readonly<Partial<Record<number, string>>> = {
  2: "CONNACK",
  9: "SUBACK",
  11: "UNSUBACK",
  13: "PINGRESP",
};

/** One bit per packet type only a server sends: the check on every packet is a shift and a mask. */
const SERVER_ONLY_TYPES = (1 << 2) | (1 << 9) | (1 << 11) | (1 << 13);

/** The reserved packet types, 0 and 15 ([MQTT-2.2.1]), one bit each. */
const RESERVED_TYPES = (1 << 0) | (1 << 15);

/** Every type a client may not send: one check on every packet, the refusal's kind read only once refused. */
const REFUSED_CLIENT_TYPES = SERVER_ONLY_TYPES | RESERVED_TYPES;

/**
 * Whose packets a tracker reads: a client's are refused when of a type only a server sends; the broker's own writes
 * (tracked for framing in websocket-stream.ts) are full of them.
 */
export type PacketSource = "client" | "server";

/**
 * Tracks MQTT packet boundaries across chunks, and refuses a packet too large or with a malformed length, and a
 * client's packet of a type only a server sends or of a reserved type.
 */
export class PacketSizeTracker {
  readonly #scanner = new MqttPacketScanner();
  #refusal: PacketRefusal | undefined;

  constructor(
    private readonly maxPacketBytes: number,
    private readonly source: PacketSource,
  ) {}

  /** True between packets: every packet fed so far is complete. */
  get atPacketBoundary(): boolean {
    return this.#scanner.atPacketBoundary;
  }

  /** Why `feed` refused a packet; undefined while none was refused. */
  get refusal(): PacketRefusal | undefined {
    return this.#refusal;
  }

  /** The name of the refused packet's type where it was refused for its type (`server-only`, `reserved-type`). */
  get refusedPacketName(): string | undefined {
    if (this.#refusal === "server-only") return SERVER_ONLY_PACKET_NAMES[this.#scanner.packetType];
    if (this.#refusal === "reserved-type") return `reserved type ${this.#scanner.packetType}`;
    return undefined;
  }

  /** Feeds the next chunk; false as soon as a packet is refused (see `refusal`). */
  feed(chunk: Uint8Array): boolean {
    const scanner = this.#scanner;
    let i = 0;
    while (i < chunk.length) {
      i = scanner.scan(chunk, i);
      if (!scanner.headerRead) continue;
      // [MQTT-2.2.3] at most four length bytes.
      if (scanner.lengthMalformed) this.#refusal = "malformed-length";
      else if (scanner.remainingLength > this.maxPacketBytes) this.#refusal = "too-large";
      else if (this.source === "client" && (REFUSED_CLIENT_TYPES >> scanner.packetType) & 1) {
        this.#refusal = (SERVER_ONLY_TYPES >> scanner.packetType) & 1 ? "server-only" : "reserved-type";
      } else continue;
      return false;
    }
    return true;
  }
}

/**
 * True for the error a guarded stream was destroyed with (below): the broker counted and logged that cut already
 * (packet-refusals.ts), so the error aedes then reports for the connection needs no line of its own.
 */
export function isPacketGuardCut(err: unknown): boolean {
  return (
    err instanceof BridgeError &&
    (err.code === BrokerErrorCode.packetTooLarge || err.code === BrokerErrorCode.protocolViolation)
  );
}

/** The error the guarded stream is destroyed with, which says why (a WebSocket's close code follows from it). */
function refusalError(tracker: PacketSizeTracker, maxPacketBytes: number): BridgeError {
  if (tracker.refusal === "too-large") {
    return new BridgeError(BrokerErrorCode.packetTooLarge, `MQTT packet over ${maxPacketBytes} bytes`);
  }
  if (tracker.refusal === "malformed-length") {
    return new BridgeError(
      BrokerErrorCode.protocolViolation,
      "malformed MQTT remaining length: more than four bytes [MQTT-2.2.3]",
    );
  }
  if (tracker.refusal === "reserved-type") {
    return new BridgeError(
      BrokerErrorCode.protocolViolation,
      `a client sent a packet of ${tracker.refusedPacketName}, which MQTT forbids [MQTT-2.2.1]`,
    );
  }
  return new BridgeError(
    BrokerErrorCode.protocolViolation,
    `a client sent ${tracker.refusedPacketName}, a packet only a server sends [MQTT-2.2.1]`,
  );
}

/**
 * Guards `stream` (a socket or WebSocket stream) in place: aedes pulls bytes with `stream.read()` when the stream is
 * readable, so the guard checks each chunk as aedes takes it, and destroys the connection, calling `onRefused` with
 * the reason and (for a type refused) the packet's name, when it refuses a packet. No extra stream sits in the data
 * path (a wrapping Duplex cost about as much CPU per message as the rest of the broker's own work). The stream is
 * destroyed with an error that says why (BRIDGE_ERR_PACKET_TOO_LARGE, or BRIDGE_ERR_PROTOCOL_VIOLATION), so a
 * WebSocket closes with the code for it (websocket-close-code.ts: 1009 message too big, 1008 policy violation).
 */
export function guardPacketSize<S extends Duplex>(
  stream: S,
  maxPacketBytes: number,
  onRefused: (stream: S, refusal: PacketRefusal, packet: string | undefined) => void,
): S {
  const tracker = new PacketSizeTracker(maxPacketBytes, "client");
  // `call` rather than `bind`: one bound function less per connection.
  const read = stream.read;
  stream.read = (size?: number) => {
    const chunk: unknown = read.call(stream, size);
    if (chunk instanceof Uint8Array && !tracker.feed(chunk)) {
      onRefused(stream, tracker.refusal ?? "too-large", tracker.refusedPacketName);
      stream.destroy(refusalError(tracker, maxPacketBytes));
      return null;
    }
    return chunk;
  };
  return stream;
}
