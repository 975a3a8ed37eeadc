/**
 * What stands between a CONNECT and a secret verification (docs/broker.md, "CONNECT floods"): a source address that
 * failed too often is refused without verification for a while, and verifications run a few at a time with a bounded
 * queue, so a flood of bogus CONNECTs cannot hold legitimate devices behind unbounded scrypt work. Every CONNECT that
 * needs a verification is treated alike whether its device id exists or not, so neither the refusals nor their timing
 * tell which ids exist.
 */
import type { Clock } from "../clock.ts";
import { AddressFailures } from "./address-failures.ts";
import { addressKey } from "./address-key.ts";
import { VerificationSlots } from "./verification-slots.ts";

/** The limits the guard applies (a part of the broker's `limits`). */
export interface ConnectGuardLimits {
  maxConcurrentVerifications: number;
  maxQueuedVerifications: number;
  authFailuresPerAddress: number;
  authFailureRefillMs: number;
  authBlockMs: number;
}

/**
 * The answer to "may this CONNECT verify its secret now?". `granted`: verify, then call `finish` exactly once (with
 * `failed` true when the secret was wrong or the device unknown). `refused`: answer the CONNECT without verifying.
 * `abandoned`: the connection went away while it waited; nothing is owed to it.
 */
export type VerificationTicket =
  | { status: "granted"; finish(failed: boolean): void }
  | { status: "refused"; reason: "server-busy" | "address-blocked" }
  | { status: "abandoned" };

/** Addresses whose failures are remembered at most (a few hundred bytes each). */
const MAX_TRACKED_ADDRESSES = 65_536;

export class ConnectGuard {
  readonly #slots: VerificationSlots;
  readonly #failures: AddressFailures;

  constructor(limits: ConnectGuardLimits, clock: Clock) {
    this.#slots = new VerificationSlots(limits.maxConcurrentVerifications, limits.maxQueuedVerifications);
    this.#failures = new AddressFailures({
      capacity: limits.authFailuresPerAddress,
      refillMs: limits.authFailureRefillMs,
      blockMs: limits.authBlockMs,
      clock,
      maxAddresses: MAX_TRACKED_ADDRESSES,
    });
  }

  /** True while CONNECTs from `remoteAddress` are refused without verification. */
  isBlocked(remoteAddress: string): boolean {
    return this.#failures.blockedUntil(addressKey(remoteAddress)) !== undefined;
  }

  /**
   * Waits for a turn to verify a secret for a CONNECT from `remoteAddress`, or refuses at once. `stillWanted` is asked
   * when the turn comes: a connection that went away meanwhile costs no verification.
   */
  async admit(remoteAddress: string, stillWanted: () => boolean): Promise<VerificationTicket> {
    const key = addressKey(remoteAddress);
    if (this.#failures.blockedUntil(key) !== undefined) return { status: "refused", reason: "address-blocked" };
    if (!this.#failures.begin(key)) return { status: "refused", reason: "server-busy" };
    const turn = this.#slots.acquire();
    if (turn === undefined) {
      this.#failures.end(key, false);
      return { status: "refused", reason: "server-busy" };
    }
    const release = await turn;
    const giveBack = (failed: boolean): void => {
      release();
      this.#failures.end(key, failed);
    };
    if (!stillWanted()) {
      giveBack(false);
      return { status: "abandoned" };
    }
    let finished = false;
    return {
      status: "granted",
      finish: (failed) => {
        if (finished) return;
        finished = true;
        giveBack(failed);
      },
    };
  }

  /** Verifications running and waiting now, and addresses remembered (for tests and diagnostics). */
  get load(): { running: number; waiting: number; addresses: number } {
    return { running: this.#slots.running, waiting: this.#slots.waiting, addresses: this.#failures.size };
  }
}
