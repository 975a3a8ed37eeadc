/** What the aedes hooks share: the broker's parts and its per-client bookkeeping. */
import type { Client } from "aedes";
import type { ConnectGuard } from "../connect-guard/index.ts";
import type { DeviceConnection } from "../connection.ts";
import type { DeviceCodecs } from "../device-codecs.ts";
import type { BrokerTransportKind, ObserverHub } from "../observer.ts";
import type { OfflineDownQueue } from "../offline-down-queue.ts";
import type { ResolvedBrokerOptions } from "../options.ts";
import type { Qos2InFlight } from "../qos2-inflight.ts";
import type { DeviceRegistry } from "../registry/index.ts";
import type { SessionManager } from "../sessions.ts";
import type { DeviceRateLimits } from "../token-bucket.ts";
import type { DownSender } from "../transport.ts";
import type { Uplink } from "../uplink.ts";

/** How a stream reached the broker, recorded when the listener accepts it. */
export interface StreamFacts {
  transport: BrokerTransportKind;
  remoteAddress: string;
}

/** The CONNECT packet's facts that authentication needs (aedes hands `authenticate` only user and password). */
export interface ConnectFacts {
  clientId: string;
  willTopic: string | undefined;
  clean: boolean;
}

export interface HookContext {
  opts: ResolvedBrokerOptions;
  registry: DeviceRegistry;
  hub: ObserverHub;
  sessions: SessionManager;
  sender: DownSender;
  /** The devices' sessions in aedes' store: which it keeps, dropped when they belong to a removed record. */
  offlineQueue: OfflineDownQueue;
  uplink: Uplink;
  rateLimits: DeviceRateLimits;
  /** The devices' last hello codecs, shared by their sessions. */
  deviceCodecs: DeviceCodecs;
  streamFacts: WeakMap<object, StreamFacts>;
  connectFacts: WeakMap<Client, ConnectFacts>;
  connections: WeakMap<Client, DeviceConnection>;
  /** Per-address failed-authentication limits and the bound on secret verifications at once. */
  connectGuard: ConnectGuard;
  /** QoS 2 messages being handled, by device and packet id: a copy resent meanwhile is not delivered twice. */
  qos2InFlight: Qos2InFlight;
  /** True while the broker accepts connections (started, not closing). */
  accepting(): boolean;
  /**
   * True when aedes still holds the QoS 2 message `messageId` of this client (received, PUBREL not yet): a PUBLISH
   * with that id is a retransmission that aedes answers with PUBREC alone ([MQTT-4.3.3-2]).
   */
  holdsQos2(client: Client, messageId: number): Promise<boolean>;
  /** Drops filters from what aedes stored of a persistent session's subscriptions (restored at its reconnect). */
  forgetSubscriptions(client: Client, topics: string[]): Promise<void>;
}
