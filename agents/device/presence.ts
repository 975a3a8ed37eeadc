/**
 * What the agent knows about its device between connections: the hello profile (firmware, codec, capabilities),
 * last seen, and how the last session ended. Whether it is online now is not stored: it is the count of open device
 * connections, which stays exact through takeovers (a new session opens before the old one closes) and restarts.
 */
import type { CodecName, HelloFrame, Value, ValueMap } from "../../codecs/frames.ts";
import { CODEC_NAMES } from "../../codecs/frames.ts";
import { cutText } from "../../codecs/cut-text.ts";
import { MAX_FIRMWARE_LENGTH } from "../../codecs/index.ts";
import type { SqlTag } from "./sql.ts";
import { decodeValue, encodeValue, isValueMap } from "./values.ts";

/** Capabilities from the device's hello, with the protocol's defaults when it said nothing. */
export interface DeviceCaps {
  /** Wants the desired state on hello and deltas when it changes. Default true. */
  sync: boolean;
  /** Takes streamed reasoning chunks. Default true. */
  stream: boolean;
  /** Largest frame the device takes, bytes; null when unknown. */
  maxFrame: number | null;
}

export const DEFAULT_CAPS: Readonly<DeviceCaps> = Object.freeze({ sync: true, stream: true, maxFrame: null });

/** The device profile from its last hello. */
export interface DeviceProfile {
  firmware: string | null;
  codec: CodecName | null;
  caps: DeviceCaps;
  helloAt: number | null;
}

/** last_seen is written at most this often per agent, ms (see `PresenceStore.touch`). */
export const LAST_SEEN_PERSIST_MS = 1000;

/** What `getStatus()` returns. */
export interface DeviceStatus {
  online: boolean;
  /** Open device connections (2 for a moment during a takeover). */
  connections: number;
  /** Last time anything was heard from the device or it connected/disconnected, ms since epoch; null if never. */
  lastSeen: number | null;
  /** How the last session ended: disconnect, will, takeover, error, shutdown; null while never closed. */
  lastClose: string | null;
  firmware: string | null;
  codec: CodecName | null;
  caps: DeviceCaps;
}

/** Reads and writes the device_meta rows about presence. */
export class PresenceStore {
  /** The profile is read on every message (capabilities gate deltas and streams): cached, rewritten on hello. */
  #profile: DeviceProfile | undefined;
  /** The latest time the device was heard, in memory; the stored row may lag it by up to LAST_SEEN_PERSIST_MS. */
  #heardAt: number | null = null;
  /** When last_seen was last written in this agent's lifetime; null: the next touch writes. */
  #lastSeenWrittenAt: number | null = null;

  constructor(
    private readonly sql: SqlTag,
    private readonly now: () => number,
  ) {}

  private getMeta(key: string): Value {
    const rows = this.sql<{ value: Uint8Array | null }>`SELECT value FROM device_meta WHERE key = ${key}`;
    return rows.length > 0 ? decodeValue(rows[0].value) : null;
  }

  private setMeta(key: string, value: Value): void {
    this.sql`INSERT INTO device_meta (key, value) VALUES (${key}, ${encodeValue(value)})
      ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
  }

  /** Records a hello; unknown or malformed fields fall back to defaults. */
  recordHello(frame: HelloFrame): DeviceProfile {
    const codec = CODEC_NAMES.find((c) => c === frame.codec) ?? null;
    const maxFrame =
      typeof frame.maxFrame === "number" && Number.isFinite(frame.maxFrame) && frame.maxFrame > 0
        ? frame.maxFrame
        : null;
    const profile: ValueMap = {
      firmware: typeof frame.fw === "string" ? cutText(frame.fw, MAX_FIRMWARE_LENGTH) : null,
      codec,
      sync: typeof frame.sync === "boolean" ? frame.sync : DEFAULT_CAPS.sync,
      stream: typeof frame.stream === "boolean" ? frame.stream : DEFAULT_CAPS.stream,
      maxFrame,
      helloAt: this.now(),
    };
    this.setMeta("profile", profile);
    this.#profile = undefined;
    return this.profile();
  }

  /** Forgets the cached profile (after a rolled-back event). */
  invalidate(): void {
    this.#profile = undefined;
    // The failed event's last_seen write may have rolled back with it: write on the next touch.
    this.#lastSeenWrittenAt = null;
  }

  profile(): DeviceProfile {
    this.#profile ??= this.readProfile();
    return { ...this.#profile, caps: { ...this.#profile.caps } };
  }

  private readProfile(): DeviceProfile {
    const raw = this.getMeta("profile");
    if (!isValueMap(raw)) return { firmware: null, codec: null, caps: { ...DEFAULT_CAPS }, helloAt: null };
    return {
      firmware: typeof raw.firmware === "string" ? raw.firmware : null,
      codec: CODEC_NAMES.find((c) => c === raw.codec) ?? null,
      caps: {
        sync: typeof raw.sync === "boolean" ? raw.sync : DEFAULT_CAPS.sync,
        stream: typeof raw.stream === "boolean" ? raw.stream : DEFAULT_CAPS.stream,
        maxFrame: typeof raw.maxFrame === "number" ? raw.maxFrame : null,
      },
      helloAt: typeof raw.helloAt === "number" ? raw.helloAt : null,
    };
  }

  /** Something was heard from the device now: `heard()` and `persistHeard()` in one. */
  touch(): void {
    this.heard();
    this.persistHeard();
  }

  /** Something was heard from the device now. In memory only: `status()` reports it; `persistHeard` stores it. */
  heard(): void {
    this.#heardAt = this.now();
  }

  /**
   * Stores the time last heard, at most once per LAST_SEEN_PERSIST_MS: writing it on every message put an extra row
   * update (a WAL page) into every telemetry commit, about a sixth of the WAL a fleet writes. `status()` reports the
   * in-memory time, so only a hibernated agent's row can lag, by less than that.
   */
  persistHeard(): void {
    const heardAt = this.#heardAt;
    if (heardAt === null) return;
    // A negative interval is a wall clock stepped back: write now, or the row would keep the time before the step
    // (and `status` would prefer it as the later one) until the clock caught up, possibly hours later.
    const sinceWrite = this.#lastSeenWrittenAt === null ? Number.POSITIVE_INFINITY : heardAt - this.#lastSeenWrittenAt;
    if (sinceWrite >= 0 && sinceWrite < LAST_SEEN_PERSIST_MS) return;
    this.setMeta("last_seen", heardAt);
    this.#lastSeenWrittenAt = heardAt;
  }

  /** A device session ended with `reason`. */
  recordClose(reason: string): void {
    const now = this.now();
    this.#heardAt = now;
    this.#lastSeenWrittenAt = now;
    this.setMeta("last_seen", now);
    this.setMeta("last_close", reason);
  }

  status(openConnections: number): DeviceStatus {
    const profile = this.profile();
    const stored = this.getMeta("last_seen");
    const lastSeen =
      typeof stored === "number" && (this.#heardAt === null || stored > this.#heardAt) ? stored : this.#heardAt;
    const lastClose = this.getMeta("last_close");
    return {
      online: openConnections > 0,
      connections: openConnections,
      lastSeen: typeof lastSeen === "number" ? lastSeen : null,
      lastClose: typeof lastClose === "string" ? lastClose : null,
      firmware: profile.firmware,
      codec: profile.codec,
      caps: profile.caps,
    };
  }
}
