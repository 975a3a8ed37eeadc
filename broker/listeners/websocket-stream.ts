/**
 * A server-side WebSocket as the byte stream aedes reads and writes, like ws' `createWebSocketStream` except for how it
 * ends. aedes ends every session, a refused CONNECT included, by destroying its stream right after its last write; ws'
 * stream then terminates the WebSocket, so the TCP connection closed without a close frame (the client saw 1006, an
 * abnormal closure) and a CONNACK still queued could be lost with it. Here a destroy closes the way ws closes
 * gracefully: a close frame after everything written before it, then the TCP connection once the client answers with
 * its own close frame ([RFC 6455 7.1.1]: the server closes TCP first), or after `closeTimeoutMs` at the latest.
 *
 * The stream itself closes at once, as a destroyed TCP socket does while the kernel still sends its last bytes: the
 * MQTT session is over when aedes ends it, and the handshake finishing in the background holds only the WebSocket.
 * Closing the stream only when the WebSocket had closed kept a session that sent DISCONNECT online for up to
 * `closeTimeoutMs`, and a reconnect meanwhile closed it as a takeover, a shutdown as a shutdown.
 *
 * A client that goes away ends its session whether or not aedes is reading (aedes stops while it authenticates a
 * CONNECT, and while a batch of PUBLISHes it read together waits for a full mailbox), as a TCP socket's error does:
 * - a reset (any error of the TCP socket, which ws does not report) destroys the stream with that error at once. What
 *   aedes had not read yet is dropped, as the kernel drops it on a reset; nothing of it was acknowledged, and a
 *   message aedes had read goes on as over TCP (one the agent took commits, one still waiting for room is never
 *   acknowledged, so the device sends it again after reconnecting).
 * - a close (a close frame, or the TCP connection ending without one) ends the stream after what the client sent
 *   before it, from the moment ws reads it (not from the end of the close handshake, which a client gone silent after
 *   its close frame, or one that no longer reads, never completes): aedes reads that within `closeTimeoutMs` (a
 *   DISCONNECT after PUBLISHes waiting for the mailbox keeps the last will from being published), or the stream is
 *   destroyed then with the rest unread, and the TCP connection is cut then at the latest. What aedes writes
 *   once the client closed (the PUBACKs of those PUBLISHes) is dropped: the client can no longer take it, and a
 *   failed write would end the session as an error before aedes read the DISCONNECT.
 *
 * What aedes writes in one tick leaves in one binary frame. mqtt-packet writes a packet in pieces (fixed header,
 * topic, payload) and corks the stream until the next tick, so with `writev` the pieces of a packet, and of the
 * packets of one tick, arrive together: one frame and one socket write instead of one per piece ([MQTT 6.0] lets a
 * packet span frames, but some clients and proxies handle that badly). Writes that queue while a frame is being sent
 * go out together in the next one. A frame ends at the first packet boundary past FRAME_COALESCE_BYTES, so a burst
 * neither becomes one huge frame a small client cannot hold nor waits for the whole burst before its first packet
 * leaves, and every frame holds whole packets.
 */
import { Duplex } from "node:stream";
import WebSocket from "ws";
import { BridgeError } from "../../errors/index.ts";
import type { Clock } from "../clock.ts";
import { BrokerErrorCode } from "../errors.ts";
import { PacketSizeTracker } from "./packet-guard.ts";
import { closeFrameFor, WebSocketCloseCode } from "./websocket-close-code.ts";

export interface WebSocketStreamOptions {
  /**
   * How long a destroyed stream waits for the client's close frame before the TCP connection is cut, and how long
   * aedes has to read what a client sent before it closed, in ms.
   */
  closeTimeoutMs: number;
  clock: Clock;
  /** The TCP (or TLS) socket under the WebSocket: ws does not report its errors, which end the session at once. */
  socket: Duplex;
  /** Told of a text frame, right before the stream is destroyed for it (to count and log the violation). */
  onTextFrame?: (stream: Duplex) => void;
}

/** A frame takes further queued packets while it holds fewer bytes than this: at most this plus one packet long. */
export const FRAME_COALESCE_BYTES = 16 * 1024;

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

/**
 * Joins consecutive writes into frames, in order, each ending at the first packet boundary past FRAME_COALESCE_BYTES
 * (`packets` follows the boundaries of everything written so far).
 */
export function coalesceFrames(chunks: Buffer[], packets: PacketSizeTracker): Buffer[] {
  const frames: Buffer[] = [];
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = (): void => {
    frames.push(pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes));
    pending = [];
    pendingBytes = 0;
  };
  for (const chunk of chunks) {
    packets.feed(chunk);
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes >= FRAME_COALESCE_BYTES && packets.atPacketBoundary) flush();
  }
  if (pending.length > 0) flush();
  return frames;
}

/** Wraps an open server-side WebSocket; the stream owns it from then on. */
export function createGracefulWebSocketStream(ws: WebSocket, options: WebSocketStreamOptions): Duplex {
  const { closeTimeoutMs, clock, socket, onTextFrame } = options;
  // Only to find where the packets aedes writes end; aedes writes nothing too large.
  const writtenPackets = new PacketSizeTracker(Number.POSITIVE_INFINITY, "server");
  /** The broker began the close (aedes ended or destroyed the stream), not the client. */
  let serverClosed = false;
  let cutArmed = false;
  /**
   * Cuts the TCP connection `closeTimeoutMs` after the close began, once however it began: ws' own bound is 30 s, on
   * its own clock, and a client that reads nothing or never ends its side would hold its socket under the bound that
   * long.
   */
  const cutAfterTimeout = (): void => {
    if (cutArmed || ws.readyState === WebSocket.CLOSED) return;
    cutArmed = true;
    const cut = clock.setTimeout(() => ws.terminate(), closeTimeoutMs);
    ws.once("close", () => clock.clearTimeout(cut));
  };
  const stream: Duplex = new Duplex({
    // Only aedes (or the WebSocket's error or close) ends the stream, never the end of one side alone.
    autoDestroy: false,
    read() {
      if (ws.isPaused) ws.resume();
    },
    writev(chunks, callback) {
      // The client closed (its close frame came, or its connection ended): nothing reaches it any more.
      if (ws.readyState !== WebSocket.OPEN) return callback();
      const frames = coalesceFrames(
        chunks.map((c) => c.chunk as Buffer),
        writtenPackets,
      );
      // ws sends in order and fails every later send when one fails, so the last send's outcome is the batch's.
      for (let i = 0; i < frames.length - 1; i++) ws.send(frames[i]);
      ws.send(frames[frames.length - 1], callback);
    },
    final(callback) {
      serverClosed = true;
      if (ws.readyState === WebSocket.OPEN) ws.close(WebSocketCloseCode.normalClosure);
      callback();
    },
    destroy(err, callback) {
      serverClosed = true;
      // Nothing more is read for aedes; the client's close frame still has to be read for the close to complete.
      ws.off("message", onMessage);
      ws.resume();
      cutAfterTimeout();
      // Already closing: ws started the close itself (a frame it could not take, the client's close, a shutdown), with
      // its code. Otherwise the code says why the broker ended the session (websocket-close-code.ts).
      if (ws.readyState === WebSocket.OPEN) {
        const frame = closeFrameFor(err);
        ws.close(frame.code, frame.reason);
      }
      // The close frame is queued behind everything written before it; the stream's `close` follows.
      callback(err);
    },
  });
  const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
    if (!isBinary) {
      refuseTextFrame();
      return;
    }
    if (!stream.push(toBuffer(data))) ws.pause();
  };
  /**
   * "MQTT Control Packets MUST be sent in WebSocket binary data frames. If any other type of data frame is received
   * the recipient MUST close the Network Connection" [MQTT-6.0.0-1]. Read as bytes, a text frame whose bytes happened
   * to be valid UTF-8 (an ASCII topic and a JSON payload) went through as MQTT, while one that was not got ws' 1007 (as
   * it still does): the same client mistake (a browser's `ws.send(string)`) worked or failed by its content. 1003
   * (unsupported data, [RFC 6455 7.4.1]) says what was wrong; nothing of it reaches aedes.
   */
  const refuseTextFrame = (): void => {
    onTextFrame?.(stream);
    if (ws.readyState === WebSocket.OPEN) {
      ws.close(WebSocketCloseCode.unsupportedData, BrokerErrorCode.protocolViolation);
    }
    stream.destroy(
      new BridgeError(
        BrokerErrorCode.protocolViolation,
        "a WebSocket text frame: MQTT over WebSocket takes binary frames only [MQTT-6.0.0-1]",
      ),
    );
  };
  ws.on("message", onMessage);
  // ws has already sent its close frame for the error (1002, 1009, ...); the destroy waits for the close.
  ws.on("error", (err) => stream.destroy(err));
  // A reset: the session ends now, as over TCP, whatever aedes is reading (ws closes the WebSocket on its own).
  const onSocketError = (err: Error): void => {
    if (!stream.destroyed) stream.destroy(err);
  };
  socket.on("error", onSocketError);
  // The client closed: the end of what aedes reads, which ends the session. `read(0)` emits `end` now when nothing is
  // left unread, as a TCP socket does on its FIN: aedes stops reading while a CONNECT is being authenticated, and
  // without it a client gone meanwhile still looked wanted, costing a secret verification and an agent session.
  let clientClosed = false;
  const onClientClosed = (): void => {
    if (clientClosed || stream.destroyed) return;
    clientClosed = true;
    stream.push(null);
    stream.read(0);
    if (stream.readableLength === 0) return;
    // Unread input: aedes gets the bound to read it, not more, since it may not read again while it waits.
    const cut = clock.setTimeout(() => stream.destroy(), closeTimeoutMs);
    const clear = (): void => clock.clearTimeout(cut);
    stream.once("end", clear);
    stream.once("close", clear);
  };
  const onClientGone = (): void => {
    onClientClosed();
    cutAfterTimeout();
  };
  ws.once("close", () => {
    socket.off("error", onSocketError);
    onClientClosed();
  });
  // The client's close frame ends its session when ws reads it, not when the close handshake completes. ws answers it
  // and ends the server's side of the TCP connection only once that answer (and every frame queued before it) has
  // left, and closes the WebSocket once the client has ended its side too: a client that stopped reading (the answer
  // never leaves) or went silent after its close frame (never ends its side) stayed online until ws gave up, 30 s
  // later. ws tells of the frame by nothing but its state: it turns CLOSING while it reads the chunk holding the frame,
  // so the state is looked at before and after ws' own `data` listener. Everything the client sent before the frame
  // has reached the stream by then (ws emits messages as it reads them).
  let openBeforeChunk = false;
  socket.prependListener("data", () => {
    openBeforeChunk = ws.readyState === WebSocket.OPEN;
  });
  socket.on("data", () => {
    if (!openBeforeChunk || serverClosed || ws.readyState !== WebSocket.CLOSING) return;
    // A frame ws refused turns it CLOSING too, and its `error` (which destroys the stream with it) is emitted later in
    // this turn of the event loop: looking only after it lets that error end the session as one, not as a close.
    setImmediate(onClientGone);
  });
  // The client ended its side without a close frame (its FIN): nothing more comes, as over TCP, even while the
  // server's side cannot end because the client reads nothing.
  socket.once("end", onClientGone);
  // The server's side ended: the close handshake the broker began is answered, or the client's close went unnoticed.
  socket.once("finish", onClientGone);
  return stream;
}
