/**
 * `GET /v1/models` on one replica, bounded on the client's clock by MODEL_LOOKUP_TIMEOUT_MS.
 *
 * The bound is the replica's own, not the lookup's as a whole: a hung first replica must not use up the time of the
 * next one. A replica that sends no headers in time is handled as a chat request whose deadline passes before
 * headers: the timeout (a TIMEOUT error, so `sendRequest` sees a deadline expiry) gets the replica's health probed,
 * and only a failed probe counts against it. Listing models costs a live engine no GPU work, so a missing answer is
 * good reason to look; counting it as a failure outright would cool a replica whose API server was only slow for a
 * moment, which is the stall probe's question to answer, with its rate limit (stall-probe.ts).
 */
import { ENGINE_ERROR_CODES, engineError } from "./errors.ts";
import { readLimited, sendRequest } from "./http.ts";
import type { EngineClientOptions } from "./options.ts";
import type { Replica } from "./replica.ts";
import { asObject } from "./wire.ts";

/** Longest wait for one replica's `/v1/models` answer (headers and body). */
export const MODEL_LOOKUP_TIMEOUT_MS = 5000;

/** Largest `/v1/models` answer accepted. */
const MAX_MODELS_BYTES = 1 << 20;

/**
 * The model ids one replica lists. Rejects with TIMEOUT after MODEL_LOOKUP_TIMEOUT_MS, with CANCELLED when `signal`
 * (the caller's) aborts, or with the classified error of a failed request.
 */
export async function listModels(
  replica: Replica,
  options: EngineClientOptions,
  requestId: string,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  const lookup = new AbortController();
  const onCallerAbort = () =>
    lookup.abort(
      engineError(ENGINE_ERROR_CODES.cancelled, "the model lookup was cancelled by its caller", {}, signal?.reason),
    );
  if (signal?.aborted) onCallerAbort();
  else signal?.addEventListener("abort", onCallerAbort, { once: true });
  const timer = options.clock.setTimeout(() => {
    lookup.abort(
      engineError(
        ENGINE_ERROR_CODES.timeout,
        `engine replica ${replica.key} did not list its models within ${MODEL_LOOKUP_TIMEOUT_MS} ms`,
        { replica: replica.key, timeoutMs: MODEL_LOOKUP_TIMEOUT_MS },
      ),
    );
  }, MODEL_LOOKUP_TIMEOUT_MS);
  try {
    const response = await sendRequest(replica, options, {
      method: "GET",
      path: "/v1/models",
      requestId,
      signal: lookup.signal,
    });
    let text: string;
    try {
      text = await readLimited(response.body, MAX_MODELS_BYTES);
    } catch (err) {
      // After the headers: the abort ends the body read too, and no probe (a replica that answers is not hung).
      throw lookup.signal.aborted ? lookup.signal.reason : err;
    }
    const list = asObject(JSON.parse(text));
    const data = Array.isArray(list?.data) ? list.data : [];
    return data.map((m) => asObject(m)?.id).filter((id): id is string => typeof id === "string");
  } finally {
    options.clock.clearTimeout(timer);
    signal?.removeEventListener("abort", onCallerAbort);
  }
}
