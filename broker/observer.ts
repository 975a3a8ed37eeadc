/**
 * What the broker tells metrics about. Every method is optional; the app wires prom-client counters to it.
 * Calls are synchronous and must not throw (a throwing observer is caught and ignored).
 */
import type { CodecName } from "../codecs/frames.ts";
import type { CloseReason } from "../agents/host.ts";

/** How a device reached the broker. */
export type BrokerTransportKind = "tcp" | "tls" | "ws";

/**
 * Why a CONNECT was refused. `server-busy`: too many verifications running and waiting (or, for its source address,
 * too many CONNECTs waiting behind that address's own); `address-blocked`: the source address failed too often and is
 * refused for a while (also what waited behind it when it was blocked).
 */
export type AuthFailureReason =
  | "bad-credentials"
  | "unknown-device"
  | "client-id"
  | "will-denied"
  | "server-busy"
  | "address-blocked";

export interface BrokerObserver {
  /** A device connection was accepted (CONNACK 0) on `transport`. */
  connectionOpened?(transport: BrokerTransportKind): void;
  /** An accepted device connection ended. */
  connectionClosed?(transport: BrokerTransportKind, reason: CloseReason): void;
  /** An up message arrived and decoded on `channel` in `codec`. */
  messageIn?(channel: string, codec: CodecName): void;
  /** A down frame left on `channel` in `codec`. */
  messageOut?(channel: string, codec: CodecName): void;
  /** An up payload failed to decode (code from codecs, e.g. BRIDGE_ERR_FRAME_DECODE). */
  decodeError?(code: string): void;
  /** A limit was breached (BRIDGE_ERR_RATE_LIMITED, BRIDGE_ERR_FRAME_TOO_LARGE, ...). */
  limitBreach?(code: string): void;
  /** A CONNECT was refused. */
  authFailure?(reason: AuthFailureReason): void;
  /** A publish or subscribe outside the device's namespace was refused. */
  aclDenied?(action: "publish" | "subscribe"): void;
}

/** Counters the broker keeps itself, whatever the observer; `broker.stats()` returns a copy. */
export interface BrokerStats {
  connectionsOpened: Record<BrokerTransportKind, number>;
  connectionsClosed: Partial<Record<CloseReason, number>>;
  messagesIn: number;
  messagesOut: number;
  decodeErrors: Record<string, number>;
  limitBreaches: Record<string, number>;
  authFailures: Partial<Record<AuthFailureReason, number>>;
  aclDenied: { publish: number; subscribe: number };
  /** Down frames dropped because the connection had closed or had no matching subscription. */
  downDropped: number;
}

export function emptyStats(): BrokerStats {
  return {
    connectionsOpened: { tcp: 0, tls: 0, ws: 0 },
    connectionsClosed: {},
    messagesIn: 0,
    messagesOut: 0,
    decodeErrors: {},
    limitBreaches: {},
    authFailures: {},
    aclDenied: { publish: 0, subscribe: 0 },
    downDropped: 0,
  };
}

const bump = <K extends string>(record: Partial<Record<K, number>>, key: K): void => {
  record[key] = (record[key] ?? 0) + 1;
};

/** Keeps `BrokerStats` and forwards each event to the user's observer, shielding the broker from its faults. */
export class ObserverHub {
  readonly stats: BrokerStats = emptyStats();
  constructor(private readonly observer: BrokerObserver) {}

  private call(fn: () => void): void {
    try {
      fn();
    } catch {
      // Metrics must never take a device connection down.
    }
  }

  connectionOpened(transport: BrokerTransportKind): void {
    this.stats.connectionsOpened[transport]++;
    this.call(() => this.observer.connectionOpened?.(transport));
  }
  connectionClosed(transport: BrokerTransportKind, reason: CloseReason): void {
    bump(this.stats.connectionsClosed, reason);
    this.call(() => this.observer.connectionClosed?.(transport, reason));
  }
  // The two per-message hooks call the observer directly, without the closure `call` takes: one allocation less
  // per message on the hot path.
  messageIn(channel: string, codec: CodecName): void {
    this.stats.messagesIn++;
    try {
      this.observer.messageIn?.(channel, codec);
    } catch {
      // Metrics must never take a device connection down.
    }
  }
  messageOut(channel: string, codec: CodecName): void {
    this.stats.messagesOut++;
    try {
      this.observer.messageOut?.(channel, codec);
    } catch {
      // Metrics must never take a device connection down.
    }
  }
  decodeError(code: string): void {
    bump(this.stats.decodeErrors, code);
    this.call(() => this.observer.decodeError?.(code));
  }
  limitBreach(code: string): void {
    bump(this.stats.limitBreaches, code);
    this.call(() => this.observer.limitBreach?.(code));
  }
  authFailure(reason: AuthFailureReason): void {
    bump(this.stats.authFailures, reason);
    this.call(() => this.observer.authFailure?.(reason));
  }
  aclDenied(action: "publish" | "subscribe"): void {
    this.stats.aclDenied[action]++;
    this.call(() => this.observer.aclDenied?.(action));
  }
  downDropped(): void {
    this.stats.downDropped++;
  }
}
