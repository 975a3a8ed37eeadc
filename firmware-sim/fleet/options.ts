/**
 * Options of a simulated fleet: one interface, one defaults object, validated in createFleet so a mistake names its
 * field before any socket opens.
 */
import { isIP } from "node:net";
import type tls from "node:tls";
import { DEVICE_ID_CHARACTERS } from "../../codecs/device-id.ts";
import { CODEC_NAMES, type CodecName } from "../../codecs/frames.ts";
import { BridgeError } from "../../errors/index.ts";
import { type BackoffOptions, DEFAULT_BACKOFF } from "../backoff.ts";
import { type Clock, type RandomSource, systemClock } from "../clock.ts";
import type { DeviceCredential } from "../credentials.ts";
import { SimErrorCode } from "../errors.ts";
import type { CommandVerifier } from "../invariants/command-check.ts";
import type { TelemetryVerifier } from "../invariants/telemetry-check.ts";
import { defaultSocketFactory, type SocketFactory } from "../mqtt/lean-connection.ts";
import { PROFILE_NAMES, type ProfileName } from "../profiles/index.ts";
import { type FleetRandom, seededFleetRandom, sharedFleetRandom } from "../random-streams.ts";
import { type ApiDriveOptions, validateApiDriveOptions } from "./api-driver.ts";

/** Options of {@link createFleet}. Only `url` is required. */
export interface FleetOptions {
  /** Broker URL: `mqtt://host:port` (default port 1883) or `mqtts://host:port` (default 8883). */
  url: string;
  /** Number of devices. Default: the number of credentials when given, else 10. */
  devices?: number;
  /** Firmware profile, or a list assigned round-robin over the devices. Default `sensor`. */
  profile?: ProfileName | readonly ProfileName[];
  /** Codec of every device (constrained devices use `cbor` when this is `json`). Default `cbor`. */
  codec?: CodecName;
  /** Telemetry messages per second per device; 0 sends none. Default 1. */
  rate?: number;
  /** Device ids and secrets (as `devices add --json` prints). Default: ids `{idPrefix}{n}` with `secret`. */
  credentials?: readonly DeviceCredential[];
  /** Prefix of generated device ids. Default `sim-`. */
  idPrefix?: string;
  /** Password of generated devices; none connects without credentials (anonymous brokers). Default none. */
  secret?: string;
  /** Connection ramp: devices powered on per second. Default 500. */
  connectRatePerSec?: number;
  /**
   * Reconnect delays; `{ mode: "zero" }` reproduces a reconnect storm. Default exponential, 1 s base, 30 s cap, reset
   * after a connection stayed up 30 s (`stableConnectionMs`).
   */
  backoff?: Partial<BackoffOptions>;
  /** Messages a device keeps while offline; the oldest are dropped beyond it. Default 1000. */
  offlineBufferSize?: number;
  /** Unacknowledged QoS 1 messages per device. Default 16. */
  maxInflight?: number;
  /** Clean sessions (true) or persistent ones (false: the broker keeps subscriptions and queued messages). Default true. */
  cleanSession?: boolean;
  /**
   * The broker sets DUP on every PUBLISH it delivers again ([MQTT-3.3.1-1]; the bridge and mosquitto do), so a command
   * repeated after its ack was stored without DUP is a violation, and so is a reasoning request's final frame repeated
   * without DUP. False for one that resends without it (plain aedes): a repeat with the packet id of the command's
   * previous delivery is then taken for its resend, and a repeated final frame for the final frame's. Default true.
   */
  brokerSetsDup?: boolean;
  /** MQTT keepalive in seconds; 0 disables pings. Default 60. */
  keepaliveSec?: number;
  /** Time allowed from socket open to the hello's PUBACK, ms. Default 10000. */
  connectTimeoutMs?: number;
  /** Share of publishes sent twice with the same packet id and DUP set (QoS 1 duplicates), 0..1. Default 0. */
  duplicateRatio?: number;
  /** Mean time between abrupt network losses per device (no DISCONNECT, so the last will fires), ms; 0 never. Default 0. */
  networkDropMeanMs?: number;
  /** Last-will topic, `{id}` replaced by the device id, empty payload; undefined sets no will. Default none. */
  lastWillTopic?: string;
  /** Largest device clock offset, ms; each device draws one in [-skew, +skew]. Default 0. */
  clockSkewMs?: number;
  /** Share of devices without a real-time clock (telemetry without `ts`), 0..1. Default 0. */
  noClockRatio?: number;
  /** Devices that get a twin using the same client id (takeover); they keep kicking each other. Default 0. */
  takeoverPairs?: number;
  /** Delay between a device and its twin powering on, ms. Default 1000. */
  takeoverDelayMs?: number;
  /** Pause between a reasoning device's answer and its next question, ms. Default 5000. */
  reasonIntervalMs?: number;
  /** A question without a final frame after this long is given up, ms. Default 60000. */
  reasonTimeoutMs?: number;
  /** `max` tokens asked for per question. Default 64. */
  reasonMaxTokens?: number;
  /** Source addresses, round-robin per device (e.g. 127.0.0.1..127.0.0.8 to exceed one address' ports). Default: OS choice, or several 127.0.0.x for more than 20000 devices on loopback. */
  localAddresses?: readonly string[];
  /** TLS options for mqtts:// (ca, rejectUnauthorized...). */
  tls?: tls.ConnectionOptions;
  /** At stop, the longest wait for queued messages to be acknowledged, ms. Default 10000. */
  drainTimeoutMs?: number;
  /** At stop, a quiet period for late down frames (commands, deltas, reasoning) before the checks, ms. Default 1000. */
  settleMs?: number;
  /** Reads telemetry back at the end: a function, or the bridge's operator API. Default: the check is skipped. */
  verifyTelemetry?: TelemetryVerifier | { apiUrl: string; token?: string };
  /** Reads the acked commands back at the end: a function, or the bridge's operator API. Default: skipped. */
  verifyCommands?: CommandVerifier | { apiUrl: string; token?: string };
  /**
   * Drives the bridge's operator API during the run (commands, desired-state changes) and reads the changed shadows
   * back at the end. Default: off.
   */
  driveApi?: ApiDriveOptions;
  /** Devices verified at once. Default 8. */
  verifyConcurrency?: number;
  /** Violation details kept (all are counted). Default 1000. */
  maxViolationDetails?: number;
  /** Injected time. Default the system clock. */
  clock?: Clock;
  /**
   * Seed of the fleet's randomness, an integer from 0 to 2^32-1: each device draws from its own streams derived from
   * it (random-streams.ts), so the same seed gives the same fleet (ids, phases, readings, skews, jitter) whatever
   * order real timing makes the devices draw in. Default: none (`random`).
   */
  seed?: number;
  /**
   * Injected randomness, shared by every device in the order they happen to draw: for tests that script the draws (a
   * constant, a sequence). Not with `seed`. Default Math.random.
   */
  random?: RandomSource;
  /** Injected transport. Default TCP / TLS sockets. */
  socketFactory?: SocketFactory;
}

/** Options after defaults, as the fleet uses them. */
export type ResolvedFleetOptions = Required<
  Omit<
    FleetOptions,
    | "credentials"
    | "secret"
    | "lastWillTopic"
    | "localAddresses"
    | "tls"
    | "verifyTelemetry"
    | "verifyCommands"
    | "driveApi"
    | "backoff"
    | "profile"
    | "seed"
    | "random"
  >
> & {
  random: FleetRandom;
  profiles: readonly ProfileName[];
  backoff: BackoffOptions;
  credentials: readonly DeviceCredential[] | undefined;
  secret: string | undefined;
  lastWillTopic: string | undefined;
  localAddresses: readonly string[] | undefined;
  tls: tls.ConnectionOptions | undefined;
  verifyTelemetry: FleetOptions["verifyTelemetry"];
  verifyCommands: FleetOptions["verifyCommands"];
  driveApi: ApiDriveOptions | undefined;
  target: { host: string; port: number; tls: boolean };
};

export const FLEET_DEFAULTS = {
  devices: 10,
  codec: "cbor" as CodecName,
  rate: 1,
  idPrefix: "sim-",
  connectRatePerSec: 500,
  offlineBufferSize: 1000,
  maxInflight: 16,
  cleanSession: true,
  brokerSetsDup: true,
  keepaliveSec: 60,
  connectTimeoutMs: 10_000,
  duplicateRatio: 0,
  networkDropMeanMs: 0,
  clockSkewMs: 0,
  noClockRatio: 0,
  takeoverPairs: 0,
  takeoverDelayMs: 1000,
  reasonIntervalMs: 5000,
  reasonTimeoutMs: 60_000,
  reasonMaxTokens: 64,
  drainTimeoutMs: 10_000,
  settleMs: 1000,
  verifyConcurrency: 8,
  maxViolationDetails: 1000,
} as const;

/** `value` without its entries that are undefined: such a field keeps its default, as one left out does. */
export function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function fail(field: string, message: string): never {
  throw new BridgeError(SimErrorCode.options, `${field} ${message}`, { field });
}

function num(
  field: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
  integer = false,
): number {
  const v = value ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    fail(field, `must be ${integer ? "an integer" : "a number"} from ${min} to ${max}, got ${String(value)}`);
  }
  return v;
}

/**
 * Generated ids are the prefix plus a number (never `.` or `..`), so the prefix takes the device id's characters and
 * leaves room for the number within the id's 64.
 */
const ID_PREFIX_CLASS = `[${DEVICE_ID_CHARACTERS}]{0,40}`;
const ID_PREFIX = new RegExp(`^${ID_PREFIX_CLASS}$`);

/** Per-device streams from `seed`, or one shared source (injected, else Math.random). */
function resolveRandom(seed: number | undefined, random: RandomSource | undefined): FleetRandom {
  if (seed === undefined) return sharedFleetRandom(random ?? Math.random);
  if (random !== undefined) fail("seed", "cannot be given with random: a seed derives a stream per device");
  return seededFleetRandom(num("seed", seed, 0, 0, 2 ** 32 - 1, true));
}

/** Applies defaults and validates; throws BRIDGE_ERR_SIM_OPTIONS naming the field. */
export function resolveFleetOptions(options: FleetOptions): ResolvedFleetOptions {
  const d = FLEET_DEFAULTS;
  let url: URL;
  try {
    url = new URL(options.url);
  } catch (err) {
    throw new BridgeError(
      SimErrorCode.options,
      `url is not a URL: ${String(options.url)}`,
      { field: "url" },
      { cause: err },
    );
  }
  if (url.protocol !== "mqtt:" && url.protocol !== "mqtts:" && url.protocol !== "tcp:") {
    fail("url", `must be mqtt:// or mqtts://, got ${url.protocol}//`);
  }
  const secure = url.protocol === "mqtts:";
  const port = url.port === "" ? (secure ? 8883 : 1883) : Number(url.port);
  const profileList =
    options.profile === undefined
      ? ["sensor" as const]
      : typeof options.profile === "string"
        ? [options.profile]
        : options.profile;
  if (profileList.length === 0) fail("profile", "must name at least one profile");
  for (const p of profileList)
    if (!PROFILE_NAMES.includes(p)) fail("profile", `must be one of ${PROFILE_NAMES.join(", ")}, got ${p}`);
  const codec = options.codec ?? d.codec;
  if (!CODEC_NAMES.includes(codec)) fail("codec", `must be one of ${CODEC_NAMES.join(", ")}, got ${codec}`);
  const credentials = options.credentials;
  // Checked first: the device count defaults to the list's length, and "devices ... got undefined" hid the cause.
  if (credentials?.length === 0)
    fail("credentials", "is empty: give at least one {id, secret}, or none to generate ids");
  const devices = num("devices", options.devices, credentials?.length ?? d.devices, 1, 1_000_000, true);
  if (credentials && devices > credentials.length) {
    fail("devices", `is ${devices} but the credentials list only ${credentials.length} devices`);
  }
  // A field given as undefined keeps its default: spread as is, it replaced the default and every delay was NaN.
  const backoff: BackoffOptions = { ...DEFAULT_BACKOFF, ...withoutUndefined(options.backoff ?? {}) };
  if (backoff.mode !== "exponential" && backoff.mode !== "zero") fail("backoff.mode", "must be exponential or zero");
  num("backoff.baseDelayMs", backoff.baseDelayMs, 0, 0, 3_600_000);
  num("backoff.maxDelayMs", backoff.maxDelayMs, 0, backoff.baseDelayMs, 3_600_000);
  num("backoff.stableConnectionMs", backoff.stableConnectionMs, 0, 0, 3_600_000);
  const takeoverPairs = num("takeoverPairs", options.takeoverPairs, d.takeoverPairs, 0, devices, true);
  if (options.driveApi !== undefined) validateApiDriveOptions(options.driveApi);
  for (const address of options.localAddresses ?? []) {
    // net.connect throws for anything else, on every attempt of the devices given that address.
    if (isIP(address) === 0) fail("localAddresses", `must hold IP addresses, got ${JSON.stringify(address)}`);
  }
  // A topic name never holds a wildcard [MQTT-4.7.1-1]: mosquitto closes a CONNECT whose will has one, so no device
  // would ever come online with nothing pointing at the option, and a broker that takes it publishes a will no one
  // can tell from a filter.
  if (options.lastWillTopic !== undefined && /[+#]/.test(options.lastWillTopic)) {
    fail("lastWillTopic", `must be a topic name without the wildcards + and #, got ${options.lastWillTopic}`);
  }
  const idPrefix = options.idPrefix ?? d.idPrefix;
  if (!ID_PREFIX.test(idPrefix)) fail("idPrefix", `must match ${ID_PREFIX_CLASS}`);
  return {
    url: options.url,
    target: { host: url.hostname.replace(/^\[|\]$/g, ""), port, tls: secure },
    devices,
    profiles: profileList,
    codec,
    rate: num("rate", options.rate, d.rate, 0, 10_000),
    credentials,
    idPrefix,
    secret: options.secret,
    connectRatePerSec: num("connectRatePerSec", options.connectRatePerSec, d.connectRatePerSec, 0.001, 1_000_000),
    backoff,
    offlineBufferSize: num("offlineBufferSize", options.offlineBufferSize, d.offlineBufferSize, 0, 10_000_000, true),
    maxInflight: num("maxInflight", options.maxInflight, d.maxInflight, 1, 65_000, true),
    cleanSession: options.cleanSession ?? d.cleanSession,
    brokerSetsDup: options.brokerSetsDup ?? d.brokerSetsDup,
    keepaliveSec: num("keepaliveSec", options.keepaliveSec, d.keepaliveSec, 0, 65_535, true),
    connectTimeoutMs: num("connectTimeoutMs", options.connectTimeoutMs, d.connectTimeoutMs, 1, 3_600_000),
    duplicateRatio: num("duplicateRatio", options.duplicateRatio, d.duplicateRatio, 0, 1),
    networkDropMeanMs: num("networkDropMeanMs", options.networkDropMeanMs, d.networkDropMeanMs, 0, 1e9),
    lastWillTopic: options.lastWillTopic,
    clockSkewMs: num("clockSkewMs", options.clockSkewMs, d.clockSkewMs, 0, 1e12),
    noClockRatio: num("noClockRatio", options.noClockRatio, d.noClockRatio, 0, 1),
    takeoverPairs,
    takeoverDelayMs: num("takeoverDelayMs", options.takeoverDelayMs, d.takeoverDelayMs, 0, 3_600_000),
    reasonIntervalMs: num("reasonIntervalMs", options.reasonIntervalMs, d.reasonIntervalMs, 0, 3_600_000),
    reasonTimeoutMs: num("reasonTimeoutMs", options.reasonTimeoutMs, d.reasonTimeoutMs, 1, 3_600_000),
    reasonMaxTokens: num("reasonMaxTokens", options.reasonMaxTokens, d.reasonMaxTokens, 1, 1_000_000, true),
    localAddresses: options.localAddresses,
    tls: options.tls,
    drainTimeoutMs: num("drainTimeoutMs", options.drainTimeoutMs, d.drainTimeoutMs, 0, 3_600_000),
    settleMs: num("settleMs", options.settleMs, d.settleMs, 0, 3_600_000),
    verifyTelemetry: options.verifyTelemetry,
    verifyCommands: options.verifyCommands,
    driveApi: options.driveApi,
    verifyConcurrency: num("verifyConcurrency", options.verifyConcurrency, d.verifyConcurrency, 1, 1000, true),
    maxViolationDetails: num("maxViolationDetails", options.maxViolationDetails, d.maxViolationDetails, 0, 1e7, true),
    clock: options.clock ?? systemClock,
    random: resolveRandom(options.seed, options.random),
    socketFactory: options.socketFactory ?? defaultSocketFactory,
  };
}
