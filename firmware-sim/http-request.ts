/**
 * One request to the bridge's operator API (the read-backs and the API driver) under a time limit. fetch has none of
 * its own beyond undici's 300 s for headers and as long again for the body, so a stalled API held stop() for hours.
 */

/** Default limit of one operator API request, headers and body together, in ms. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * Fetches `url` and runs `read` on the response, both within `timeoutMs`; past it the request is aborted and the
 * error names the request and the limit.
 */
export async function fetchWithin<T>(
  doFetch: typeof fetch,
  url: string,
  init: RequestInit,
  timeoutMs: number,
  read: (response: Response) => Promise<T>,
): Promise<T> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    return await read(await doFetch(url, { ...init, signal }));
  } catch (err) {
    if (!signal.aborted) throw err;
    throw new Error(`${init.method ?? "GET"} ${url}: no answer within ${timeoutMs} ms`, { cause: err });
  }
}
