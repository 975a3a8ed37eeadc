/**
 * How the long-running commands (`start`, `demo`, `sim`) hear SIGTERM and SIGINT: the first asks for a graceful stop,
 * a later one forces the exit. The same signal again within REPEATED_SIGNAL_MS of the first is that first request
 * delivered twice, not a second one: a terminal sends Ctrl-C's SIGINT to its whole foreground process group, so under
 * `npm start` (whose scripts `exec` node) the bridge gets it from the terminal and once more from npm, which forwards
 * the SIGINT and SIGTERM it gets to its script; a service manager that signals every process of a unit does the same.
 * Taken as a second request, that copy cut the graceful stop short (exit 1 before the mailboxes drained).
 */

export type StopSignal = "SIGTERM" | "SIGINT";

/** A repeat of the first signal within this many ms is the same request delivered twice. */
export const REPEATED_SIGNAL_MS = 1000;

export interface StopSignalHandlers {
  /** The first signal: stop gracefully. */
  stop(signal: StopSignal): void;
  /** A signal after the first (another one, or the same one later than REPEATED_SIGNAL_MS): exit now. */
  force(signal: StopSignal): void;
  /** The first signal again within REPEATED_SIGNAL_MS, ignored. Default: nothing. */
  repeated?(signal: StopSignal): void;
}

/** Where signals come from: `process` in the CLI, an emitter in tests. */
export interface SignalSource {
  on(signal: StopSignal, listener: () => void): unknown;
  off(signal: StopSignal, listener: () => void): unknown;
}

const STOP_SIGNALS: readonly StopSignal[] = ["SIGTERM", "SIGINT"];

/**
 * Listens for SIGTERM and SIGINT until the returned function is called.
 *
 * @example
 * const removeListeners = onStopSignals({ stop: () => void bridge.stop(), force: () => process.exit(1) });
 */
export function onStopSignals(
  handlers: StopSignalHandlers,
  options: { source?: SignalSource; now?: () => number } = {},
): () => void {
  const source = options.source ?? process;
  const now = options.now ?? (() => performance.now());
  let first: { signal: StopSignal; at: number } | undefined;
  const listeners = STOP_SIGNALS.map((signal) => {
    const listener = (): void => {
      if (first === undefined) {
        first = { signal, at: now() };
        handlers.stop(signal);
      } else if (signal === first.signal && now() - first.at < REPEATED_SIGNAL_MS) {
        handlers.repeated?.(signal);
      } else {
        handlers.force(signal);
      }
    };
    source.on(signal, listener);
    return { signal, listener };
  });
  return () => {
    for (const { signal, listener } of listeners) source.off(signal, listener);
    if (first !== undefined) swallowLateCopy(source, first.signal, REPEATED_SIGNAL_MS - (now() - first.at));
  };
}

/**
 * A stop can end before the copy of its signal arrives (npm forwards its own a moment after the terminal's): left with
 * no listener, that copy's default action killed a process that had just stopped cleanly (exit by SIGINT, not 0).
 * Until the first signal's window ends, a copy is swallowed; the timer does not keep the process alive.
 */
function swallowLateCopy(source: SignalSource, signal: StopSignal, forMs: number): void {
  if (forMs <= 0) return;
  const swallow = (): void => {};
  source.on(signal, swallow);
  setTimeout(() => source.off(signal, swallow), forMs).unref();
}
