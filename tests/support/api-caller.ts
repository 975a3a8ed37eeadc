/** The operator API of a bridge under test, called over loopback with a bearer token. */
export type ApiCall = (http: string, method: string, route: string, body?: unknown) => Promise<Response>;

/** Calls `method route` on the bridge at `http` with `token`; `body`, when given, is sent as JSON. */
export function apiCaller(token: string): ApiCall {
  const auth = { authorization: `Bearer ${token}` };
  return (http, method, route, body) =>
    fetch(`${http}${route}`, {
      method,
      headers: body === undefined ? auth : { ...auth, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
}
