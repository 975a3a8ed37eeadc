/**
 * Keeping every frame to a device within the `maxFrame` its hello declared. The size that matters is the encoded size
 * in the connection's own codec (as for reasoning frames in reasoning/fit-frame.ts): a constrained device reads a
 * frame into a fixed buffer, and one larger than that buffer is lost or overruns it. What to send instead depends on
 * the frame (an rpc refusal, a failed command, an error frame), so this file only measures and builds the refusals.
 */
import type { DownMessage, ErrorFrame, RpcResultFrame } from "../../codecs/frames.ts";
import { fitErrorFrame as fitErrorFrameIn } from "../../codecs/fit-error-frame.ts";
import { encodeDownMessage, getCodec } from "../../codecs/index.ts";
import type { Connection } from "../types.ts";

/** Code of a frame the bridge did not send because it is larger than the device's maxFrame. */
export const FRAME_TOO_LARGE = "BRIDGE_ERR_FRAME_TOO_LARGE";

/** A frame that does not fit: its encoded size and the device's limit, both in bytes. */
export interface Oversize {
  bytes: number;
  maxFrame: number;
}

/**
 * How far `message`, encoded in `conn`'s codec, exceeds `maxFrame`; undefined when it fits or there is no limit. A
 * frame that does not encode at all counts as fitting: that fault is the transport's to report, as it always was.
 */
export function oversize(conn: Connection, message: DownMessage, maxFrame: number | null): Oversize | undefined {
  if (maxFrame === null) return undefined;
  let bytes: number;
  try {
    bytes = encodeDownMessage(getCodec(conn.codec), message).byteLength;
  } catch {
    return undefined;
  }
  return bytes > maxFrame ? { bytes, maxFrame } : undefined;
}

/** A short explanation for an error frame or a command record (short: it must fit the same small device). */
export function oversizeReason(what: string, size: Oversize): string {
  return `${what} is ${size.bytes} bytes, over maxFrame ${size.maxFrame}`;
}

/** `frame` fitted to `maxFrame` in `conn`'s codec (codecs/fit-error-frame.ts); undefined when nothing fits. */
export function fitErrorFrame(conn: Connection, frame: ErrorFrame, maxFrame: number | null): ErrorFrame | undefined {
  return fitErrorFrameIn(getCodec(conn.codec), frame, maxFrame);
}

/** The rpc answer sent instead of a result too large for the device. */
export function rpcTooLarge(frame: RpcResultFrame): RpcResultFrame {
  return { id: frame.id, ok: false, err: FRAME_TOO_LARGE };
}

/**
 * `conn` with a `send` that replaces a `down/rpc` answer too large for `maxFrame` by `rpcTooLarge` (itself a few
 * bytes more than the id; a device whose maxFrame cannot hold even that gets nothing, never an oversized frame). The base
 * class's rpc handler answers through the connection it is handed, so the DeviceAgent hands it this one and the base
 * class stays free of device capabilities. Everything else is `conn`'s own.
 */
export function withRpcFrameLimit(conn: Connection, maxFrame: number): Connection {
  return {
    get id() {
      return conn.id;
    },
    get kind() {
      return conn.kind;
    },
    get codec() {
      return conn.codec;
    },
    get readonly() {
      return conn.readonly;
    },
    get protocol() {
      return conn.protocol;
    },
    get context() {
      return conn.context;
    },
    get state() {
      return conn.state;
    },
    setState: (next) => conn.setState(next),
    send: (message, options) => {
      if (message.channel === "rpc" && oversize(conn, message, maxFrame) !== undefined) {
        const refusal: DownMessage = { channel: "rpc", frame: rpcTooLarge(message.frame) };
        if (oversize(conn, refusal, maxFrame) === undefined) conn.send(refusal, options);
        return;
      }
      conn.send(message, options);
    },
    close: (reason) => conn.close(reason),
    setFrameLimit: (limit) => conn.setFrameLimit(limit),
  };
}
