// Talks to the operator API with the bearer token kept in sessionStorage (this tab only).
const TOKEN_KEY = "agent-bridge.token";

/** Error from the API, with its stable code and the field at fault. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/**
 * Takes a token from the sign-in link (#token=...) into sessionStorage and removes it from the address bar. Returns
 * "none" (no token in the link), "adopted", or "malformed": a bad % sequence (a link cut short or mistyped), which
 * decodeURIComponent refuses; that token is not kept, and the caller asks for one.
 */
export function adoptTokenFromLink() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match === null) return "none";
  // Removed before decoding, so a token that cannot be read does not stay on screen either.
  history.replaceState(null, "", `${location.pathname}${location.search}#/`);
  let token;
  try {
    token = decodeURIComponent(match[1]);
  } catch {
    return "malformed";
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  return "adopted";
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Calls the API; resolves with the JSON body, rejects with ApiError. */
export async function api(method, path, body) {
  const headers = { authorization: `Bearer ${getToken() ?? ""}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "NETWORK", "the bridge is unreachable");
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = data?.error ?? {};
    throw new ApiError(res.status, err.code ?? `HTTP_${res.status}`, err.message ?? res.statusText, err.field);
  }
  return data;
}

export const enc = encodeURIComponent;
