/**
 * A WebSocket client on a raw TCP socket, for what a WebSocket library hides or will not do: it sees every frame the
 * server sends (so a test can count them), it can leave a close frame unanswered, and it can reset its connection.
 * It speaks only what the MQTT over WebSocket tests need: masked binary frames out, unmasked frames in.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import net from "node:net";
import mqttPacket from "mqtt-packet";
import { waitUntil } from "./helpers.ts";

/** [RFC 6455 5.2] opcodes the tests look at. */
export const OPCODE_BINARY = 0x2;
export const OPCODE_CLOSE = 0x8;

export interface ServerFrame {
  opcode: number;
  fin: boolean;
  payload: Buffer;
}

export interface RawWebSocket {
  /** Every frame the server sent, in order. */
  readonly frames: ServerFrame[];
  /** The MQTT packets carried by the binary frames, parsed across frame boundaries as a client must. */
  readonly packets: mqttPacket.Packet[];
  /** Sends `data` in one masked binary frame (a zero mask leaves the payload as it is). */
  send(data: Buffer): void;
  /** Sends a close frame with `code`; the socket stays open until the server closes it. */
  sendClose(code: number): void;
  /** The status code of the server's close frame, once one arrived. */
  closeCode(): number | undefined;
  /** Cuts the connection with a TCP reset, as a device that loses power mid-session or a NAT dropping it does. */
  reset(): void;
  /**
   * Stops reading what the server sends (it piles up in the kernel's buffers, then in the server's), as a device busy
   * elsewhere or behind a stalled link does; what the client sends still leaves.
   */
  stopReading(): void;
  /** Ends the client's side of the TCP connection (a FIN) without a close frame. */
  end(): void;
  destroy(): void;
  /** Settles when the TCP connection closed. */
  readonly closed: Promise<void>;
}

/** The frame header for `length` payload bytes, masked with a zero key (client to server). */
function clientFrameHeader(opcode: number, length: number): Buffer {
  const first = 0x80 | opcode;
  if (length < 126) return Buffer.from([first, 0x80 | length, 0, 0, 0, 0]);
  if (length < 65_536) {
    const header = Buffer.from([first, 0x80 | 126, 0, 0, 0, 0, 0, 0]);
    header.writeUInt16BE(length, 2);
    return header;
  }
  const header = Buffer.alloc(14);
  header[0] = first;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(BigInt(length), 2);
  return header;
}

/** Takes whole server frames off the front of `buffer`; returns what is left of an incomplete one. */
function takeFrames(buffer: Buffer, out: ServerFrame[]): Buffer {
  let rest = buffer;
  for (;;) {
    if (rest.length < 2) return rest;
    let length = rest[1] & 0x7f;
    let at = 2;
    if (length === 126) {
      if (rest.length < 4) return rest;
      length = rest.readUInt16BE(2);
      at = 4;
    } else if (length === 127) {
      if (rest.length < 10) return rest;
      length = Number(rest.readBigUInt64BE(2));
      at = 10;
    }
    if (rest.length < at + length) return rest;
    out.push({ opcode: rest[0] & 0x0f, fin: (rest[0] & 0x80) !== 0, payload: rest.subarray(at, at + length) });
    rest = rest.subarray(at + length);
  }
}

export interface RawWebSocketOptions {
  /**
   * Keeps the client's side of the TCP connection open after the server ended its side (its FIN), as a client gone
   * silent right after its close frame does. Default false: the client ends its side at once, as Node's sockets do.
   */
  halfOpen?: boolean;
}

/** Opens a WebSocket on `path` (subprotocol "mqtt") and resolves once the server answered 101. */
export async function rawWebSocket(
  port: number,
  path = "/mqtt",
  options: RawWebSocketOptions = {},
): Promise<RawWebSocket> {
  const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: options.halfOpen === true });
  // Each frame leaves when sent: with Nagle's algorithm a small frame waits for the ACK of the previous one, which
  // the server delays while it has nothing to answer (a PUBLISH held by a full mailbox).
  socket.setNoDelay(true);
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise((resolve) => socket.once("connect", resolve));
  let received: Buffer = Buffer.alloc(0);
  let upgraded = false;
  const frames: ServerFrame[] = [];
  const packets: mqttPacket.Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on("packet", (packet) => packets.push(packet));
  socket.on("data", (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    if (!upgraded) return;
    const before = frames.length;
    received = takeFrames(received, frames);
    for (const frame of frames.slice(before)) if (frame.opcode === OPCODE_BINARY) parser.parse(frame.payload);
  });
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n` +
      "Sec-WebSocket-Protocol: mqtt\r\n\r\n",
  );
  await waitUntil(() => received.includes("\r\n\r\n"));
  assert.match(received.toString("latin1"), /^HTTP\/1\.1 101 /);
  received = received.subarray(received.indexOf("\r\n\r\n") + 4);
  upgraded = true;
  received = takeFrames(received, frames);
  return {
    frames,
    packets,
    send: (data) => socket.write(Buffer.concat([clientFrameHeader(OPCODE_BINARY, data.length), data])),
    sendClose: (code) => {
      const payload = Buffer.alloc(2);
      payload.writeUInt16BE(code);
      socket.write(Buffer.concat([clientFrameHeader(OPCODE_CLOSE, payload.length), payload]));
    },
    closeCode: () => {
      const close = frames.find((f) => f.opcode === OPCODE_CLOSE);
      return close && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : undefined;
    },
    reset: () => socket.resetAndDestroy(),
    stopReading: () => socket.pause(),
    end: () => socket.end(),
    destroy: () => socket.destroy(),
    closed,
  };
}
