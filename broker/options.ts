/** createBroker's options, their defaults (one object) and their validation at construction. */
import type { AgentHost } from "../agents/host.ts";
import { CODEC_NAMES, type CodecName } from "../codecs/frames.ts";
import { MAX_DEPTH_CEILING } from "../codecs/limits.ts";
import { BridgeError } from "../errors/index.ts";
import { type Clock, systemClock } from "./clock.ts";
import { BrokerErrorCode } from "./errors.ts";
import { PROXY_RANGE_RULE, parseProxyRange } from "./listeners/trusted-proxies.ts";
import type { BrokerObserver } from "./observer.ts";
import type { DeviceRegistry } from "./registry/index.ts";

/**
 * The PROXY protocol (v1 and v2) on a TCP or TLS listener behind load balancers (HAProxy `send-proxy`, AWS NLB, nginx
 * `proxy_protocol on`, Traefik). Every connection must come from `trustedSources` and start with a header; it then
 * counts under the client address the header names: the per-address failure limit, logs and the agent's
 * `remoteAddress`. Other connections are closed before any MQTT is read (docs/broker.md, "Behind a load balancer").
 */
export interface ProxyProtocolOptions {
  /**
   * IP addresses and CIDR ranges of the balancers (`10.0.0.0/8`, `2001:db8::/32`); at least one. A connection from
   * any other address is closed, header or not: whoever may send a header can claim any address.
   */
  trustedSources: string[];
  /** A connection's header must be complete within this many ms of its arrival, or it is closed. Default 5000. */
  headerTimeoutMs?: number;
}

/** A plain TCP listener. */
export interface TcpListenerOptions {
  /** Bind address. Default "0.0.0.0" (devices are on the network). */
  host?: string;
  /** Port; 0 picks a free one (see `broker.addresses()`). Default 1883. */
  port?: number;
  /** Read a PROXY protocol header first on every connection. Default: off. */
  proxyProtocol?: ProxyProtocolOptions;
}

/** MQTT over TLS; enabled when both `cert` and `key` are given. */
export interface TlsListenerOptions {
  /** Bind address. Default "0.0.0.0". */
  host?: string;
  /** Port; 0 picks a free one. Default 8883. */
  port?: number;
  /** PEM certificate chain. */
  cert?: string | Buffer;
  /** PEM private key. */
  key?: string | Buffer;
  /**
   * PEM CA bundle for client certificates. When set, TLS is mutual: a device must present a certificate signed by
   * it, or the handshake fails (it still authenticates with its id and secret on top). Default: none.
   */
  ca?: string | Buffer;
  /**
   * Read a PROXY protocol header first on every connection, before the TLS handshake (the balancer passes TLS
   * through). Default: off.
   */
  proxyProtocol?: ProxyProtocolOptions;
}

/** MQTT over WebSocket, served through the app's HTTP server calling `broker.handleUpgrade`. */
export interface WebSocketOptions {
  /** URL path accepted by `handleUpgrade`. Default "/mqtt". */
  path?: string;
  /**
   * IP addresses and CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`) of reverse proxies in front of `path`. An upgrade
   * from one of them counts under the client address its `X-Forwarded-For` names (read from the right, past further
   * trusted proxies): the per-address failure limit, logs and the agent's `remoteAddress`. List only proxies that
   * append to that header, never a range clients connect from: whoever is trusted can claim any address.
   * Default: none (the header is ignored).
   */
  trustedProxies?: string[];
  /**
   * At a shutdown (`close()`), how long each MQTT WebSocket has to answer the broker's close frame (1001) before its
   * connection is cut, in ms: `close()` waits for it. Set it to a fraction of the process's own stop budget (the bridge
   * gives a quarter of `shutdown.timeoutMs`, 2 s at most), so a client that never answers cannot spend the budget the
   * agents need to drain. 0 cuts at once. Default 2000.
   */
  closeGraceMs?: number;
}

/** Per-device and global limits. Each breach moves a counter (see docs/broker.md). */
export interface BrokerLimits {
  /** Largest accepted up payload in bytes; larger ones get an error frame. Default 65536. */
  maxPayloadBytes: number;
  /** Deepest nesting of maps/arrays accepted in a frame, at most 32 (what all codecs honour). Default 16. */
  maxDepth: number;
  /** Sustained up messages per second per device (token bucket refill). Default 100. */
  messagesPerSecond: number;
  /** Bucket size: messages a device may send in a burst. Default 200. */
  burstMessages: number;
  /** Consecutive rate-limited messages after which the device is disconnected as a flood. Default 50. */
  maxRateBreaches: number;
  /** Device connections at once; further CONNECTs get CONNACK 3 (server unavailable). Default 10000. */
  maxConnections: number;
  /**
   * Up messages of one session being processed at once (received, not yet answered). The broker stops reading the
   * session's socket at half of it, and never lets one read take more than the rest, so a device that pipelines is
   * slowed, not cut. Default 256.
   */
  maxInflightPerDevice: number;
  /**
   * Topic filters one session may hold (restored ones of a persistent session included); further ones get SUBACK
   * 0x80 and are not kept. A device needs one per down channel at most. Default 64.
   */
  maxSubscriptionsPerDevice: number;
  /**
   * QoS 1 down frames of a persistent session (clean: false) handed to the device and not yet acknowledged (PUBACK);
   * later frames wait in the broker's queue for the device, in order, until acknowledgements make room. Default 20.
   */
  maxUnackedDownPerDevice: number;
  /**
   * Secret verifications (scrypt on libuv's thread pool, tens of ms each) running at once; a CONNECT whose secret the
   * credential cache remembers needs none. Default 4 (the thread pool's default size).
   */
  maxConcurrentVerifications: number;
  /** CONNECTs waiting for a verification; further ones get CONNACK 3 at once (`server-busy`). Default 256. */
  maxQueuedVerifications: number;
  /**
   * Failed authentications (unknown device or wrong secret) one source address (an IPv6 /64) may have in a burst; the
   * one that uses up the allowance blocks the address for `authBlockMs`. 0 turns the per-address limit off. Default 20.
   */
  authFailuresPerAddress: number;
  /** One failed authentication of an address is forgiven every this many ms. Default 3000 (20 a minute). */
  authFailureRefillMs: number;
  /**
   * How long a blocked address's CONNECTs get CONNACK 5 without any verification, in ms; at least
   * `authFailureRefillMs` (while `authFailuresPerAddress` is not 0), so a block ends with a failure forgiven. Default
   * 60000.
   */
  authBlockMs: number;
}

export interface BrokerOptions {
  /** The agent runtime (or any AgentHost) that receives device events. Required. */
  host: AgentHost;
  /** The device registry. Required unless `dataDir` is given. */
  registry?: DeviceRegistry;
  /** Where to open `registry.db` when no `registry` is given; the broker then closes it on `close()`. */
  dataDir?: string;
  /** MQTT over TCP; `false` disables it. Default { host: "0.0.0.0", port: 1883 }. */
  tcp?: TcpListenerOptions | false;
  /** MQTT over TLS; listens only when `cert` and `key` are set. */
  tls?: TlsListenerOptions;
  /** MQTT over WebSocket via `handleUpgrade`; `false` refuses every upgrade. Default { path: "/mqtt" }. */
  websocket?: WebSocketOptions | false;
  /** Accept devices that are not in the registry, without credentials. Default false; logs a warning at start. */
  anonymous?: boolean;
  /** Codec for devices with neither a hello codec nor a registry codec. Default "cbor". */
  defaultCodec?: CodecName;
  limits?: Partial<BrokerLimits>;
  /** Metrics hooks. Default: none. */
  observer?: BrokerObserver;
  /** pino-compatible logger. Default: silent. */
  logger?: BrokerLogger;
  /**
   * Time source of every time read and timer of the broker's own: rate limits, the per-address authentication limit,
   * the subscribe grace period, throttled warnings, the PROXY header and WebSocket close timeouts, the registry watch,
   * the hand-over waits of a session's end, and the registry it opens from `dataDir`. Default: the system clock. aedes'
   * own timers (`connectTimeoutMs`, each device's keepalive) and the read pacer's refresh of the keepalive always run
   * on the wall clock.
   */
  clock?: Clock;
  /** A socket must send CONNECT within this many ms. Default 30000. */
  connectTimeoutMs?: number;
  /**
   * For this many ms after the CONNACK, down frames for topics the device has not subscribed to yet are held and sent
   * when a matching SUBSCRIBE arrives (a device subscribes right after connecting; the agent may speak first).
   * Default 10000; 0 drops them at once, as plain MQTT would.
   */
  subscribeGraceMs?: number;
  /**
   * How often the broker looks for devices another process removed from the registry (`agent-bridge devices rm`),
   * ms: a live session of such a device ends within this long. A look costs one SQLite pragma while nothing changed.
   * Default 2000; 0 turns it off.
   */
  registryCheckMs?: number;
}

/** The subset of a pino logger the broker uses. */
export interface BrokerLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
  /**
   * Optional (pino has it): one line per `down/error` frame a device is sent (broker/error-frame-log.ts), for whoever
   * writes firmware with a client that does not show it (`mosquitto_pub`); `--log-level debug` turns it on.
   */
  debug?(obj: Record<string, unknown>, msg: string): void;
}

export const silentLogger: BrokerLogger = { info() {}, warn() {}, error() {} };

/** All defaults in one place. */
export const BROKER_DEFAULTS = {
  tcp: { host: "0.0.0.0", port: 1883 },
  tls: { host: "0.0.0.0", port: 8883 },
  proxyProtocol: { headerTimeoutMs: 5000 },
  websocket: { path: "/mqtt", trustedProxies: [] as string[], closeGraceMs: 2000 },
  anonymous: false,
  defaultCodec: "cbor" as CodecName,
  limits: {
    maxPayloadBytes: 65536,
    maxDepth: 16,
    messagesPerSecond: 100,
    burstMessages: 200,
    maxRateBreaches: 50,
    maxConnections: 10000,
    maxInflightPerDevice: 256,
    maxSubscriptionsPerDevice: 64,
    maxUnackedDownPerDevice: 20,
    maxConcurrentVerifications: 4,
    maxQueuedVerifications: 256,
    authFailuresPerAddress: 20,
    authFailureRefillMs: 3000,
    authBlockMs: 60_000,
  } satisfies BrokerLimits,
  connectTimeoutMs: 30_000,
  subscribeGraceMs: 10_000,
  registryCheckMs: 2_000,
} as const;

/** `ProxyProtocolOptions` after defaults and validation. */
export interface ResolvedProxyProtocol {
  trustedSources: string[];
  headerTimeoutMs: number;
}

/** Options after defaults and validation. */
export interface ResolvedBrokerOptions {
  host: AgentHost;
  registry?: DeviceRegistry;
  dataDir?: string;
  tcp: { host: string; port: number; proxyProtocol: ResolvedProxyProtocol | undefined } | false;
  tls:
    | {
        host: string;
        port: number;
        cert: string | Buffer;
        key: string | Buffer;
        ca?: string | Buffer;
        proxyProtocol: ResolvedProxyProtocol | undefined;
      }
    | false;
  websocket: { path: string; trustedProxies: string[]; closeGraceMs: number } | false;
  anonymous: boolean;
  defaultCodec: CodecName;
  limits: BrokerLimits;
  observer: BrokerObserver;
  logger: BrokerLogger;
  clock: Clock;
  connectTimeoutMs: number;
  subscribeGraceMs: number;
  registryCheckMs: number;
}

function fail(field: string, message: string): never {
  throw new BridgeError(BrokerErrorCode.config, `broker option ${field} ${message}`, { field });
}

function checkInt(field: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(field, `must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

function checkHost(field: string, value: unknown): string {
  if (typeof value !== "string" || value.length === 0) fail(field, "must be a non-empty address");
  return value;
}

function checkProxyRanges(field: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(field, `must be a list, each ${PROXY_RANGE_RULE}`);
  for (const entry of value) {
    if (typeof entry !== "string" || parseProxyRange(entry) === undefined) {
      fail(field, `must be a list, each ${PROXY_RANGE_RULE}; got ${JSON.stringify(entry)}`);
    }
  }
  return [...(value as string[])];
}

/** Validates a listener's `proxyProtocol`; undefined (off) when it is absent. */
function checkProxyProtocol(field: string, value: unknown): ResolvedProxyProtocol | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null) fail(field, "must be an object with trustedSources");
  const given = value as Partial<ProxyProtocolOptions>;
  const trustedSources = checkProxyRanges(`${field}.trustedSources`, given.trustedSources);
  if (trustedSources.length === 0) {
    fail(`${field}.trustedSources`, `must list at least one balancer, each ${PROXY_RANGE_RULE}`);
  }
  const timeout = given.headerTimeoutMs ?? BROKER_DEFAULTS.proxyProtocol.headerTimeoutMs;
  return { trustedSources, headerTimeoutMs: checkInt(`${field}.headerTimeoutMs`, timeout, 1, 3_600_000) };
}

/** Applies defaults and validates; throws BridgeError BRIDGE_ERR_BROKER_CONFIG naming the field. */
export function resolveBrokerOptions(options: BrokerOptions): ResolvedBrokerOptions {
  if (typeof options !== "object" || options === null) fail("options", "must be an object");
  const host = options.host;
  if (!host || typeof host.open !== "function" || typeof host.deliver !== "function") {
    fail("host", "must be an AgentHost (open, deliver, close)");
  }
  if (!options.registry && (typeof options.dataDir !== "string" || options.dataDir.length === 0)) {
    fail("registry", "or dataDir is required");
  }
  let tcp: ResolvedBrokerOptions["tcp"] = false;
  if (options.tcp !== false) {
    const t = { ...BROKER_DEFAULTS.tcp, ...options.tcp };
    tcp = {
      host: checkHost("tcp.host", t.host),
      port: checkInt("tcp.port", t.port, 0, 65535),
      proxyProtocol: checkProxyProtocol("tcp.proxyProtocol", options.tcp?.proxyProtocol),
    };
  }
  let tls: ResolvedBrokerOptions["tls"] = false;
  if (options.tls?.cert !== undefined || options.tls?.key !== undefined) {
    const t = { ...BROKER_DEFAULTS.tls, ...options.tls };
    if (!t.cert) fail("tls.cert", "is required when tls.key is set");
    if (!t.key) fail("tls.key", "is required when tls.cert is set");
    tls = {
      host: checkHost("tls.host", t.host),
      port: checkInt("tls.port", t.port, 0, 65535),
      cert: t.cert,
      key: t.key,
      ca: t.ca,
      proxyProtocol: checkProxyProtocol("tls.proxyProtocol", t.proxyProtocol),
    };
  }
  let websocket: ResolvedBrokerOptions["websocket"] = false;
  if (options.websocket !== false) {
    const path = options.websocket?.path ?? BROKER_DEFAULTS.websocket.path;
    if (typeof path !== "string" || !path.startsWith("/")) fail("websocket.path", "must start with /");
    websocket = {
      path,
      trustedProxies: checkProxyRanges("websocket.trustedProxies", options.websocket?.trustedProxies),
      closeGraceMs: checkInt(
        "websocket.closeGraceMs",
        options.websocket?.closeGraceMs ?? BROKER_DEFAULTS.websocket.closeGraceMs,
        0,
        3_600_000,
      ),
    };
  }
  const defaultCodec = options.defaultCodec ?? BROKER_DEFAULTS.defaultCodec;
  if (!(CODEC_NAMES as readonly string[]).includes(defaultCodec)) {
    fail("defaultCodec", `must be one of ${CODEC_NAMES.join(", ")}`);
  }
  const l = { ...BROKER_DEFAULTS.limits, ...options.limits };
  const limits: BrokerLimits = {
    maxPayloadBytes: checkInt("limits.maxPayloadBytes", l.maxPayloadBytes, 1, 268_435_455),
    maxDepth: checkInt("limits.maxDepth", l.maxDepth, 1, MAX_DEPTH_CEILING),
    messagesPerSecond: checkInt("limits.messagesPerSecond", l.messagesPerSecond, 1),
    burstMessages: checkInt("limits.burstMessages", l.burstMessages, 1),
    maxRateBreaches: checkInt("limits.maxRateBreaches", l.maxRateBreaches, 1),
    maxConnections: checkInt("limits.maxConnections", l.maxConnections, 1),
    maxInflightPerDevice: checkInt("limits.maxInflightPerDevice", l.maxInflightPerDevice, 1),
    maxSubscriptionsPerDevice: checkInt("limits.maxSubscriptionsPerDevice", l.maxSubscriptionsPerDevice, 1),
    // At most as many as MQTT 3.1.1 has packet identifiers to tell them apart.
    maxUnackedDownPerDevice: checkInt("limits.maxUnackedDownPerDevice", l.maxUnackedDownPerDevice, 1, 65_535),
    maxConcurrentVerifications: checkInt("limits.maxConcurrentVerifications", l.maxConcurrentVerifications, 1, 1024),
    maxQueuedVerifications: checkInt("limits.maxQueuedVerifications", l.maxQueuedVerifications, 0),
    authFailuresPerAddress: checkInt("limits.authFailuresPerAddress", l.authFailuresPerAddress, 0),
    authFailureRefillMs: checkInt("limits.authFailureRefillMs", l.authFailureRefillMs, 1),
    authBlockMs: checkInt("limits.authBlockMs", l.authBlockMs, 1),
  };
  // A block shorter than one refill ends with no failure forgiven yet: the address, no longer blocked, would have every
  // CONNECT refused as server-busy (CONNACK 3) until the refill, under the wrong reason and longer than asked.
  if (limits.authFailuresPerAddress > 0 && limits.authBlockMs < limits.authFailureRefillMs) {
    fail("limits.authBlockMs", `must be at least limits.authFailureRefillMs (${limits.authFailureRefillMs})`);
  }
  if (options.anonymous !== undefined && typeof options.anonymous !== "boolean") fail("anonymous", "must be a boolean");
  return {
    host,
    registry: options.registry,
    dataDir: options.dataDir,
    tcp,
    tls,
    websocket,
    anonymous: options.anonymous ?? BROKER_DEFAULTS.anonymous,
    defaultCodec,
    limits,
    observer: options.observer ?? {},
    logger: options.logger ?? silentLogger,
    clock: options.clock ?? systemClock,
    connectTimeoutMs: checkInt("connectTimeoutMs", options.connectTimeoutMs ?? BROKER_DEFAULTS.connectTimeoutMs, 1),
    subscribeGraceMs: checkInt("subscribeGraceMs", options.subscribeGraceMs ?? BROKER_DEFAULTS.subscribeGraceMs, 0),
    registryCheckMs: checkInt(
      "registryCheckMs",
      options.registryCheckMs ?? BROKER_DEFAULTS.registryCheckMs,
      0,
      86_400_000,
    ),
  };
}
