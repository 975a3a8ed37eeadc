/**
 * The PROXY protocol in front of a TCP or TLS listener: who may send a header, and what becomes of a connection that
 * does not send a valid one. Every connection must start with a header, from a trusted source (HAProxy's
 * `accept-proxy`, and what AWS recommends for its NLB): a listener that served a connection without one as plain MQTT
 * would let a device reach it around the balancer under any address, and a balancer whose header sending was turned
 * off would go unnoticed while the whole fleet counted under its address again.
 */
import type net from "node:net";
import type { Clock } from "../../clock.ts";
import { TrustedProxies } from "../trusted-proxies.ts";
import { type ProxyHeaderRefusal, readProxyHeader } from "./read-proxy-header.ts";

/**
 * Why a connection was closed before anything read it: its source, or its header; `address-lost`: a TLS connection
 * whose header's client address was not found once its handshake ended (client-address-hand-off.ts).
 */
export type ProxyRefusalReason = "untrusted" | ProxyHeaderRefusal | "address-lost";

export interface ProxyRefusal {
  /** The address the connection came from (the balancer's, or whoever connected directly). */
  peer: string;
  reason: ProxyRefusalReason;
  detail: string;
}

export interface ProxyGateOptions {
  /** Addresses and CIDR ranges of the balancers (trusted-proxies.ts syntax); a connection from elsewhere is closed. */
  trustedSources: readonly string[];
  /** The header must be complete within this many ms of the connection. */
  headerTimeoutMs: number;
  clock: Clock;
  /** Told of each connection closed for its source or its header (by the gate, or by the TLS listener after it). */
  onRefused?: (refusal: ProxyRefusal) => void;
  /**
   * Aborted when the listener closes: a connection still waiting for its header is then closed without being reported
   * (its header was cut short by the shutdown, not by its sender). Default: never.
   */
  closing?: AbortSignal;
}

/**
 * Takes a raw socket, reads its header, and calls `proceed` with the address the connection counts under: the header's
 * client, or the peer itself for a header that names none (a v2 LOCAL health check, v1 UNKNOWN). A connection that
 * cannot proceed is destroyed here.
 */
export type ProxyGate = (socket: net.Socket, proceed: (remoteAddress: string) => void) => void;

/** Builds the gate; throws a RangeError naming a `trustedSources` entry that is no address or range. */
export function createProxyGate(options: ProxyGateOptions): ProxyGate {
  const trusted = new TrustedProxies(options.trustedSources);
  const headerOptions = { timeoutMs: options.headerTimeoutMs, clock: options.clock };
  return (socket, proceed) => {
    const peer = socket.remoteAddress;
    // Node reads the peer's address when asked: a peer that reset the connection before the listener's callback ran
    // (a HAProxy check closes with a reset; a busy bridge accepts late) has none. It is gone, not an untrusted sender.
    if (peer === undefined) {
      socket.destroy();
      return;
    }
    if (!trusted.trusts(peer)) {
      options.onRefused?.({ peer, reason: "untrusted", detail: "source is not a trusted PROXY protocol sender" });
      socket.destroy();
      return;
    }
    readProxyHeader(socket, headerOptions, (outcome) => {
      if (options.closing?.aborted === true) {
        socket.destroy();
        return;
      }
      if (outcome.status === "read") {
        proceed(outcome.sourceAddress ?? peer);
        return;
      }
      if (outcome.status === "refused") options.onRefused?.({ peer, reason: outcome.reason, detail: outcome.detail });
      socket.destroy();
    });
  };
}
