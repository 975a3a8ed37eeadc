import { statSync } from "node:fs";
/**
 * The device registry: one SQLite file (better-sqlite3, WAL) in the data directory. Other processes (the CLI's
 * `devices add`) open the same file at the same time, so it never takes an exclusive lock and waits on a busy
 * database instead of failing at once.
 */
import { randomBytes } from "node:crypto";
import type Database from "better-sqlite3";
import { DEVICE_ID_RULE, isValidDeviceId } from "../../codecs/index.ts";
import type { CodecName } from "../../codecs/frames.ts";
import { CODEC_NAMES } from "../../codecs/frames.ts";
import { BridgeError } from "../../errors/index.ts";
import { type Clock, systemClock } from "../clock.ts";
import { BrokerErrorCode } from "../errors.ts";
import { CredentialCache } from "./credential-cache.ts";
import {
  burnVerification,
  DEFAULT_SCRYPT_PARAMS,
  generateSecret,
  hashSecret,
  type ScryptParams,
  scryptParamsWithinBounds,
  verifySecret,
} from "./secret-hash.ts";
import { openRegistryDatabase, type DeviceRow } from "./schema.ts";

/** A registered device as the registry returns it. The secret hash never leaves the registry. */
export interface DeviceRecord {
  id: string;
  /** The codec chosen at provisioning or by the device's last hello; null means the bridge default. */
  codec: CodecName | null;
  /** Agent class that serves the device; null means the default DeviceAgent. */
  agentClass: string | null;
  /** ms since the Unix epoch. */
  createdAt: number;
  /**
   * Drawn at random when the record is added: a device removed and added again is another record, even within the
   * millisecond `createdAt` counts in. A session remembers the record its secret was verified against by it.
   */
  recordId: string;
  /**
   * Drawn at random with each secret the record gets (`add`, `rotateSecret`); not secret itself. A secret verified
   * against a record whose `secretId` has changed since is no longer the device's secret.
   */
  secretId: string;
  /** ms since the Unix epoch of the last message or connection; null when never seen. */
  lastSeen: number | null;
  /** Firmware version from the device's last hello. */
  firmware: string | null;
}

export interface AddDeviceOptions {
  codec?: CodecName;
  agentClass?: string;
}

/** Outcome of `add`. The secret appears only here, once; only its hash is stored. */
export type AddDeviceResult =
  | { status: "created"; device: DeviceRecord; secret: string }
  | { status: "exists"; device: DeviceRecord }
  | { status: "invalid"; field: string; message: string };

/** Outcome of `verify`. */
export type VerifyResult =
  | { status: "ok"; device: DeviceRecord }
  | { status: "unknown-device" }
  | { status: "bad-secret" };

export interface DeviceRegistryOptions {
  /** Path of the SQLite file (created when absent), e.g. `<dataDir>/registry.db`. `:memory:` for tests. */
  path: string;
  /** Time source for created_at / last_seen and cache expiry. Default: the system clock. */
  clock?: Clock;
  /**
   * How long a successful verification is remembered, in ms, so a reconnect with the same secret skips scrypt.
   * Default 3600000 (one hour: long enough to cover a reconnect storm after an outage); 0 disables the cache.
   * Safe because a hit also requires the stored hash to be unchanged: a removed or re-keyed device misses at once,
   * even when another process changed the file. Only an HMAC of the secret under a per-process random key is kept
   * (broker/registry/credential-cache.ts).
   */
  verifyCacheMs?: number;
  /** At most this many devices' verifications are remembered (least recently verified dropped first). Default 100000. */
  verifyCacheMaxEntries?: number;
  /** last_seen updates are batched and written at most this often, in ms. Default 5000. */
  touchFlushMs?: number;
  /** scrypt cost for new secrets. Default N=16384, r=8, p=1. Lower only in tests. */
  scrypt?: ScryptParams;
}

export const DEFAULT_REGISTRY_OPTIONS = {
  verifyCacheMs: 3_600_000,
  verifyCacheMaxEntries: 100_000,
  touchFlushMs: 5_000,
  scrypt: DEFAULT_SCRYPT_PARAMS,
} as const;

/** The device registry API. */
export interface DeviceRegistry {
  /** Provisions a device and returns its secret, once. */
  add(id: string, options?: AddDeviceOptions): Promise<AddDeviceResult>;
  get(id: string): DeviceRecord | undefined;
  /** Devices ordered by id. */
  list(options?: { limit?: number; offset?: number }): DeviceRecord[];
  /** How many devices are provisioned. */
  count(): number;
  /** Removes a device; false when there was none. */
  remove(id: string): boolean;
  /**
   * Checks a device's secret without blocking the event loop (scrypt runs on the thread pool). `ok` carries the record
   * read before the check: its `secretId` names the secret that verified, which may have been rotated by the time the
   * promise settles (compare it with a fresh `get`).
   */
  verify(id: string, secret: string): Promise<VerifyResult>;
  /**
   * The device, when `secret` is the one that verified for it recently (a credential cache hit, no scrypt work);
   * undefined means only `verify` can tell, never "wrong".
   */
  recall(id: string, secret: string): DeviceRecord | undefined;
  /** Issues a new secret, invalidating the old one; undefined when the device does not exist. */
  rotateSecret(id: string): Promise<string | undefined>;
  /** Records the codec a device asked for in its hello. */
  setCodec(id: string, codec: CodecName): void;
  /** Records the firmware version a device reported in its hello. */
  setFirmware(id: string, firmware: string): void;
  /** Marks a device as seen now (or at `atMs`). Batched: written within `touchFlushMs`. */
  touch(id: string, atMs?: number): void;
  /** Writes pending last_seen updates now. */
  flush(): void;
  /**
   * A number that changes whenever another connection to the registry file commits: another process, such as
   * `agent-bridge devices rm`. This registry's own writes leave it as it is (SQLite `PRAGMA data_version`).
   */
  externalVersion(): number;
  /**
   * Writes a consistent copy of the registry into the new file `into` (a backup): pending last_seen updates first, then
   * SQLite's `VACUUM INTO` on this connection, one synchronous statement. Returns the copy's size in bytes.
   */
  backupTo(into: string): number;
  /** Flushes and closes the database. */
  close(): void;
}

function toRecord(row: DeviceRow): DeviceRecord {
  const codec = (CODEC_NAMES as readonly string[]).includes(row.codec ?? "") ? (row.codec as CodecName) : null;
  return {
    id: row.id,
    codec,
    agentClass: row.agent_class,
    createdAt: row.created_at,
    lastSeen: row.last_seen,
    firmware: row.firmware,
    recordId: row.record_id,
    secretId: row.secret_id,
  };
}

/** 128 random bits, hex: a recordId or secretId. */
function newId(): string {
  return randomBytes(16).toString("hex");
}

function configError(field: string, message: string): BridgeError {
  return new BridgeError(BrokerErrorCode.config, `${field} ${message}`, { field });
}

function validate(options: DeviceRegistryOptions): Required<Omit<DeviceRegistryOptions, "path">> & { path: string } {
  if (typeof options.path !== "string" || options.path.length === 0) {
    throw configError("path", "must be a non-empty file path");
  }
  // Field by field with `??`, not a spread: an option passed through as `undefined` (`{ clock: opts.clock }`) means
  // "not given" and takes its default instead of wiping it.
  const merged = {
    path: options.path,
    clock: options.clock ?? systemClock,
    verifyCacheMs: options.verifyCacheMs ?? DEFAULT_REGISTRY_OPTIONS.verifyCacheMs,
    verifyCacheMaxEntries: options.verifyCacheMaxEntries ?? DEFAULT_REGISTRY_OPTIONS.verifyCacheMaxEntries,
    touchFlushMs: options.touchFlushMs ?? DEFAULT_REGISTRY_OPTIONS.touchFlushMs,
    scrypt: options.scrypt ?? DEFAULT_REGISTRY_OPTIONS.scrypt,
  };
  for (const field of ["verifyCacheMs", "touchFlushMs"] as const) {
    const value = merged[field];
    if (!Number.isSafeInteger(value) || value < 0) throw configError(field, "must be an integer >= 0 (ms)");
  }
  if (!Number.isSafeInteger(merged.verifyCacheMaxEntries) || merged.verifyCacheMaxEntries < 0) {
    throw configError("verifyCacheMaxEntries", "must be an integer >= 0");
  }
  const { N, r, p } = merged.scrypt;
  if (!Number.isSafeInteger(N) || N < 2 || (N & (N - 1)) !== 0) throw configError("scrypt.N", "must be a power of two");
  if (!Number.isSafeInteger(r) || r < 1 || !Number.isSafeInteger(p) || p < 1) {
    throw configError("scrypt", "r and p must be positive integers");
  }
  // A hash beyond the bounds never verifies (a tampered row must not cost minutes), so no secret is issued with one.
  if (!scryptParamsWithinBounds(merged.scrypt)) {
    throw configError("scrypt", "cost must be at most N*r*p = 2^22 and 128*N*r = 256 MiB, with N below 2^(16r)");
  }
  return merged;
}

/**
 * Opens (creating when absent) the device registry.
 *
 * @example
 * const registry = createDeviceRegistry({ path: path.join(dataDir, "registry.db") });
 * const added = await registry.add("thermo-1", { codec: "cbor" });
 * if (added.status === "created") console.log("secret, shown once:", added.secret);
 */
export function createDeviceRegistry(options: DeviceRegistryOptions): DeviceRegistry {
  const opts = validate(options);
  const clock = opts.clock;
  let db: Database.Database;
  try {
    db = openRegistryDatabase(opts.path);
  } catch (cause) {
    // A refusal that says why itself (a schema newer than this build) goes out as it is.
    if (cause instanceof BridgeError) throw cause;
    throw new BridgeError(BrokerErrorCode.registry, `cannot open device registry at ${opts.path}`, {}, { cause });
  }
  const stmt = {
    get: db.prepare<[string], DeviceRow>("SELECT * FROM devices WHERE id = ?"),
    list: db.prepare<[number, number], DeviceRow>("SELECT * FROM devices ORDER BY id LIMIT ? OFFSET ?"),
    count: db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM devices"),
    insert: db.prepare<[string, string, string | null, string | null, number, string, string]>(
      "INSERT OR IGNORE INTO devices (id, secret_hash, codec, agent_class, created_at, record_id, secret_id) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
    ),
    remove: db.prepare<[string]>("DELETE FROM devices WHERE id = ?"),
    setHash: db.prepare<[string, string, string]>("UPDATE devices SET secret_hash = ?, secret_id = ? WHERE id = ?"),
    setCodec: db.prepare<[string, string]>("UPDATE devices SET codec = ? WHERE id = ?"),
    setFirmware: db.prepare<[string, string]>("UPDATE devices SET firmware = ? WHERE id = ?"),
    touch: db.prepare<[number, string, number]>(
      "UPDATE devices SET last_seen = ? WHERE id = ? AND (last_seen IS NULL OR last_seen < ?)",
    ),
  };
  /** Positive verifications, bound to the stored hash they were checked against. */
  const verified = new CredentialCache({
    ttlMs: opts.verifyCacheMs,
    maxEntries: opts.verifyCacheMaxEntries,
    clock,
  });
  const pendingTouches = new Map<string, number>();
  let touchTimer: unknown;
  let closed = false;

  function guard<T>(what: string, fn: () => T): T {
    if (closed) throw new BridgeError(BrokerErrorCode.registry, "device registry is closed");
    try {
      return fn();
    } catch (cause) {
      if (cause instanceof BridgeError) throw cause;
      throw new BridgeError(BrokerErrorCode.registry, `device registry ${what} failed`, {}, { cause });
    }
  }

  function flush(): void {
    if (touchTimer !== undefined) clock.clearTimeout(touchTimer);
    touchTimer = undefined;
    if (pendingTouches.size === 0 || closed) return;
    const batch = [...pendingTouches];
    pendingTouches.clear();
    guard("touch", () =>
      db.transaction(() => {
        for (const [id, at] of batch) stmt.touch.run(at, id, at);
      })(),
    );
  }

  function flushInBackground(): void {
    try {
      flush();
    } catch {
      // last_seen is advisory: a busy or failing database must not crash the bridge from a timer.
      // The next touch schedules another attempt.
    }
  }

  const registry: DeviceRegistry = {
    async add(id, addOptions = {}) {
      if (typeof id !== "string" || !isValidDeviceId(id)) {
        return { status: "invalid", field: "id", message: `device id must be ${DEVICE_ID_RULE}` };
      }
      if (addOptions.codec !== undefined && !(CODEC_NAMES as readonly string[]).includes(addOptions.codec)) {
        return { status: "invalid", field: "codec", message: `codec must be one of ${CODEC_NAMES.join(", ")}` };
      }
      const existing = guard("get", () => stmt.get.get(id));
      if (existing) return { status: "exists", device: toRecord(existing) };
      const secret = generateSecret();
      const hash = await hashSecret(secret, opts.scrypt);
      const inserted = guard("add", () =>
        stmt.insert.run(
          id,
          hash,
          addOptions.codec ?? null,
          addOptions.agentClass ?? null,
          clock.now(),
          newId(),
          newId(),
        ),
      );
      const row = guard("get", () => stmt.get.get(id))!;
      // Another process (or a concurrent add) may have won the race while we hashed.
      if (inserted.changes === 0) return { status: "exists", device: toRecord(row) };
      return { status: "created", device: toRecord(row), secret };
    },
    get(id) {
      const row = guard("get", () => stmt.get.get(id));
      return row ? toRecord(row) : undefined;
    },
    list(listOptions = {}) {
      const limit = listOptions.limit ?? -1;
      const offset = listOptions.offset ?? 0;
      return guard("list", () => stmt.list.all(limit, offset)).map(toRecord);
    },
    count() {
      return guard("count", () => stmt.count.get())?.n ?? 0;
    },
    remove(id) {
      verified.forget(id);
      pendingTouches.delete(id);
      return guard("remove", () => stmt.remove.run(id)).changes > 0;
    },
    async verify(id, secret) {
      const row = typeof id === "string" ? guard("get", () => stmt.get.get(id)) : undefined;
      if (!row || typeof secret !== "string") {
        await burnVerification(opts.scrypt);
        return row ? { status: "bad-secret" } : { status: "unknown-device" };
      }
      if (verified.has(id, row.secret_hash, secret)) return { status: "ok", device: toRecord(row) };
      if (!(await verifySecret(secret, row.secret_hash))) return { status: "bad-secret" };
      // Bound to the hash read before scrypt ran: if the secret was rotated meanwhile, the entry simply never hits.
      verified.remember(id, row.secret_hash, secret);
      return { status: "ok", device: toRecord(row) };
    },
    recall(id, secret) {
      if (typeof id !== "string" || typeof secret !== "string") return undefined;
      const row = guard("get", () => stmt.get.get(id));
      return row !== undefined && verified.has(id, row.secret_hash, secret) ? toRecord(row) : undefined;
    },
    async rotateSecret(id) {
      if (!guard("get", () => stmt.get.get(id))) return undefined;
      const secret = generateSecret();
      const hash = await hashSecret(secret, opts.scrypt);
      verified.forget(id);
      return guard("rotate", () => stmt.setHash.run(hash, newId(), id)).changes > 0 ? secret : undefined;
    },
    setCodec(id, codec) {
      guard("setCodec", () => stmt.setCodec.run(codec, id));
    },
    setFirmware(id, firmware) {
      guard("setFirmware", () => stmt.setFirmware.run(firmware, id));
    },
    touch(id, atMs = clock.now()) {
      if (closed) return;
      pendingTouches.set(id, Math.max(atMs, pendingTouches.get(id) ?? 0));
      if (touchTimer === undefined) touchTimer = clock.setTimeout(flushInBackground, opts.touchFlushMs);
    },
    flush,
    backupTo(into) {
      flush();
      guard("backup", () => db.prepare("VACUUM INTO ?").run(into));
      return statSync(into).size;
    },
    externalVersion() {
      return guard("data_version", () => db.pragma("data_version", { simple: true }) as number);
    },
    close() {
      if (closed) return;
      flush();
      closed = true;
      verified.clear();
      db.close();
    },
  };
  return registry;
}
