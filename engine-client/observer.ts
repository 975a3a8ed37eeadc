/**
 * What the engine client reports for metrics. The app wires it to prom-client; the default does nothing.
 * Every method is optional and must not throw (a throwing observer is ignored, never fails a request).
 */
import type { ChatUsage } from "../agents/engine.ts";

export interface EngineObserver {
  /** A request waited `queueWaitMs` and was sent to `replica` (attempt 1 is the first try). */
  onDispatch?(event: { agentId: string; replica: string; queueWaitMs: number; attempt: number }): void;
  /** The first text or tool-call event arrived, `ttftMs` after the request was accepted by the client. */
  onFirstToken?(event: { agentId: string; replica: string; ttftMs: number }): void;
  /** A request finished; `tokensPerSecond` counts completion tokens over the time after the first token. */
  onComplete?(event: {
    agentId: string;
    replica: string;
    usage: ChatUsage;
    durationMs: number;
    tokensPerSecond: number;
    finishReason: string;
  }): void;
  /** A request failed for good with `code` (a BRIDGE_ERR_ENGINE_* code). */
  onError?(event: { agentId: string; replica: string | undefined; code: string }): void;
  /** One attempt failed and the request will be tried again after `delayMs`. */
  onRetry?(event: { agentId: string; replica: string; attempt: number; delayMs: number; code: string }): void;
  /** The number of requests in flight on `replica` changed. */
  onInFlight?(event: { replica: string; inFlight: number }): void;
  /** The number of requests waiting in the client's fair queue changed. */
  onQueueDepth?(event: { depth: number }): void;
  /**
   * A replica's state: once per replica when the client is created (its initial "healthy"), then each time it is
   * cooled down after repeated failures or comes back after a passing health check.
   */
  onReplicaState?(event: { replica: string; state: ReplicaState }): void;
}

/** Health of one replica as the client sees it. */
export type ReplicaState = "healthy" | "cooling";

/** The default observer. */
export const noopEngineObserver: EngineObserver = {};

/** Calls an observer hook, swallowing its faults: metrics must never break a request. */
export function notify<K extends keyof EngineObserver>(
  observer: EngineObserver,
  hook: K,
  event: Parameters<NonNullable<EngineObserver[K]>>[0],
): void {
  const fn = observer[hook] as ((e: typeof event) => void) | undefined;
  if (fn === undefined) return;
  try {
    fn.call(observer, event);
  } catch {
    // An observer fault is the observer's problem; the request goes on.
  }
}
