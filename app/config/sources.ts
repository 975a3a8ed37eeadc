/**
 * Where a setting can come from besides the config file: the environment variable and the `start` flag of each
 * setting. One table, so docs/configuration.md, the CLI and the loader never disagree.
 */

/** How a text value from the environment or a flag becomes a config value. */
export type ValueKind = "string" | "int" | "bool" | "list";

export interface SettingSource {
  /** Dotted path in the config object, e.g. `mqtt.port`. */
  path: string;
  kind: ValueKind;
  /** Environment variable, when the setting has one. */
  env?: string;
  /** Long flag of `agent-bridge start` (commander attribute name is derived), when the setting has one. */
  flag?: string;
}

/**
 * Secrets (engine.apiKey, http.apiToken) have no flag on purpose: a command line is visible to every user of the
 * machine through `ps`.
 */
export const SETTING_SOURCES: readonly SettingSource[] = [
  { path: "dataDir", kind: "string", env: "BRIDGE_DATA_DIR", flag: "--data-dir" },
  { path: "log.level", kind: "string", env: "BRIDGE_LOG_LEVEL", flag: "--log-level" },
  { path: "mqtt.host", kind: "string", env: "BRIDGE_HOST", flag: "--host" },
  { path: "mqtt.port", kind: "int", env: "BRIDGE_MQTT_PORT", flag: "--mqtt-port" },
  { path: "mqtt.allowAnonymous", kind: "bool", env: "BRIDGE_ALLOW_ANONYMOUS", flag: "--allow-anonymous" },
  { path: "mqtt.defaultCodec", kind: "string", env: "BRIDGE_DEFAULT_CODEC", flag: "--default-codec" },
  { path: "mqtt.connectTimeoutMs", kind: "int", env: "BRIDGE_MQTT_CONNECT_TIMEOUT_MS" },
  { path: "mqtt.subscribeGraceMs", kind: "int", env: "BRIDGE_MQTT_SUBSCRIBE_GRACE_MS" },
  { path: "mqtt.registryCheckMs", kind: "int", env: "BRIDGE_MQTT_REGISTRY_CHECK_MS" },
  { path: "mqtt.trustedProxies", kind: "list", env: "BRIDGE_MQTT_TRUSTED_PROXIES" },
  {
    path: "mqtt.proxyProtocol.trustedSources",
    kind: "list",
    env: "BRIDGE_MQTT_PROXY_PROTOCOL",
    flag: "--mqtt-proxy-protocol",
  },
  { path: "mqtt.proxyProtocol.headerTimeoutMs", kind: "int", env: "BRIDGE_MQTT_PROXY_HEADER_TIMEOUT_MS" },
  { path: "mqtt.limits.maxPayloadBytes", kind: "int", env: "BRIDGE_MQTT_MAX_PAYLOAD_BYTES" },
  { path: "mqtt.limits.messagesPerSecond", kind: "int", env: "BRIDGE_MQTT_MESSAGES_PER_SECOND" },
  { path: "mqtt.limits.maxConnections", kind: "int", env: "BRIDGE_MQTT_MAX_CONNECTIONS" },
  { path: "mqtt.tls.port", kind: "int", env: "BRIDGE_TLS_PORT", flag: "--tls-port" },
  { path: "mqtt.tls.certFile", kind: "string", env: "BRIDGE_TLS_CERT", flag: "--tls-cert" },
  { path: "mqtt.tls.keyFile", kind: "string", env: "BRIDGE_TLS_KEY", flag: "--tls-key" },
  { path: "mqtt.tls.caFile", kind: "string", env: "BRIDGE_TLS_CA", flag: "--tls-ca" },
  {
    path: "mqtt.tls.proxyProtocol.trustedSources",
    kind: "list",
    env: "BRIDGE_TLS_PROXY_PROTOCOL",
    flag: "--tls-proxy-protocol",
  },
  { path: "mqtt.tls.proxyProtocol.headerTimeoutMs", kind: "int", env: "BRIDGE_TLS_PROXY_HEADER_TIMEOUT_MS" },
  { path: "http.host", kind: "string", env: "BRIDGE_HTTP_HOST", flag: "--http-host" },
  { path: "http.port", kind: "int", env: "BRIDGE_HTTP_PORT", flag: "--http-port" },
  { path: "http.apiToken", kind: "string", env: "BRIDGE_API_TOKEN" },
  { path: "http.headersTimeoutMs", kind: "int", env: "BRIDGE_HTTP_HEADERS_TIMEOUT_MS" },
  { path: "http.requestTimeoutMs", kind: "int", env: "BRIDGE_HTTP_REQUEST_TIMEOUT_MS" },
  { path: "http.keepAliveTimeoutMs", kind: "int", env: "BRIDGE_HTTP_KEEP_ALIVE_TIMEOUT_MS" },
  { path: "http.maxConnections", kind: "int", env: "BRIDGE_HTTP_MAX_CONNECTIONS" },
  { path: "http.agentSockets.maxBufferedBytes", kind: "int", env: "BRIDGE_AGENT_SOCKET_MAX_BUFFERED_BYTES" },
  { path: "engine.urls", kind: "list", env: "BRIDGE_ENGINE_URL", flag: "--engine-url" },
  { path: "engine.apiKey", kind: "string", env: "BRIDGE_ENGINE_API_KEY" },
  { path: "engine.model", kind: "string", env: "BRIDGE_ENGINE_MODEL", flag: "--engine-model" },
  { path: "engine.maxInFlightPerReplica", kind: "int", env: "BRIDGE_ENGINE_MAX_IN_FLIGHT" },
  { path: "engine.maxQueued", kind: "int", env: "BRIDGE_ENGINE_MAX_QUEUED" },
  { path: "engine.priorityAgingMs", kind: "int", env: "BRIDGE_ENGINE_PRIORITY_AGING_MS" },
  { path: "engine.headersTimeoutMs", kind: "int", env: "BRIDGE_ENGINE_HEADERS_TIMEOUT_MS" },
  { path: "engine.bodyTimeoutMs", kind: "int", env: "BRIDGE_ENGINE_BODY_TIMEOUT_MS" },
  { path: "engine.healthCheckTimeoutMs", kind: "int", env: "BRIDGE_ENGINE_HEALTH_CHECK_TIMEOUT_MS" },
  { path: "engine.consumerIdleTimeoutMs", kind: "int", env: "BRIDGE_ENGINE_CONSUMER_IDLE_TIMEOUT_MS" },
  { path: "engine.cooldown.stallProbeTimeoutMs", kind: "int", env: "BRIDGE_ENGINE_STALL_PROBE_TIMEOUT_MS" },
  { path: "engine.cooldown.stallProbeIntervalMs", kind: "int", env: "BRIDGE_ENGINE_STALL_PROBE_INTERVAL_MS" },
  { path: "agents.idleTimeoutMs", kind: "int", env: "BRIDGE_IDLE_TIMEOUT_MS", flag: "--idle-timeout-ms" },
  { path: "agents.maxActiveAgents", kind: "int", env: "BRIDGE_MAX_ACTIVE_AGENTS" },
  { path: "agents.mailboxCapacity", kind: "int", env: "BRIDGE_MAILBOX_CAPACITY" },
  { path: "agents.maxDatabaseBytes", kind: "int", env: "BRIDGE_MAX_DATABASE_BYTES" },
  { path: "agents.maxBatchEvents", kind: "int", env: "BRIDGE_MAX_BATCH_EVENTS" },
  { path: "agents.synchronous", kind: "string", env: "BRIDGE_AGENTS_SYNCHRONOUS" },
  { path: "agents.callbackTimeoutMs", kind: "int", env: "BRIDGE_CALLBACK_TIMEOUT_MS" },
  {
    path: "agents.dropMissingAgentRows",
    kind: "bool",
    env: "BRIDGE_DROP_MISSING_AGENT_ROWS",
    flag: "--drop-missing-agent-rows",
  },
  { path: "backup.dir", kind: "string", env: "BRIDGE_BACKUP_DIR", flag: "--backup-dir" },
  { path: "shutdown.timeoutMs", kind: "int", env: "BRIDGE_SHUTDOWN_TIMEOUT_MS" },
];

const TRUE = new Set(["1", "true", "yes", "on"]);
const FALSE = new Set(["0", "false", "no", "off"]);

/**
 * Converts a text value to the setting's kind. A value that does not convert is passed through unchanged, so the
 * schema rejects it with a message that names the field and the rule, rather than this layer guessing.
 */
export function convertText(kind: ValueKind, raw: string): unknown {
  const value = raw.trim();
  switch (kind) {
    case "string":
      return value;
    case "int":
      return /^[+-]?\d+$/.test(value) ? Number(value) : value;
    case "bool": {
      const lower = value.toLowerCase();
      if (TRUE.has(lower)) return true;
      if (FALSE.has(lower)) return false;
      return value;
    }
    case "list": {
      const parts = value
        .split(",")
        .map((part) => part.trim())
        .filter((part) => part.length > 0);
      // A list that names nothing (`--engine-url ""`, an unset shell variable) would silently replace the file's list,
      // and for the PROXY-protocol sources turn the header requirement off: passed on, the schema refuses it by name.
      return parts.length > 0 ? parts : value;
    }
  }
}

/** The commander attribute name of a long flag: `--mqtt-port` -> `mqttPort`. */
export function flagAttribute(flag: string): string {
  return flag.replace(/^--/, "").replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}
