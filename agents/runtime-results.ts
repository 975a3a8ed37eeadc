import type { EventOutcome } from "./events/types.ts";
import type { EventResult } from "./host.ts";
import type { CallResult } from "./types.ts";

// What the host API (runtime.ts) hands back: an event's outcome inside the runtime (EventOutcome) as the transport's
// EventResult or the operator's CallResult.

const COMMITTED: EventResult = Object.freeze({ status: "committed" });

export function toEventResult(o: EventOutcome): EventResult {
  return o.status === "committed" ? COMMITTED : { status: "failed", code: o.code, message: o.message };
}

function toCallResult(o: EventOutcome): CallResult {
  if (o.status === "committed") return { ok: true, value: o.value };
  return o.retryInMs === undefined
    ? { ok: false, code: o.code, message: o.message }
    : { ok: false, code: o.code, message: o.message, retryInMs: o.retryInMs };
}

// The per-event resolvers are made by these functions rather than written inline as `resolve: (o) => ...`: tsx
// (esbuild with keepNames) wraps a function literal in a name-giving position in a `__name` call, an
// Object.defineProperty on every event that was about half of a no-write call's CPU time (2.1-2.3 us before, 0.9-1.6
// us after). A returned arrow has no name to keep.
export function eventResolver(resolve: (r: EventResult) => void): (o: EventOutcome) => void {
  return (o) => resolve(toEventResult(o));
}

export function callResolver(resolve: (r: CallResult) => void): (o: EventOutcome) => void {
  return (o) => resolve(toCallResult(o));
}

export function callFailed(code: string, message: string): Promise<CallResult> {
  return Promise.resolve({ ok: false, code, message });
}

export function failed(code: string, message: string): EventResult {
  return { status: "failed", code, message };
}
