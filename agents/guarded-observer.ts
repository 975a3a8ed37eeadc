import type { Logger } from "pino";
import type { Clock, RuntimeObserver } from "./types.ts";

/**
 * How long a hook that keeps throwing stays out of the log after its last line, ms. A metrics hook that throws on
 * every call would otherwise log once per event (thousands of lines a second on a busy fleet); the next line says how
 * many throws it left out (`unlogged`).
 */
export const OBSERVER_THROW_LOG_INTERVAL_MS = 60_000;

type HookName = keyof RuntimeObserver;

/** When each hook's throw was last logged, and how many throws since went unlogged. */
class HookThrowLog {
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #last = new Map<HookName, { at: number; unlogged: number }>();

  constructor(logger: Logger, clock: Clock) {
    this.#logger = logger;
    this.#clock = clock;
  }

  threw(hook: HookName, agentId: string, err: unknown): void {
    // Logging must not throw either: this runs where the runtime's own bookkeeping has to go on.
    try {
      const now = this.#clock.monotonicNow();
      const last = this.#last.get(hook);
      if (last !== undefined && now - last.at < OBSERVER_THROW_LOG_INTERVAL_MS) {
        last.unlogged++;
        return;
      }
      this.#last.set(hook, { at: now, unlogged: 0 });
      this.#logger.error({ err, hook, agent: agentId, unlogged: last?.unlogged ?? 0 }, "observer hook threw");
    } catch {}
  }
}

/**
 * The embedder's observer with every hook it has guarded: a hook that throws is logged (see
 * OBSERVER_THROW_LOG_INTERVAL_MS) and the runtime goes on as if it had returned. Hooks are metrics; before this, a
 * throwing onWake left a cell holding a database handle whose start event never ran, a throwing onHibernate kept a
 * retired instance's handover from being queued, and one in the idle timer escaped into the process.
 *
 * A hook the observer lacks stays undefined, so the runtime still skips the work only a hook needs (the clock reads
 * of onCommit and onEvent, cell-batch.ts). The hooks are looked up once, here: one added to the observer later is
 * not called. Each is called as a method of the observer, so one written as a class method keeps its `this`.
 */
export function guardObserver(observer: RuntimeObserver, logger: Logger, clock: Clock): RuntimeObserver {
  const log = new HookThrowLog(logger, clock);
  const guarded: RuntimeObserver = {};
  // One wrapper per hook, written out: a generic one would cost a closure per call on the per-event path.
  if (observer.onCommit !== undefined) {
    guarded.onCommit = (info) => {
      try {
        observer.onCommit?.(info);
      } catch (err) {
        log.threw("onCommit", info.agentId, err);
      }
    };
  }
  if (observer.onEvent !== undefined) {
    guarded.onEvent = (info) => {
      try {
        observer.onEvent?.(info);
      } catch (err) {
        log.threw("onEvent", info.agentId, err);
      }
    };
  }
  if (observer.onError !== undefined) {
    guarded.onError = (info) => {
      try {
        observer.onError?.(info);
      } catch (err) {
        log.threw("onError", info.agentId, err);
      }
    };
  }
  if (observer.onMailboxFull !== undefined) {
    guarded.onMailboxFull = (info) => {
      try {
        observer.onMailboxFull?.(info);
      } catch (err) {
        log.threw("onMailboxFull", info.agentId, err);
      }
    };
  }
  if (observer.onWake !== undefined) {
    guarded.onWake = (info) => {
      try {
        observer.onWake?.(info);
      } catch (err) {
        log.threw("onWake", info.agentId, err);
      }
    };
  }
  if (observer.onHibernate !== undefined) {
    guarded.onHibernate = (info) => {
      try {
        observer.onHibernate?.(info);
      } catch (err) {
        log.threw("onHibernate", info.agentId, err);
      }
    };
  }
  if (observer.onDirectoryWriteRefused !== undefined) {
    guarded.onDirectoryWriteRefused = (info) => {
      try {
        observer.onDirectoryWriteRefused?.(info);
      } catch (err) {
        log.threw("onDirectoryWriteRefused", info.agentId, err);
      }
    };
  }
  if (observer.onDirectoryWaitEnded !== undefined) {
    guarded.onDirectoryWaitEnded = (info) => {
      try {
        observer.onDirectoryWaitEnded?.(info);
      } catch (err) {
        log.threw("onDirectoryWaitEnded", info.agentId, err);
      }
    };
  }
  return guarded;
}
