/**
 * Reads the PROXY protocol header off a raw TCP socket before anything else sees its bytes, and leaves the socket as
 * if the header had never been sent: the bytes after it are put back (`unshift`), so the packet guard and aedes, or a
 * TLS handshake, read the connection's own data from its first byte.
 */
import type net from "node:net";
import type { Clock } from "../../clock.ts";
import { scanProxyHeader } from "./proxy-header.ts";

/** Why a connection from a trusted source was refused for its header. */
export type ProxyHeaderRefusal =
  /** The bytes are no PROXY protocol header (plain MQTT or a TLS ClientHello, a corrupt or unsupported header). */
  | "malformed"
  /** The header is longer than its bound (proxy-header.ts). */
  | "too-large"
  /** The header was not complete within the timeout. */
  | "timeout"
  /** The peer closed the connection in the middle of the header. */
  | "incomplete";

export type ProxyHeaderOutcome =
  | {
      status: "read";
      version: 1 | 2;
      /** The client's address from the header; undefined when it names none (the peer's own address counts). */
      sourceAddress: string | undefined;
      /** A v2 LOCAL command (a balancer's health check). */
      local: boolean;
    }
  | { status: "refused"; reason: ProxyHeaderRefusal; detail: string }
  /**
   * The peer closed before sending a byte: what a balancer's plain TCP health check does (AWS NLB sends no header
   * with its checks). Not a fault.
   */
  | { status: "closed" };

export interface ReadProxyHeaderOptions {
  /** The whole header must arrive within this many ms of the call. */
  timeoutMs: number;
  clock: Clock;
}

/**
 * Reads the header of `socket`, then calls `done` once. On `read` the socket holds the rest of what arrived, unread;
 * on `refused` and `closed` the caller destroys it. The socket's `error` events are the caller's (a `close` follows).
 */
export function readProxyHeader(
  socket: net.Socket,
  options: ReadProxyHeaderOptions,
  done: (outcome: ProxyHeaderOutcome) => void,
): void {
  let received: Buffer = Buffer.alloc(0);
  let settled = false;
  const finish = (outcome: ProxyHeaderOutcome): void => {
    if (settled) return;
    settled = true;
    options.clock.clearTimeout(timer);
    socket.off("readable", onReadable);
    socket.off("end", onEnd);
    socket.off("close", onEnd);
    done(outcome);
  };
  const onReadable = (): void => {
    // One chunk at a time: once the header is complete, later chunks stay in the socket's buffer, behind the rest of
    // this one, which is put back in front of them.
    let chunk: Buffer | null = socket.read() as Buffer | null;
    while (chunk !== null && !settled) {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const scan = scanProxyHeader(received);
      if (scan.status === "invalid") {
        finish({ status: "refused", reason: scan.tooLarge ? "too-large" : "malformed", detail: scan.detail });
        return;
      }
      if (scan.status === "complete") {
        const rest = received.subarray(scan.headerBytes);
        if (rest.length > 0) socket.unshift(rest);
        finish({ status: "read", version: scan.version, sourceAddress: scan.sourceAddress, local: scan.local });
        return;
      }
      chunk = socket.read() as Buffer | null;
    }
  };
  const onEnd = (): void => {
    if (received.length === 0) finish({ status: "closed" });
    else finish({ status: "refused", reason: "incomplete", detail: `closed after ${received.length} header bytes` });
  };
  const timer = options.clock.setTimeout(() => {
    finish({
      status: "refused",
      reason: "timeout",
      detail: `no complete header within ${options.timeoutMs} ms (${received.length} bytes received)`,
    });
  }, options.timeoutMs);
  socket.on("readable", onReadable);
  socket.once("end", onEnd);
  socket.once("close", onEnd);
}
