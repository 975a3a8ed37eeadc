/**
 * How one device's connections count in the fleet's metrics: every attempt; a refused CONNACK, by its return code; an
 * accepted one, and a reconnect when an earlier connection of the device came online (a setup that failed after its
 * CONNACK, a refused subscription or a hello never acknowledged, is retried, not reconnected); online only from the
 * hello's PUBACK to the close, as the fleet's `online` event means it; and every close, a close before any CONNACK
 * counted as a failed attempt unless the device ended it itself. Apart from the connection loop (virtual-device.ts),
 * which decides what happens next, because these rules are what the progress line and the report show.
 */
import type { CloseReason } from "../mqtt/lean-connection.ts";
import type { FleetMetrics } from "../stats.ts";

export class ConnectionCounters {
  /** A CONNACK accepted the current connection. */
  #sessionUp = false;
  /** An earlier connection of this device came online: the next accepted one is a reconnect. */
  #onlineBefore = false;
  /** This connection counts in `metrics.online` (from the hello's PUBACK to its close). */
  #countedOnline = false;

  constructor(private readonly metrics: FleetMetrics) {}

  /** A connection attempt begins. */
  attempt(): void {
    this.metrics.counters.connectAttempts++;
  }

  /** A CONNACK arrived; true when it accepted the connection (return code 0). */
  connack(returnCode: number): boolean {
    const m = this.metrics;
    if (returnCode !== 0) {
      m.counters.connectRefused++;
      m.refusalCodes.set(returnCode, (m.refusalCodes.get(returnCode) ?? 0) + 1);
      return false;
    }
    m.counters.connects++;
    if (this.#onlineBefore) m.counters.reconnects++;
    this.#sessionUp = true;
    return true;
  }

  /** The device is online: subscribed and greeted, not merely accepted by a CONNACK. */
  online(): void {
    this.metrics.online++;
    this.#countedOnline = true;
    this.#onlineBefore = true;
  }

  /** The connection closed, for `reason`. */
  closed(reason: CloseReason): void {
    const m = this.metrics;
    const wasConnected = this.#sessionUp;
    this.#sessionUp = false;
    if (this.#countedOnline) m.online--;
    this.#countedOnline = false;
    m.counters.disconnects++;
    if (reason.kind === "remote") m.counters.serverCloses++;
    // Before a CONNACK, anything but our own refusal handling (connack-N) or shutdown is a failed attempt.
    if (!wasConnected && (reason.kind !== "local" || reason.reason === "connect-timeout")) m.counters.connectErrors++;
  }
}
