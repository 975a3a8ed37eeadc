import type { Logger } from "pino";
import type { Value } from "../codecs/frames.ts";
import { BackoffTimer } from "./backoff-timer.ts";
import type { RuntimeDb } from "./runtime-db.ts";
import type { SqlRunner } from "./sql-runner.ts";
import type { Clock, RuntimeObserver } from "./types.ts";
import { decodeValue } from "./value-codec.ts";

/**
 * First wait before the entries of an agent whose directory index write runtime.db refused are written again, ms; it
 * doubles with each retry that fails, up to the max, as for a refused alarm write (alarm-rows.ts): a lasting fault
 * costs one write a minute, not a loop.
 */
export const DIRECTORY_RETRY_FIRST_MS = 1_000;
export const DIRECTORY_RETRY_MAX_MS = 60_000;

/** One entry of the fleet directory, as an agent's own rows and the runtime's index hold it. */
export interface DirectoryEntry {
  kind: string;
  key: string;
  value: Value;
}

/** The agent's own directory entries (its `_bridge_directory` rows), what its index in runtime.db should list. */
export function readDirectoryEntries(sql: SqlRunner): DirectoryEntry[] {
  return sql
    .all<{ kind: string; key: string; value: Uint8Array }>("SELECT kind, key, value FROM _bridge_directory")
    .map((r) => ({ kind: r.kind, key: r.key, value: decodeValue(r.value) as Value }));
}

/**
 * The runtime's index of the fleet directory in runtime.db, written after each agent's commit (cell-state.ts). A write
 * runtime.db refuses (a storage fault) left the index stale until the agent's next wake or the next start put it back
 * from the agent's own rows, and the operator API reads approvals from it. So the agent's entries, read from its own
 * rows as they were committed, are kept and written again later with backoff, on the runtime's clock, until they
 * land; every later index write of that agent writes them whole from its rows then, so a retry never puts back an
 * entry the agent changed since. The first refusal of a run is logged, and the run's end; the retries in between are
 * not. An agent whose entries wait keeps its pending mark as it leaves memory (clearPendingOnLeave), so after a crash
 * the next start still puts them back. The observer is told of every refused write and of every agent whose entries
 * stop waiting, with the number still waiting (the bridge's metrics: an operator alerts on them, not on the log).
 */
export class DirectoryIndex {
  readonly #db: RuntimeDb;
  readonly #logger: Logger;
  readonly #observer: RuntimeObserver;
  /** The entries of each agent whose index write runtime.db refused; null when its rows could not be read then. */
  readonly #unsynced = new Map<string, DirectoryEntry[] | null>();
  readonly #retry: BackoffTimer;

  /** `observer`: guarded (guarded-observer.ts), so its hooks never throw into the runtime's bookkeeping. */
  constructor(db: RuntimeDb, clock: Clock, logger: Logger, observer: RuntimeObserver) {
    this.#db = db;
    this.#logger = logger;
    this.#observer = observer;
    this.#retry = new BackoffTimer(clock, DIRECTORY_RETRY_FIRST_MS, DIRECTORY_RETRY_MAX_MS, () => this.#retryWrites());
  }

  /**
   * Runs `writeIndex` (the index write of the agent's commit), or, while earlier entries of the agent wait, writes
   * all of its `entries()` instead. Never throws: a refusal keeps the entries for the retries.
   */
  write(agentId: string, writeIndex: () => void, entries: () => DirectoryEntry[]): void {
    const waiting = this.#unsynced.has(agentId);
    let wanted: DirectoryEntry[] | null = null;
    try {
      if (waiting) {
        wanted = entries();
        this.#db.directoryReplace(agentId, wanted);
      } else writeIndex();
    } catch (err) {
      this.#refused(agentId, err, waiting ? wanted : readOrNull(entries));
      return;
    }
    if (waiting) this.#written(agentId);
  }

  /** Entries of the agent wait for a retry: the index is behind its rows. */
  isUnsynced(agentId: string): boolean {
    return this.#unsynced.size > 0 && this.#unsynced.has(agentId);
  }

  /** The agent is destroyed (its rows in runtime.db deleted with it): nothing of it is written again. */
  forget(agentId: string): void {
    if (!this.#unsynced.delete(agentId)) return;
    this.#observer.onDirectoryWaitEnded?.({ agentId, waiting: this.#unsynced.size });
    if (this.#unsynced.size === 0) this.#retry.reset();
  }

  /** The shutdown: no retry outlives the runtime; an agent whose entries wait kept its pending mark for the start. */
  stop(): void {
    this.#retry.disable();
    this.#retry.reset();
  }

  #refused(agentId: string, err: unknown, entries: DirectoryEntry[] | null): void {
    if (this.#unsynced.size === 0) {
      this.#logger.warn(
        { err, agent: agentId, retryInMs: this.#retry.delayMs },
        "runtime.db refused a directory index write; the agent's entries are written again later",
      );
    }
    // Entries that could not be read are not retried (an older read would undo this change): the agent's next index
    // write or wake puts them back.
    this.#unsynced.set(agentId, entries);
    this.#observer.onDirectoryWriteRefused?.({ agentId, waiting: this.#unsynced.size });
    this.#retry.arm();
  }

  /** Writes each waiting agent's entries, in the order they were refused; stops at the first refusal and backs off. */
  #retryWrites(): void {
    for (const [agentId, entries] of [...this.#unsynced]) {
      if (entries === null) continue;
      try {
        this.#db.directoryReplace(agentId, entries);
      } catch {
        this.#observer.onDirectoryWriteRefused?.({ agentId, waiting: this.#unsynced.size });
        this.#retry.backOff();
        return;
      }
      this.#written(agentId);
    }
  }

  /** The agent's waiting entries landed: once no agent's entries wait, the recovery is logged and the retries stop. */
  #written(agentId: string): void {
    this.#unsynced.delete(agentId);
    this.#observer.onDirectoryWaitEnded?.({ agentId, waiting: this.#unsynced.size });
    if (this.#unsynced.size === 0) this.#writesWorkAgain();
  }

  #writesWorkAgain(): void {
    this.#retry.reset();
    this.#logger.info("runtime.db takes directory index writes again");
  }
}

function readOrNull(entries: () => DirectoryEntry[]): DirectoryEntry[] | null {
  try {
    return entries();
  } catch {
    return null;
  }
}
