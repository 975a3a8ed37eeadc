/**
 * Ends the live sessions of devices that another process removed from the registry. `agent-bridge devices rm` is a
 * separate process that deletes the record in `registry.db` (shared through SQLite WAL); it cannot reach the running
 * bridge's sessions, and a removed device would otherwise stay connected until it next reconnected and was refused.
 * Every `intervalMs` the broker asks SQLite whether another connection committed to the file (`PRAGMA data_version`,
 * one cheap statement); only then does it look up the registered devices with a live session, and ends those whose
 * record is gone or is not the one their secret was verified against (removed and added again, with a new secret: its
 * `recordId` differs, however soon it came back). A device that connected anonymously (no record when it connected)
 * is left alone. The bridge's own removals (the operator API's delete) end the session themselves and do not move the
 * version. A rotation is not looked for: the API's own ends the sessions it is asked to (`endSessions`), and one
 * without that keeps them on purpose (a new secret may be delivered over them).
 */
import type { Clock } from "./clock.ts";
import type { DeviceConnection } from "./connection.ts";
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
   * whose record is gone. Returns the ids of the devices whose sessions it ended.
   */
  check(): string[] {
    const version = this.#readVersion();
    if (version === null || version === this.#version) return [];
    this.#version = version;
    const ended: string[] = [];
    const { registry, sessions, logger, endSession } = this.#o;
    for (const connection of sessions.liveSessions()) {
      if (!connection.registered || connection.closed) continue;
      let removed: boolean;
      try {
        // Removed, or removed and added again (a new secret, so a leaked one stops working): a record the session's
        // secret was not verified against.
        const record = registry.get(connection.deviceId);
        removed = record === undefined || record.recordId !== connection.recordId;
      } catch (err) {
        // Busy or failing registry: keep the session; the version is looked at again (and differs) next time.
        this.#version = null;
        logger.warn({ err }, "registry check failed; devices removed meanwhile keep their session until the next one");
        return ended;
      }
      if (!removed) continue;
      logger.warn(
        { device: connection.deviceId },
        "device removed (or removed and added again) by another process: its session is ended",
      );
      endSession(connection);
      ended.push(connection.deviceId);
    }
    return ended;
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
