/**
 * The warnings of refused CONNECTs. A device in a reconnect loop gets the same refusal again and again (its agent
 * cannot start and backs off for up to 5 min, its record was removed or its secret rotated, its last will is not
 * allowed, the broker is full), a flood gets it by the thousand: each is logged at most once per interval per device
 * and kind (throttled-warning-per-key.ts), or once per interval for the whole broker where the cause is the broker's
 * (full, busy, an address blocked), with `count`, the refusals since the last line. The counters (`authFailures`,
 * `limitBreaches`) are the callers' and count every refusal.
 */
import type { AuthRefusal } from "../auth.ts";
import type { Clock } from "../clock.ts";
import type { BrokerLogger } from "../options.ts";
import { ThrottledWarning } from "../throttled-warning.ts";
import { ThrottledWarningPerKey } from "../throttled-warning-per-key.ts";

export const OPEN_REFUSED_WARNING = "agent refused the connection";
export const CONNECTION_LIMIT_WARNING = "connection limit reached";

/** The per-device warnings' keys are devices: their shared line past the key bound says so. */
const BY_DEVICE = { keysAre: "devices" } as const;

export class ConnectRefusalWarnings {
  /** Refusals whose cause is the broker's state, not the device: one line for all devices. */
  readonly #broker: Partial<Record<string, ThrottledWarning>>;
  /** One per refusal message (a fixed set, auth.ts), keyed by device. */
  readonly #byMessage = new Map<string, ThrottledWarningPerKey>();
  readonly #openRefused: ThrottledWarningPerKey;
  readonly #connectionLimit: ThrottledWarning;

  constructor(
    private readonly logger: BrokerLogger,
    private readonly clock: Clock,
  ) {
    this.#broker = {
      "server-busy": new ThrottledWarning(logger, clock, "CONNECTs refused: too many secret verifications waiting"),
      "address-blocked": new ThrottledWarning(
        logger,
        clock,
        "CONNECTs refused: source address blocked after too many failed authentications",
      ),
    };
    this.#openRefused = new ThrottledWarningPerKey(logger, clock, OPEN_REFUSED_WARNING, BY_DEVICE);
    this.#connectionLimit = new ThrottledWarning(logger, clock, CONNECTION_LIMIT_WARNING);
  }

  /** A CONNECT refused by authentication (`device` as the CONNECT named it, cut to 64 characters). */
  authRefused(refusal: AuthRefusal, device: string, remoteAddress: string): void {
    const facts = { device, code: refusal.code, remoteAddress };
    const broker = this.#broker[refusal.reason];
    if (broker !== undefined) {
      broker.note(facts);
      return;
    }
    let warning = this.#byMessage.get(refusal.message);
    if (warning === undefined) {
      warning = new ThrottledWarningPerKey(this.logger, this.clock, `device refused: ${refusal.message}`, BY_DEVICE);
      this.#byMessage.set(refusal.message, warning);
    }
    warning.note(device, facts);
  }

  /** A CONNECT refused because `maxConnections` sessions are open: the broker is full, whichever device asks. */
  connectionLimit(device: string, max: number): void {
    this.#connectionLimit.note({ device, max });
  }

  /** A CONNECT whose open the agent host failed with `code` (an agent backing off its start, an onConnect that threw). */
  openRefused(device: string, code: string): void {
    // The code in the key: a device whose refusal changes cause gets a line for the new one at once.
    this.#openRefused.note(`${device}\u0000${code}`, { device, code });
  }
}
