/**
 * What firmware that sends readings by position (`rv`) does when the agent answers
 * `BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN` (docs/protocol.md, "Metric aliases"): the agent no longer knows the alias
 * table (its data was wiped, or the hello that carried the table never reached it), so the device says hello again
 * with `metrics` and then resends what was refused. Without this every later reading is refused while the device
 * stays connected.
 *
 * Which frame was refused: telemetry has no request id, so the error cannot name it. The bridge handles a connection's
 * messages in order and writes a refused message's error before its PUBACK, so the refused frame is the oldest
 * telemetry in flight that no earlier error claimed. With no telemetry in flight (a broker that acknowledges before
 * its agent has seen the message) the device cannot tell, and only says hello again.
 */
import type { FleetMetrics } from "../stats.ts";
import type { Outgoing } from "./outbox.ts";
import type { Publisher } from "./publisher.ts";

export class AliasRecovery {
  /** Frames refused whose PUBACK has not come yet: that PUBACK does not mean stored. */
  readonly #refused = new Set<Outgoing>();
  /**
   * A hello sent on the error awaits its PUBACK. Until then, errors belong to the same burst: every frame sent
   * before that hello is handled before it, and PUBACKs come in order, so errors that arrive before the hello's
   * PUBACK are for those frames. One hello per burst, not one per refused frame.
   */
  #helloInFlight = false;

  constructor(
    private readonly publisher: Publisher,
    private readonly metrics: FleetMetrics,
    /** The device's hello, with its alias table, encoded for sending. */
    private readonly hello: () => Outgoing,
  ) {}

  /** `down/error BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN` arrived. */
  aliasesUnknown(): void {
    const refused = this.publisher.oldestInflight((m) => m.kind === "telemetry" && !this.#refused.has(m));
    if (refused) this.#refused.add(refused);
    if (this.#helloInFlight) return;
    this.#helloInFlight = true;
    this.metrics.counters.aliasHellos++;
    // Ahead of the buffer: readings queued behind it then travel after the table they need.
    this.publisher.sendFirst(this.hello());
  }

  /**
   * A message got its PUBACK. A hello's ends the burst: an error after it means the agent lost the table again. True
   * when it was refused telemetry: that is not stored, so it goes back in the queue (sent after the hello that went
   * out when its error came) and its PUBACK must not be booked as stored telemetry.
   */
  acked(message: Outgoing): boolean {
    if (message.kind === "hello") this.#helloInFlight = false;
    if (!this.#refused.delete(message)) return false;
    this.metrics.counters.telemetryResent++;
    this.publisher.queue({ ...message, dup: false, sentMs: 0 });
    return true;
  }

  /**
   * The connection ended. Refused frames still unacknowledged are retransmitted after the next connection's hello,
   * which carries the table, so they need nothing more; a hello in flight is gone with its connection.
   */
  connectionLost(): void {
    this.#refused.clear();
    this.#helloInFlight = false;
  }
}
