/**
 * Ends the live sessions of devices that another process removed from the registry. `agent-bridge devices rm` is a
 * separate process that deletes the record in `registry.db` (shared through SQLite WAL); it cannot reach the running
 * bridge's sessions, and a removed device would otherwise stay connected until it next reconnected and was refused.
 * Every `intervalMs` the broker asks SQLite whether another connection committed to the file (`PRAGMA data_version`,
 * one cheap statement); only then does it look up the registered devices with a live session, and ends those whose
 * record is gone or is not the one their secret was verified against (removed and added again, with a new secret: its
 * `recordId` differs, however soon it came back). A device that connected anonymously (no record when it connected)
 * is left alone. The same look drops the persistent sessions (clean: false) that aedes keeps for offline devices whose
 * record is gone or replaced (kept-sessions.ts): a device provisioned again under the id must resume nothing of the
 * removed one, as when it was removed while online (its ended session is dropped as it ends). The bridge's own
 * removals (the operator API's delete) end and drop the session themselves and do not move the version. A rotation
 * is not looked for: the API's own ends the sessions it is asked to (`endSessions`), and one without that keeps them
 * on purpose (a new secret may be delivered over them).
 */
import type { Clock } from "./clock.ts";
import type { DeviceConnection } from "./connection.ts";
import type { KeptSessions } from "./kept-sessions.ts";
import type { BrokerLogger } from "./options.ts";
import type { DeviceRegistry } from "./registry/index.ts";
import type { SessionManager } from "./sessions.ts";

export interface RegistryWatchOptions {
  registry: DeviceRegistry;
  sessions: SessionManager;
  clock: Clock;
  /** How often to look, ms; 0 never looks. */
  intervalMs: number;
  logger: BrokerLogger;
  /** Ends one session (the broker closes it from the server side). */
  endSession: (connection: DeviceConnection) => void;
  /** The devices whose persistent session aedes' store may hold. */
  kept: Pick<KeptSessions, "list">;
  /** Drops one offline device's persistent session from aedes' store (and forgets it in `kept`). */
  dropKept: (deviceId: string) => void;
}

export class RegistryWatch {
  readonly #o: RegistryWatchOptions;
  #timer: unknown = null;
  #version: number | null = null;
  #running = false;

  constructor(options: RegistryWatchOptions) {
    this.#o = options;
  }

  /** Starts looking every `intervalMs` (nothing when it is 0). */
  start(): void {
    if (this.#running || this.#o.intervalMs === 0) return;
    this.#running = true;
    this.#version = this.#readVersion();
    this.#arm();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== null) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  /**
   * One look: when another process changed the registry since the last one, ends the sessions of registered devices
   * whose record is gone (or replaced), and drops the persistent sessions aedes keeps for such devices while they are
   * offline. Returns the ids of the devices whose live sessions it ended.
   */
  check(): string[] {
    const version = this.#readVersion();
    if (version === null || version === this.#version) return [];
    this.#version = version;
    const ended: string[] = [];
    const live = new Set<string>();
    const { sessions, logger, endSession } = this.#o;
    for (const connection of sessions.liveSessions()) {
      live.add(connection.deviceId);
      if (!connection.registered || connection.closed) continue;
      // Removed, or removed and added again (a new secret, so a leaked one stops working): a record the session's
      // secret was not verified against.
      const removed = this.#removed(connection.deviceId, connection.recordId);
      if (removed === undefined) return ended;
      if (!removed) continue;
      logger.warn(
        { device: connection.deviceId },
        "device removed (or removed and added again) by another process: its session is ended",
      );
      endSession(connection);
      ended.push(connection.deviceId);
    }
    this.#dropKept(live);
    return ended;
  }

  /**
   * Drops the kept sessions of offline devices whose record is gone or replaced. A device with a live session is left
   * to it: a session ended as removed drops what it kept as it ends, and one opening for a new record drops the old
   * record's before its CONNACK (offline-down-queue.ts). A session still ending for another reason (its own
   * disconnect) may yet add to the store, so then the next look comes whether or not the registry changes again.
   */
  #dropKept(live: ReadonlySet<string>): void {
    for (const { deviceId, recordId } of this.#o.kept.list()) {
      const removed = this.#removed(deviceId, recordId);
      if (removed === undefined) return;
      if (!removed) continue;
      if (live.has(deviceId)) {
        this.#version = null;
        continue;
      }
      this.#o.logger.info(
        { device: deviceId },
        "device removed (or removed and added again) by another process while offline: its kept session is dropped",
      );
      this.#o.dropKept(deviceId);
    }
  }

  /**
   * True when the device's record is gone or is not the one with `recordId`. Undefined when the registry fails
   * (busy or failing): nothing is ended or dropped then, and the version is looked at again (and differs) next time.
   */
  #removed(deviceId: string, recordId: string | undefined): boolean | undefined {
    try {
      const record = this.#o.registry.get(deviceId);
      return record === undefined || record.recordId !== recordId;
    } catch (err) {
      this.#version = null;
      this.#o.logger.warn(
        { err },
        "registry check failed; devices removed meanwhile keep their session until the next one",
      );
      return undefined;
    }
  }

  #readVersion(): number | null {
    try {
      return this.#o.registry.externalVersion();
    } catch (err) {
      this.#o.logger.warn({ err }, "cannot read the registry's change counter");
      return null;
    }
  }

  #arm(): void {
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = null;
      if (!this.#running) return;
      try {
        this.check();
      } catch (err) {
        // A fault in a timer would end the process; the next look tries again.
        this.#o.logger.error({ err }, "registry check failed");
      }
      this.#arm();
    }, this.#o.intervalMs);
  }
}
