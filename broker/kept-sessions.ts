/**
 * The registered devices whose persistent session (clean: false) aedes' store may hold, each with the `recordId` of
 * the registry record its secret was verified against. aedes' in-memory store cannot list the client ids it keeps
 * sessions for, and a device removed by another process (`agent-bridge devices rm`) while offline leaves its session
 * there: a device provisioned again under the id would resume it. The broker sees every session open and every clear
 * of a session, so it notes the ids itself. Bounded by the registered devices that keep a session: an id is noted when
 * a persistent session of it opens, and forgotten when a clean one opens (aedes drops the session then) or the broker
 * drops the session. Anonymous sessions (no record) are not noted: the registry watch leaves them alone.
 */
import type { DeviceConnection } from "./connection.ts";

/** A device whose persistent session aedes' store may hold, and the record that session belongs to. */
export interface KeptSession {
  deviceId: string;
  recordId: string;
}

export class KeptSessions {
  readonly #recordIds = new Map<string, string>();

  /** A session of the device opened: noted when it is a registered device's persistent one, else forgotten. */
  opened(connection: Pick<DeviceConnection, "deviceId" | "clean" | "recordId">): void {
    if (connection.clean || connection.recordId === undefined) this.#recordIds.delete(connection.deviceId);
    else this.#recordIds.set(connection.deviceId, connection.recordId);
  }

  /** True when aedes may hold a session of the device that belongs to another record than `recordId`. */
  heldForOtherRecord(deviceId: string, recordId: string | undefined): boolean {
    const kept = this.#recordIds.get(deviceId);
    return kept !== undefined && kept !== recordId;
  }

  /** The device's session was dropped from aedes' store. */
  forget(deviceId: string): void {
    this.#recordIds.delete(deviceId);
  }

  /** A copy, so a caller may forget entries while it walks them. */
  list(): KeptSession[] {
    return Array.from(this.#recordIds, ([deviceId, recordId]) => ({ deviceId, recordId }));
  }
}
