/**
 * Resolves once an engine request dispatched earlier in this turn of the event loop has been written to its socket.
 *
 * undici writes a request on a reused keep-alive connection only on the loop's check phase (it queues an immediate
 * when the request is dispatched, so that the poll phase can first see whether the engine closed the idle socket:
 * GHSA-35p6-xmwp-9g52). Everything the dispatching event still does synchronously (its writes, the COMMIT, the output
 * gate) runs before that immediate, so the request waits for it. An immediate queued after undici's runs after the
 * write: work that need not precede the request waits for this instead (docs/benchmarks.md, "Session 10").
 */
export function afterRequestWrite(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
