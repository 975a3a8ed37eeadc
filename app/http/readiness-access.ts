/**
 * Which answer of a named readiness check (`/readyz/{name}`) a request gets. Readiness needs no token, since load
 * balancers and orchestrators probe it without one, but the full answer of a check can name internal hosts, so it
 * goes only to a caller with the operator API token (the same bearer token as `/api` and `/metrics`).
 */
import { bearerToken, tokensEqual } from "../api/auth.ts";

/**
 * `full`: the request carries the operator token. `public`: it carries no `Authorization` header at all (or the
 * server has no token to compare with). `refused`: it carries an `Authorization` header that is not the operator's
 * bearer token (another token, an empty or malformed one, another scheme): a 401, as on `/api`, so an operator with a
 * stale or mistyped token learns of it instead of reading the public answer as all there is.
 */
export type ReadinessAccess = "full" | "public" | "refused";

export function readinessAccess(
  authorization: string | string[] | undefined,
  apiToken: string | undefined,
): ReadinessAccess {
  if (authorization === undefined || apiToken === undefined) return "public";
  // Decided on the header, not on the token read from it: `Bearer` with nothing after it (`Bearer $TOKEN` with the
  // variable unset) yields no token, and is a wrong token all the same, not a probe.
  const given = bearerToken(authorization);
  return given !== undefined && tokensEqual(given, apiToken) ? "full" : "refused";
}
