/**
 * The headers every request to an engine carries. Only the request id changes from one request to the next, so the
 * rest (the bearer token's header value included) is built once per replica, and a request's headers are one flat
 * array in the form undici reads without converting (an object is walked by its keys).
 */

const CONTENT_TYPE = "application/json";
const ACCEPT = "application/json, text/event-stream";

export class RequestHeaders {
  readonly #authorization: string | undefined;

  constructor(apiKey: string | undefined) {
    this.#authorization = apiKey === undefined ? undefined : `Bearer ${apiKey}`;
  }

  /** The headers of the request `requestId`. vLLM adopts X-Request-Id as its own id, so both logs correlate. */
  with(requestId: string): string[] {
    const authorization = this.#authorization;
    return authorization === undefined
      ? ["content-type", CONTENT_TYPE, "accept", ACCEPT, "x-request-id", requestId]
      : ["content-type", CONTENT_TYPE, "accept", ACCEPT, "x-request-id", requestId, "authorization", authorization];
  }
}
