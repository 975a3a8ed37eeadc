/**
 * The simulator's test controls (not part of vLLM's API): `GET /admin/requests` lists recorded requests,
 * `GET /admin/faults` shows the live faults, `POST /admin/faults` merges a partial fault set,
 * `DELETE /admin/faults` clears them, `GET /admin/stats` returns `stats()`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { BridgeError } from "../../../errors/index.ts";
import type { SimContext } from "../context.ts";
import { type EngineSimFaults, NO_FAULTS, ownFaults, validateFaults } from "../options.ts";
import { readBody, sendError, sendJson } from "../respond.ts";
import { simStats } from "../stats.ts";

export async function handleAdmin(
  ctx: SimContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const route = `${req.method} ${path}`;
  switch (route) {
    case "GET /admin/requests":
      return sendJson(res, 200, { requests: ctx.records });
    case "GET /admin/stats":
      return sendJson(res, 200, simStats(ctx));
    case "GET /admin/faults":
      return sendJson(res, 200, ctx.faults);
    case "DELETE /admin/faults":
      ctx.faults = { ...NO_FAULTS };
      return sendJson(res, 200, ctx.faults);
    case "POST /admin/faults": {
      const text = await readBody(req);
      let patch: unknown;
      try {
        patch = JSON.parse(text ?? "");
      } catch {
        return sendError(ctx, res, 400, "BadRequestError", "body must be a JSON object of faults");
      }
      const result = applyFaults(ctx, patch);
      if (typeof result === "string") return sendError(ctx, res, 400, "BadRequestError", result);
      return sendJson(res, 200, ctx.faults);
    }
    default:
      return sendError(ctx, res, 404, "NotFoundError", `no admin route ${route}`);
  }
}

/** Validates and merges a fault patch; returns an error message when it is invalid. */
export function applyFaults(ctx: SimContext, patch: unknown): string | undefined {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return "faults must be a JSON object";
  const known = new Set(Object.keys(NO_FAULTS));
  const unknown = Object.keys(patch).filter((k) => !known.has(k));
  if (unknown.length > 0) return `unknown faults: ${unknown.join(", ")}`;
  try {
    validateFaults(patch as Partial<EngineSimFaults>, "faults");
  } catch (err) {
    return err instanceof BridgeError ? err.message : "invalid faults";
  }
  ctx.faults = { ...ctx.faults, ...ownFaults(patch as Partial<EngineSimFaults>) };
  return undefined;
}
