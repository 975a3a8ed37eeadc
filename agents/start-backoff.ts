import type { Logger } from "pino";
import { BridgeError } from "../errors/bridge-error.ts";
import { AGENT_ERRORS } from "./errors.ts";
import type { Clock } from "./types.ts";

/**
 * Wait before the next wake of an agent whose onStart timed out twice in a row, ms; it doubles with each further
 * timeout in a row, up to the max (the failed alarm's backoff, runtime-alarms.ts).
 */
export const START_RETRY_FIRST_MS = 1_000;
export const START_RETRY_MAX_MS = 300_000;

/** The wait before the next wake after `failures` onStart timeouts in a row: none after the first (see StartBackoff). */
export function startRetryDelayMs(failures: number): number {
  return failures <= 1 ? 0 : Math.min(START_RETRY_MAX_MS, START_RETRY_FIRST_MS * 2 ** (failures - 2));
}

interface StartFailures {
  /** onStart timeouts in a row. */
  failures: number;
  /** Before this (the runtime clock's monotonicNow) the agent is not woken: a step of the wall clock leaves it be. */
  until: number;
  /** The last timeout (BRIDGE_ERR_CALLBACK_TIMEOUT): the cause of each refusal. */
  cause: unknown;
  /** Events refused since the last log line. */
  refused: number;
}

/**
 * Agents whose onStart does not settle. Every wake runs onStart, and an onStart past callbackTimeoutMs retires its
 * instance (retirement.ts), whose successor runs onStart again at once: with one that hangs every time, each wake
 * hung, retired and woke the next, forever. Every event waiting for the agent went from one instance to the next and
 * never got an answer (callers, devices, alarms), its onError was never told (only a started instance can be), each
 * turn logged a line, and the failures handed from one instance to the next piled up in memory.
 *
 * So after the first timeout the fresh instance is tried at once, as before (a hang that happens once costs one time
 * limit, and the waiting events run on the next instance); after the second in a row, the agent is not woken for
 * 1 s, doubling with each further timeout up to 5 min. Meanwhile a wake is refused without running anything: the
 * events that would wake it fail with BRIDGE_ERR_AGENT_START_TIMEOUT (those that waited through the two timeouts
 * too), alarms and queue flushes are set again with their own backoff (runtime-alarms.ts), and the events only the
 * mailbox holds (a task's report, the handover of the retired instance's failures) wait for the backoff's end,
 * which wakes the agent for the next try. A start whose onStart settles (resolves or throws) ends the run: the agent
 * works again, and the handover tells its onError of the timeouts. One warn line per step, with the events refused
 * since the step before; none per refused event. Kept in memory only: a restart starts again from the first try.
 */
export class StartBackoff {
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #agents = new Map<string, StartFailures>();

  constructor(clock: Clock, logger: Logger) {
    this.#clock = clock;
    this.#logger = logger;
  }

  /** The agent's onStart did not settle within callbackTimeoutMs (`cause`): its instance was retired in its start. */
  timedOut(agentId: string, cause: unknown): void {
    const previous = this.#agents.get(agentId);
    const failures = (previous?.failures ?? 0) + 1;
    const delayMs = startRetryDelayMs(failures);
    this.#agents.set(agentId, { failures, until: this.#clock.monotonicNow() + delayMs, cause, refused: 0 });
    if (delayMs === 0) return;
    this.#logger.warn(
      { agent: agentId, failures, retryInMs: delayMs, refused: previous?.refused ?? 0 },
      "onStart did not settle within callbackTimeoutMs again: the agent is not woken until the retry, and events " +
        "for it fail with BRIDGE_ERR_AGENT_START_TIMEOUT meanwhile",
    );
  }

  /** The agent's onStart settled: the run of timeouts, if any, ended. */
  started(agentId: string): void {
    if (this.#agents.size === 0) return;
    const previous = this.#agents.get(agentId);
    if (previous === undefined) return;
    this.#agents.delete(agentId);
    if (previous.failures > 1) {
      this.#logger.info(
        { agent: agentId, failures: previous.failures, refused: previous.refused },
        "onStart settles again: the agent is started",
      );
    }
  }

  /**
   * The error a wake of the agent fails with now (BRIDGE_ERR_AGENT_START_TIMEOUT, `cause`: the last timeout), or null
   * when a wake may be tried. Counts the refusal for the next log line.
   */
  refusal(agentId: string): BridgeError | null {
    const entry = this.#inForce(agentId);
    if (entry === undefined) return null;
    entry.refused++;
    const retryInMs = Math.ceil(entry.until - this.#clock.monotonicNow());
    return new BridgeError(
      AGENT_ERRORS.AGENT_START_TIMEOUT,
      `agent ${agentId} is not started: its onStart did not settle within callbackTimeoutMs ${entry.failures} ` +
        `times in a row; the next try is in ${retryInMs} ms`,
      { agent: agentId, failures: entry.failures, retryInMs },
      { cause: entry.cause },
    );
  }

  /** How long until the agent may be woken again, ms (0: it may be now). */
  remainingMs(agentId: string): number {
    const entry = this.#inForce(agentId);
    return entry === undefined ? 0 : entry.until - this.#clock.monotonicNow();
  }

  /** The agent was destroyed: one made again under its id starts with a clean slate. */
  forget(agentId: string): void {
    if (this.#agents.size > 0) this.#agents.delete(agentId);
  }

  /** The agent's entry while its backoff holds. */
  #inForce(agentId: string): StartFailures | undefined {
    if (this.#agents.size === 0) return undefined;
    const entry = this.#agents.get(agentId);
    if (entry === undefined) return undefined;
    return this.#clock.monotonicNow() < entry.until ? entry : undefined;
  }
}
