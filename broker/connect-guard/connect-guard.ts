/**
 * What stands between a CONNECT and a secret verification (docs/broker.md, "CONNECT floods"): a source address that
 * failed too often is refused without verification for a while, and verifications run a few at a time with a bounded
 * queue, so a flood of bogus CONNECTs cannot hold legitimate devices behind unbounded scrypt work. An address takes
 * at most as many places in that queue as it has failures left; its further CONNECTs wait in its own line (devices
 * behind one NAT after a restart) and move on as its verifications end. Every CONNECT that needs a verification is
 * treated alike whether its device id exists or not, so neither the refusals nor their timing tell which ids exist.
 */
import type { Clock } from "../clock.ts";
import { AddressFailures } from "./address-failures.ts";
import { addressKey } from "./address-key.ts";
import { AddressLines } from "./address-lines.ts";
import { type ReleaseSlot, VerificationSlots } from "./verification-slots.ts";

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

const SERVER_BUSY: VerificationTicket = { status: "refused", reason: "server-busy" };
const ADDRESS_BLOCKED: VerificationTicket = { status: "refused", reason: "address-blocked" };
const ABANDONED: VerificationTicket = { status: "abandoned" };

/** A CONNECT waiting in its address's line; `answer` settles the promise `admit` returned for it. */
interface Waiter {
  stillWanted(): boolean;
  answer(ticket: VerificationTicket | Promise<VerificationTicket>): void;
}

export class ConnectGuard {
  readonly #slots: VerificationSlots;
  readonly #failures: AddressFailures;
  readonly #lines: AddressLines<Waiter>;

  constructor(limits: ConnectGuardLimits, clock: Clock) {
    this.#slots = new VerificationSlots(limits.maxConcurrentVerifications, limits.maxQueuedVerifications);
    this.#failures = new AddressFailures({
      capacity: limits.authFailuresPerAddress,
      refillMs: limits.authFailureRefillMs,
      blockMs: limits.authBlockMs,
      clock,
      maxAddresses: MAX_TRACKED_ADDRESSES,
    });
    // One address's line is bounded like the shared queue: as many CONNECTs as may wait for a verification at all.
    this.#lines = new AddressLines(limits.maxQueuedVerifications);
  }

  /** True while CONNECTs from `remoteAddress` are refused without verification. */
  isBlocked(remoteAddress: string): boolean {
    return this.#failures.blockedUntil(addressKey(remoteAddress)) !== undefined;
  }

  /**
   * Waits for a turn to verify a secret for a CONNECT from `remoteAddress`, or refuses at once. A CONNECT beyond its
   * address's failures left first waits in that address's line, in arrival order. `stillWanted` is asked when a turn
   * comes: a connection that went away meanwhile costs no verification.
   */
  admit(remoteAddress: string, stillWanted: () => boolean): Promise<VerificationTicket> {
    const key = addressKey(remoteAddress);
    if (this.#failures.blockedUntil(key) !== undefined) return Promise.resolve(ADDRESS_BLOCKED);
    // Behind those of its address already waiting, even when a place has come free meanwhile: arrival order.
    if (this.#lines.length(key) === 0 && this.#failures.begin(key)) return this.#verify(key, stillWanted);
    // Nothing of this address running or queued: no end would ever move its line on.
    if (!this.#failures.hasPending(key)) return Promise.resolve(SERVER_BUSY);
    return new Promise((answer) => {
      const waiter: Waiter = { stillWanted, answer };
      if (!this.#lines.join(key, waiter, (gone) => gone.answer(ABANDONED))) answer(SERVER_BUSY);
    });
  }

  /** Verifications running and waiting now, CONNECTs waiting behind their address, and addresses remembered. */
  get load(): { running: number; waiting: number; held: number; addresses: number } {
    return {
      running: this.#slots.running,
      waiting: this.#slots.waiting,
      held: this.#lines.size,
      addresses: this.#failures.size,
    };
  }

  /** Queues a verification `begin` counted for the address. Never moves a line on itself (no re-entry). */
  #verify(key: string, stillWanted: () => boolean): Promise<VerificationTicket> {
    const turn = this.#slots.acquire();
    if (turn === undefined) {
      this.#failures.end(key, false);
      return Promise.resolve(SERVER_BUSY);
    }
    return this.#whenTurnComes(key, turn, stillWanted);
  }

  async #whenTurnComes(
    key: string,
    turn: Promise<ReleaseSlot>,
    stillWanted: () => boolean,
  ): Promise<VerificationTicket> {
    const release = await turn;
    let finished = false;
    const finish = (failed: boolean): void => {
      if (finished) return;
      finished = true;
      release();
      this.#failures.end(key, failed);
      this.#moveLineOn(key);
    };
    // Blocked while it waited in the shared queue: refused without a verification, like everything from there.
    if (this.#failures.blockedUntil(key) !== undefined) {
      finish(false);
      return ADDRESS_BLOCKED;
    }
    if (!stillWanted()) {
      finish(false);
      return ABANDONED;
    }
    return { status: "granted", finish };
  }

  /**
   * After a verification of the address ended: its line moves into the shared queue while the address has failures
   * left to spare; a blocked address's line is refused at once; those gone meanwhile leave without costing anything.
   */
  #moveLineOn(key: string): void {
    for (let next = this.#lines.head(key); next !== undefined; next = this.#lines.head(key)) {
      if (this.#failures.blockedUntil(key) !== undefined) {
        for (const waiter of this.#lines.drain(key)) waiter.answer(ADDRESS_BLOCKED);
        return;
      }
      if (!next.stillWanted()) {
        this.#lines.shift(key);
        next.answer(ABANDONED);
      } else if (this.#failures.begin(key)) {
        this.#lines.shift(key);
        next.answer(this.#verify(key, next.stillWanted));
      } else {
        // Waits for the next end of this address's verifications; with none left, none would come.
        if (!this.#failures.hasPending(key)) for (const waiter of this.#lines.drain(key)) waiter.answer(SERVER_BUSY);
        return;
      }
    }
  }
}
