/** Options of the engine client, their defaults and their validation (done once, at construction). */
import { BridgeError } from "../errors/index.ts";
import { type Clock, type RandomSource, systemClock } from "./clock.ts";
import { type EngineObserver, noopEngineObserver } from "./observer.ts";
import { urlCredentialsProblem } from "./url-credentials.ts";

export interface EngineRetryOptions {
  /** Tries per request, the first included. Default 4. */
  maxAttempts: number;
  /** Ceiling of the first backoff delay. Default 100 ms. */
  baseDelayMs: number;
  /**
   * Largest backoff delay. A longer Retry-After is honoured by a request with a deadline it leaves room for; a
   * request without a deadline gets the OVERLOADED error instead of waiting. Default 5000 ms.
   */
  maxDelayMs: number;
  /** HTTP statuses that are retried before the first streamed byte. Default 408, 429, 500, 502, 503, 504. */
  statusCodes: number[];
}

export interface EngineCooldownOptions {
  /** Consecutive failed attempts after which a replica is taken out of rotation. Default 3. */
  failureThreshold: number;
  /** How long a replica stays out before its first health check. Default 5000 ms. */
  cooldownMs: number;
  /** Longest cooldown after repeated failed health checks (the cooldown doubles each time). Default 60000 ms. */
  maxCooldownMs: number;
  /**
   * A request's deadline that passes before its replica sent response headers gets the replica probed
   * (`GET /health`); a probe with no 200 within this counts as one failed attempt of the replica. Default 2000 ms.
   */
  stallProbeTimeoutMs: number;
  /** Least time between the starts of two stall probes of one replica (one runs at a time). Default 1000 ms. */
  stallProbeIntervalMs: number;
}

export interface EngineClientOptions {
  /**
   * Base URLs of the engine replicas (e.g. `http://127.0.0.1:8000`), all serving the same model.
   * Default none: every request then fails with BRIDGE_ERR_ENGINE_NOT_CONFIGURED.
   */
  urls: string[];
  /** Sent as `Authorization: Bearer …`. Never logged, never put in an error. Default none. */
  apiKey?: string;
  /** Model name when a request names none. Default: the first model of the engine's `/v1/models`. */
  model?: string;
  /** Requests in flight per replica; above it requests wait in the client's fair queue. Default 64. */
  maxInFlightPerReplica: number;
  /** Requests waiting in the fair queue; one more fails with BRIDGE_ERR_ENGINE_OVERLOADED. Default 4096. */
  maxQueued: number;
  /**
   * A waiting request rises one priority level per this many ms it has waited, so a stream of higher-priority
   * requests cannot starve it. 0 keeps priority strict (starvation possible). Default 5000 ms.
   */
  priorityAgingMs: number;
  /** Longest wait for response headers (and the first byte of the body). Default 60000 ms. */
  headersTimeoutMs: number;
  /** Longest silence between two chunks of a stream. Default 60000 ms. */
  bodyTimeoutMs: number;
  /**
   * Longest wait for a 200 from `GET /health` when the client checks a replica: `health()` (the bridge's readiness
   * and fleet views) and the check that ends a cooldown. No 200 within it is an unhealthy replica, so a hung one is
   * reported in this time rather than after `headersTimeoutMs`. Generous for a live server: vLLM answers it from its
   * API server, without queueing behind generation. The stall probe has its own
   * `cooldown.stallProbeTimeoutMs`. Default 2000 ms.
   */
  healthCheckTimeoutMs: number;
  /**
   * Longest time a stream's answer may wait unread: a caller that stops reading without closing the stream (drops
   * the iterator without `return()`) would otherwise hold its in-flight slot, and the engine its sequence, forever.
   * Past it the request is aborted with CANCELLED (`details.reason` "consumer-idle") and the slot given back. Counted
   * from the oldest unread read: a consumer that comes back for each batch within it is never cut, however long the
   * stream. Default 60000 ms.
   */
  consumerIdleTimeoutMs: number;
  /**
   * Idle keep-alive sockets are closed after this, unless the engine's `Keep-Alive` header says sooner. Default 4000
   * ms: vLLM's server (uvicorn) closes a socket idle for 5 s and sends no such header, so a longer client timeout
   * sends some requests onto a socket the engine is closing (a failed request, a retry, a count toward cooldown).
   */
  keepAliveTimeoutMs: number;
  retry: EngineRetryOptions;
  cooldown: EngineCooldownOptions;
  /** Metrics hooks. Default: none. */
  observer: EngineObserver;
  /** Time source for deadlines, backoff and cooldowns. Default: the system clock. */
  clock: Clock;
  /** Jitter source. Default: Math.random. */
  random: RandomSource;
}

/** What `createEngineClient` accepts: everything but the replicas is optional. */
export type EngineClientInit = Partial<Omit<EngineClientOptions, "retry" | "cooldown">> & {
  retry?: Partial<EngineRetryOptions>;
  cooldown?: Partial<EngineCooldownOptions>;
};

export const ENGINE_CLIENT_DEFAULTS: EngineClientOptions = {
  urls: [],
  maxInFlightPerReplica: 64,
  maxQueued: 4096,
  priorityAgingMs: 5000,
  headersTimeoutMs: 60_000,
  bodyTimeoutMs: 60_000,
  healthCheckTimeoutMs: 2000,
  consumerIdleTimeoutMs: 60_000,
  keepAliveTimeoutMs: 4_000,
  retry: { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 5000, statusCodes: [408, 429, 500, 502, 503, 504] },
  cooldown: {
    failureThreshold: 3,
    cooldownMs: 5000,
    maxCooldownMs: 60_000,
    stallProbeTimeoutMs: 2000,
    stallProbeIntervalMs: 1000,
  },
  observer: noopEngineObserver,
  clock: systemClock,
  random: Math.random,
};

function configError(field: string, rule: string): BridgeError {
  return new BridgeError("BRIDGE_ERR_CONFIG", `engine.${field} ${rule}`, { field: `engine.${field}` });
}

function positiveInt(value: number, field: string, min = 1): void {
  if (!Number.isInteger(value) || value < min) throw configError(field, `must be an integer >= ${min}`);
}

function nonNegative(value: number, field: string): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw configError(field, "must be a finite number >= 0");
  }
}

/** Where the key goes instead of a URL's user or password, in the client's words (url-credentials.ts). */
const URL_CREDENTIALS_ADVICE =
  "the client sends no credentials from a URL; give the engine's key as engine.apiKey (sent as a bearer token)";

/** Merges `init` over the defaults and validates every field; throws BRIDGE_ERR_CONFIG naming the field. */
export function resolveEngineClientOptions(init: EngineClientInit): EngineClientOptions {
  const options: EngineClientOptions = {
    ...ENGINE_CLIENT_DEFAULTS,
    ...stripUndefined(init),
    retry: { ...ENGINE_CLIENT_DEFAULTS.retry, ...stripUndefined(init.retry ?? {}) },
    cooldown: { ...ENGINE_CLIENT_DEFAULTS.cooldown, ...stripUndefined(init.cooldown ?? {}) },
  };
  if (!Array.isArray(options.urls)) throw configError("urls", "must be an array of http(s) URLs");
  options.urls.forEach((url, i) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw configError(`urls[${i}]`, "must be an absolute http(s) URL");
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw configError(`urls[${i}]`, "must use http or https");
    }
    const credentials = urlCredentialsProblem(parsed, URL_CREDENTIALS_ADVICE);
    if (credentials !== undefined) throw configError(`urls[${i}]`, credentials);
  });
  if (new Set(options.urls.map((url) => replicaApiRoot(new URL(url)).key)).size !== options.urls.length) {
    throw configError("urls", "must not repeat a replica");
  }
  // What an HTTP header value may hold (RFC 9110 5.5; undici refuses the rest): a key with another character (a
  // typographic quote pasted with it) would fail every request before it left, as a retried UNAVAILABLE that cools
  // every replica down and hides the cause.
  if (
    options.apiKey !== undefined &&
    (typeof options.apiKey !== "string" || /[^\t\x20-\x7e\x80-\xff]/.test(options.apiKey))
  ) {
    throw configError(
      "apiKey",
      "must be a string without line breaks, control characters or characters beyond Latin-1 (it goes in an HTTP header)",
    );
  }
  positiveInt(options.maxInFlightPerReplica, "maxInFlightPerReplica");
  positiveInt(options.maxQueued, "maxQueued", 0);
  positiveInt(options.priorityAgingMs, "priorityAgingMs", 0);
  positiveInt(options.headersTimeoutMs, "headersTimeoutMs");
  positiveInt(options.bodyTimeoutMs, "bodyTimeoutMs");
  positiveInt(options.healthCheckTimeoutMs, "healthCheckTimeoutMs");
  positiveInt(options.consumerIdleTimeoutMs, "consumerIdleTimeoutMs");
  positiveInt(options.keepAliveTimeoutMs, "keepAliveTimeoutMs");
  positiveInt(options.retry.maxAttempts, "retry.maxAttempts");
  nonNegative(options.retry.baseDelayMs, "retry.baseDelayMs");
  nonNegative(options.retry.maxDelayMs, "retry.maxDelayMs");
  if (!Array.isArray(options.retry.statusCodes) || options.retry.statusCodes.some((s) => !Number.isInteger(s))) {
    throw configError("retry.statusCodes", "must be an array of HTTP status integers");
  }
  positiveInt(options.cooldown.failureThreshold, "cooldown.failureThreshold");
  nonNegative(options.cooldown.cooldownMs, "cooldown.cooldownMs");
  nonNegative(options.cooldown.maxCooldownMs, "cooldown.maxCooldownMs");
  positiveInt(options.cooldown.stallProbeTimeoutMs, "cooldown.stallProbeTimeoutMs");
  positiveInt(options.cooldown.stallProbeIntervalMs, "cooldown.stallProbeIntervalMs", 0);
  // A floor above its ceiling would silently act as the other bound: refused, as the runtime's retry() does.
  if (options.retry.baseDelayMs > options.retry.maxDelayMs) {
    throw configError("retry.baseDelayMs", "must not exceed retry.maxDelayMs");
  }
  if (options.cooldown.cooldownMs > options.cooldown.maxCooldownMs) {
    throw configError("cooldown.cooldownMs", "must not exceed cooldown.maxCooldownMs");
  }
  if (typeof options.random !== "function") throw configError("random", "must be a function returning [0, 1)");
  return options;
}

/**
 * Where a replica's API lives: `key` names the replica (no credentials; the rendezvous key and metrics label) and
 * `basePath` prefixes its API paths. OpenAI SDKs are configured with `.../v1`; that spelling means the same replica
 * as the server root, so URLs that differ only by it (or by a trailing slash, or the host's case) are one replica.
 */
export function replicaApiRoot(parsed: URL): { key: string; basePath: string } {
  const basePath = parsed.pathname.replace(/\/+$/, "").replace(/\/v1$/, "");
  return { key: `${parsed.protocol}//${parsed.host}${basePath}`, basePath };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
