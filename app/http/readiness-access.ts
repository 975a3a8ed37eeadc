/**
 * Which answer of a named readiness check (`/readyz/{name}`) a request gets. Readiness needs no token, since load
 * balancers and orchestrators probe it without one, but the full answer of a check can name internal hosts, so it
 * goes only to a caller with the operator API token (the same bearer token as `/api` and `/metrics`).
 */
import { bearerToken, tokensEqual } from "../api/auth.ts";

/**
 * `full`: the request carries the operator token. `public`: it carries no `Authorization: Bearer` header (or the
 * server has no token to compare with). `refused`: it carries a bearer token that is not the operator's: a 401, as
 * on `/api`, so an operator with a stale or mistyped token learns of it instead of reading the public answer as all
 * there is.
 */
export type ReadinessAccess = "full" | "public" | "refused";

export function readinessAccess(
  authorization: string | string[] | undefined,
  apiToken: string | undefined,
): ReadinessAccess {
  const given = bearerToken(authorization);
  if (given === undefined || apiToken === undefined) return "public";
  return tokensEqual(given, apiToken) ? "full" : "refused";
}
