/**
 * Engine URLs with a user or password (`http://user:pw@gpu-1:8000`). The client sends no credentials from a URL (an
 * engine's key goes in `apiKey`, sent as `Authorization: Bearer …`), so such a URL would be taken and the engine would
 * answer every request 401. It is refused as a configuration error instead, and the error shows the URL with its
 * credentials redacted: the user part too, since a key is often pasted there (`http://sk-…@host`).
 */

/** True when `url` holds a user or a password. */
export function hasUrlCredentials(url: URL): boolean {
  return url.username !== "" || url.password !== "";
}

/**
 * `url` as text with its user and password replaced by `[redacted]`, for an error message.
 *
 * @example
 * redactUrlCredentials(new URL("http://user:pw@gpu-1:8000/v1")); // "http://[redacted]@gpu-1:8000/v1"
 */
export function redactUrlCredentials(url: URL): string {
  if (!hasUrlCredentials(url)) return url.href;
  const bare = new URL(url.href);
  bare.username = "";
  bare.password = "";
  // http(s) URLs always have an authority, so the scheme is followed by `//`.
  return `${bare.protocol}//[redacted]@${bare.href.slice(bare.protocol.length + 2)}`;
}

/**
 * The refusal of an engine URL that holds a user or password, or undefined for one that holds none: the URL shown
 * redacted, then `keyAdvice`, which says why none is sent and where the key goes instead in the caller's own terms
 * (the engine client's option; the bridge's config setting and its environment variable). Each caller reports it its
 * own way, naming the field: the client throws BRIDGE_ERR_CONFIG, the config schema adds an issue.
 *
 * @example
 * urlCredentialsProblem(new URL("http://user:pw@gpu-1:8000"), "give the key as apiKey");
 * // "must not hold a user or password (http://[redacted]@gpu-1:8000/): give the key as apiKey"
 */
export function urlCredentialsProblem(url: URL, keyAdvice: string): string | undefined {
  if (!hasUrlCredentials(url)) return undefined;
  return `must not hold a user or password (${redactUrlCredentials(url)}): ${keyAdvice}`;
}
