/**
 * Resolves once the engine requests dispatched in this turn of the event loop have been written to their sockets.
 *
 * undici writes a request on a reused keep-alive connection only on the loop's check phase (it queues an immediate
 * when the request is dispatched, so that the poll phase can first see whether the engine closed the idle socket:
 * GHSA-35p6-xmwp-9g52). Everything the dispatching event still does synchronously (its writes, the COMMIT, the output
 * gate) runs before that immediate, so the request waits for it. Work that need not precede the request waits for
 * this instead (docs/benchmarks.md, "Session 10").
 *
 * Not one immediate but an immediate that queues another, which runs on the next turn's check phase: the questions
 * of many devices that arrive in one poll phase (a fleet asking at once) each queue undici's immediate and then this
 * one, interleaved, and with a single immediate the k-th request was written only after the rows and COMMITs of the
 * k - 1 questions before it (at 256 devices, tens of ms). The second hop puts every question's rows after every
 * request of that turn; alone, it costs a question one turn of an otherwise idle loop, after its request left.
 */
export function afterRequestWrite(): Promise<void> {
  return new Promise((resolve) => setImmediate(setImmediate, resolve));
}
