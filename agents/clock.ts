import type { Clock } from "./types.ts";

/** The real clock. Timers are unref'd where possible: runtime alarms alone never keep a process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicNow: () => performance.now(),
  setTimeout: (fn, ms) => {
    const handle = setTimeout(fn, ms);
    handle.unref?.();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Longest delay a Node timer takes; longer waits are re-armed when it fires. */
export const MAX_TIMER_MS = 2_147_483_647;
