/**
 * The one schema of every bridge setting, with its default. Sources (file, environment, flags) are merged in
 * `load.ts`; this file only says what a valid configuration is. Messages are phrased to follow the field name
 * (`mqtt.port must be an integer from 0 to 65535`), so `load.ts` can prefix the field and suffix the source.
 */
import { z } from "zod";
import { parseProxyRange } from "../../broker/index.ts";
import { API_TOKEN_RULE, isValidApiToken } from "../api/token-rule.ts";
import { MAX_DEPTH_CEILING } from "../../codecs/limits.ts";
import { urlCredentialsProblem } from "../../engine-client/index.ts";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
const CODECS = ["json", "cbor", "pb"] as const;

/** One message for every check of a field, so a user sees the rule, not zod's internal step that failed. */
function intIn(min: number, max: number): z.ZodNumber {
  const error = `must be an integer from ${min} to ${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

const port = () => intIn(0, 65535);
const text = (what = "a non-empty string") =>
  z.string({ error: `must be ${what}` }).min(1, { error: `must be ${what}` });
const TOKEN_RULE = `must be ${API_TOKEN_RULE}`;
const bool = () => z.boolean({ error: "must be true or false" });
const PROXY_RULE =
  "must be a list of IP addresses or CIDR ranges (10.0.0.0/8, 2001:db8::/32; an IPv4-mapped address takes a prefix of 96 to 128)";
/** The broker's own reading of an address or range, so the config accepts exactly what the broker does. */
const proxyRanges = () =>
  z.array(
    z.string({ error: PROXY_RULE }).refine((entry) => parseProxyRange(entry) !== undefined, { error: PROXY_RULE }),
    { error: PROXY_RULE },
  );

/**
 * An engine URL must not hold a user or password: the engine client sends none from a URL, so the engine would answer
 * 401 to every request. The engine client's own check (urlCredentialsProblem) words it, with the URL's credentials
 * redacted; the advice names the bridge's settings for the key.
 */
function noCredentials(value: string, ctx: z.RefinementCtx): void {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return; // not a URL at all: z.url has said so
  }
  const message = urlCredentialsProblem(
    parsed,
    "the bridge sends no credentials from an engine URL; set the engine's key as engine.apiKey or " +
      "BRIDGE_ENGINE_API_KEY (sent as a bearer token)",
  );
  if (message !== undefined) ctx.addIssue({ code: "custom", message });
}

/**
 * The PROXY protocol on one MQTT listener (TCP or TLS), off while `trustedSources` is empty. With balancers listed,
 * every connection must come from one of them and start with a PROXY protocol header (v1 or v2); it then counts under
 * the client address the header names. Anything else is closed before MQTT (docs/broker.md, "Behind a load balancer").
 */
const proxyProtocolSchema = () =>
  z
    .strictObject({
      /** Addresses and CIDR ranges of the balancers; empty: the listener reads no header. */
      trustedSources: proxyRanges().default([]),
      /** A connection's header must be complete within this many ms. */
      headerTimeoutMs: intIn(1, 3_600_000).default(5000),
    })
    .prefault({});

/** An agent class mapped to device ids by a glob pattern, loaded from `module` (relative to the config file). */
export const agentClassSchema = z.strictObject({
  pattern: text("a glob pattern on device ids, e.g. thermo-*"),
  module: text("a module path"),
  export: text("an export name").default("default"),
});

/** The folder under the data directory that `backup.dir` defaults to. */
export const BACKUP_DIR_NAME = "backups";

export const configSchema = z.strictObject({
  /** Where agent databases and the device registry live. */
  dataDir: text("a directory path").default("./data"),
  log: z
    .strictObject({
      level: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(", ")}` }).default("info"),
    })
    .prefault({}),
  mqtt: z
    .strictObject({
      /** Devices connect from the network, so MQTT listens on every interface by default. */
      host: text("a host name or IP address").default("0.0.0.0"),
      port: port().default(1883),
      /** Off by default: every device authenticates with its own secret. */
      allowAnonymous: bool().default(false),
      /** Codec for devices that never said otherwise (no hello codec, no registry codec). */
      defaultCodec: z.enum(CODECS, { error: `must be one of ${CODECS.join(", ")}` }).default("cbor"),
      /** A socket must send CONNECT within this many ms. */
      connectTimeoutMs: intIn(1, 3_600_000).default(30_000),
      /** Down frames for a topic the device has not subscribed to yet are held this long after CONNACK, ms. */
      subscribeGraceMs: intIn(0, 3_600_000).default(10_000),
      /**
       * A device removed from the registry by another process (`agent-bridge devices rm`) loses its live session
       * within this many ms; 0 leaves it connected until it reconnects (and is refused).
       */
      registryCheckMs: intIn(0, 86_400_000).default(2_000),
      /**
       * Reverse proxies in front of MQTT over WebSocket (`/mqtt`) whose X-Forwarded-For names the client, so each
       * client behind them has its own failed-authentication allowance. None by default: the header is ignored.
       */
      trustedProxies: proxyRanges().default([]),
      /** PROXY protocol on the MQTT TCP listener (`mqtt.port`); the TLS listener has its own (`mqtt.tls`). */
      proxyProtocol: proxyProtocolSchema(),
      /** Per-device and global broker limits; each breach moves a counter (docs/broker.md). */
      limits: z
        .strictObject({
          /** Largest accepted up payload, bytes. */
          maxPayloadBytes: intIn(1, 268_435_455).default(65536),
          /** Deepest nesting of maps/arrays in a frame; at most what every codec honours (the broker's own bound). */
          maxDepth: intIn(1, MAX_DEPTH_CEILING).default(16),
          /** Sustained up messages per second per device. */
          messagesPerSecond: intIn(1, 1_000_000).default(100),
          /** Burst size per device. */
          burstMessages: intIn(1, 1_000_000).default(200),
          /** Consecutive rate-limited messages before a flood disconnect. */
          maxRateBreaches: intIn(1, 1_000_000).default(50),
          /** Device connections at once. */
          maxConnections: intIn(1, 10_000_000).default(10_000),
          /** Up messages of one session in processing at once; the broker stops reading its socket at half of it. */
          maxInflightPerDevice: intIn(1, 1_000_000).default(256),
          /** Topic filters one session may hold; further ones get SUBACK 0x80. */
          maxSubscriptionsPerDevice: intIn(1, 1_000_000).default(64),
          /** QoS 1 down frames of a persistent session unacknowledged at once; later ones wait in the broker. */
          maxUnackedDownPerDevice: intIn(1, 65_535).default(20),
          /** Secret verifications (scrypt) running at once. */
          maxConcurrentVerifications: intIn(1, 1024).default(4),
          /** CONNECTs waiting for a verification before further ones get CONNACK 3. */
          maxQueuedVerifications: intIn(0, 1_000_000).default(256),
          /** Failed authentications one source address may have in a burst before it is blocked; 0: no limit. */
          authFailuresPerAddress: intIn(0, 1_000_000).default(20),
          /** One failed authentication of an address is forgiven every this many ms. */
          authFailureRefillMs: intIn(1, 86_400_000).default(3000),
          /** How long a blocked address is refused without verification, ms. */
          authBlockMs: intIn(1, 86_400_000).default(60_000),
        })
        .prefault({}),
      tls: z
        .strictObject({
          port: port().default(8883),
          certFile: text("a file path").optional(),
          keyFile: text("a file path").optional(),
          caFile: text("a file path").optional(),
          /** PROXY protocol on the MQTT TLS listener: the header comes before the TLS handshake (TLS passthrough). */
          proxyProtocol: proxyProtocolSchema(),
        })
        .prefault({}),
    })
    .prefault({}),
  http: z
    .strictObject({
      /** The operator surface stays on loopback unless an operator opens it; the API always needs its token. */
      host: text("a host name or IP address").default("127.0.0.1"),
      port: port().default(8080),
      /**
       * Bearer token for the operator API. Never logged. When absent, one is generated once into the data
       * directory (file `api-token`, mode 0600), so a fresh install is never open.
       */
      apiToken: z.string({ error: TOKEN_RULE }).refine(isValidApiToken, { error: TOKEN_RULE }).optional(),
      /**
       * A request's head must have arrived within this many ms of its first byte, or it gets a 408 and its connection
       * is closed (Node's own default is 60 s). Upgraded WebSockets (`/mqtt`, `/agents/{id}`) are not timed by it.
       */
      headersTimeoutMs: intIn(1, 3_600_000).default(15_000),
      /**
       * A whole request (head and body) must have arrived within this many ms (fastify's default: never). Not the
       * time to answer it, and not an upgraded WebSocket's lifetime. At least `headersTimeoutMs` (a cross-check).
       */
      requestTimeoutMs: intIn(1, 3_600_000).default(30_000),
      /** An idle keep-alive connection is closed after this many ms without a request (fastify's default: 72 s). */
      keepAliveTimeoutMs: intIn(1, 3_600_000).default(5_000),
      /**
       * Connections the HTTP server holds at once; one more is closed as it arrives. Upgraded WebSockets count (MQTT
       * over WebSocket devices, agent clients). When not set, it follows `mqtt.limits.maxConnections`
       * (http-connections.ts): 12288 is the value for the default 10000.
       */
      maxConnections: intIn(1, 10_000_000).default(12_288),
      /** The WebSocket agent endpoint `/agents/{id}`. */
      agentSockets: z
        .strictObject({
          /**
           * Bytes that may wait to be written to one client that reads slower than its agent sends (or stopped
           * reading); past it the socket is closed with 1013, counted as BRIDGE_ERR_WS_SLOW_CONSUMER.
           */
          maxBufferedBytes: intIn(1024, 1_073_741_824).default(4 * 1024 * 1024),
        })
        .prefault({}),
    })
    .prefault({}),
  engine: z
    .strictObject({
      /** Base URLs of OpenAI-compatible engine replicas; reasoning is off when empty. */
      urls: z
        .array(z.url({ protocol: /^https?$/, error: "must be a list of http(s) URLs" }).superRefine(noCredentials), {
          error: "must be a list of http(s) URLs",
        })
        .default([]),
      /** Sent as a bearer token to the engine. Never logged, never sent to a device. */
      apiKey: text().optional(),
      /** Model name; the engine's first model when absent. */
      model: text().optional(),
      /** Requests in flight per replica; more wait in the client's fair queue. */
      maxInFlightPerReplica: intIn(1, 100_000).default(64),
      /** Requests waiting in the fair queue; one more is refused as overloaded. */
      maxQueued: intIn(1, 10_000_000).default(4096),
      /** A waiting request rises one priority level per this many ms waited, so none starves; 0: strict priority. */
      priorityAgingMs: intIn(0, 3_600_000).default(5000),
      /** Longest wait for response headers and the first byte, ms. */
      headersTimeoutMs: intIn(1, 3_600_000).default(60_000),
      /** Longest silence between two streamed chunks, ms. */
      bodyTimeoutMs: intIn(1, 3_600_000).default(60_000),
      /**
       * Longest wait for a 200 from a replica's `GET /health` (`/readyz/engine`, engine health, the check that ends
       * a cooldown), ms: a hung replica is reported unhealthy in this time, not after `headersTimeoutMs`.
       */
      healthCheckTimeoutMs: intIn(1, 3_600_000).default(2000),
      /** A stream whose answer waits unread this long (its caller stopped reading) is aborted and its slot freed, ms. */
      consumerIdleTimeoutMs: intIn(1, 86_400_000).default(60_000),
      /** Replica cooldown: the stall probe's settings (the other cooldown options keep the client's defaults). */
      cooldown: z
        .strictObject({
          /**
           * A deadline that passes before a replica's response headers probes its `GET /health`; no 200 within
           * this counts as one failed attempt, ms.
           */
          stallProbeTimeoutMs: intIn(1, 3_600_000).default(2000),
          /** Least time between the starts of two stall probes of one replica, ms; 0: one at a time only. */
          stallProbeIntervalMs: intIn(0, 3_600_000).default(1000),
        })
        .prefault({}),
    })
    .prefault({}),
  agents: z
    .strictObject({
      /** An agent idle this long leaves memory (hibernates); its device stays connected. */
      idleTimeoutMs: intIn(1, 86_400_000).default(60_000),
      maxActiveAgents: intIn(1, 10_000_000).default(1000),
      mailboxCapacity: intIn(1, 1_000_000).default(256),
      maxDatabaseBytes: intIn(65536, Number.MAX_SAFE_INTEGER).default(1024 * 1024 * 1024),
      /** Most waiting events of one agent run in one group commit. */
      maxBatchEvents: intIn(1, 100_000).default(64),
      /**
       * SQLite `synchronous` of agent databases: NORMAL survives a process crash (kill -9); FULL also survives power
       * loss, at the cost of an fsync per commit.
       */
      synchronous: z.enum(["NORMAL", "FULL"], { error: "must be NORMAL or FULL" }).default("NORMAL"),
      /**
       * Longest a callback the runtime awaits inside an agent's event (schedule callback, queue item, operator call, a
       * hook such as onMessage, onConnect or onClose) may take to settle, ms, each on its own; one that does not fails
       * with BRIDGE_ERR_CALLBACK_TIMEOUT as if it had thrown then, and its agent restarts (a fresh instance), so the
       * device's later messages are not held behind it (docs/agents.md, "Callback time limit").
       */
      callbackTimeoutMs: intIn(1, 2_147_483_647).default(60_000),
      /**
       * Lets the start drop the runtime.db rows (alarm, pending mark, directory entries) of agents whose database is
       * missing even when they are more than half of those it lists; without it such a start is refused, since the
       * agents folder is then more likely not mounted than the fleet gone (docs/agents.md, "Destroy"). For one start.
       */
      dropMissingAgentRows: bool().default(false),
      classes: z.array(agentClassSchema, { error: "must be a list of {pattern, module, export}" }).default([]),
      /** Per-agent-class options, by class name (AgentEnv.config). */
      config: z
        .record(z.string(), z.record(z.string(), z.unknown()), { error: "must be an object of objects by class name" })
        .default({}),
    })
    .prefault({}),
  backup: z
    .strictObject({
      /**
       * The one folder `POST /api/backup` writes snapshots into (under a generated name, or a name the request gives):
       * the API never writes anywhere an operator did not choose in the config. Default: `<dataDir>/backups`.
       */
      dir: text("a directory path").optional(),
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      /** A graceful stop that takes longer than this is forced (exit 1). */
      timeoutMs: intIn(1, 3_600_000).default(15_000),
    })
    .prefault({}),
});

/** A complete, validated bridge configuration. */
export type BridgeConfig = z.infer<typeof configSchema>;
/** What a config file (or a test) may give: any subset. */
export type BridgeConfigInput = z.input<typeof configSchema>;
export type AgentClassConfig = z.infer<typeof agentClassSchema>;
export const LOG_LEVEL_NAMES = LOG_LEVELS;
