/**
 * GET /metrics in the Prometheus text format. Token-protected by default, because series names and labels
 * describe the fleet; Prometheus sends the token with `authorization: { credentials: ... }` in its scrape config.
 */
import type { FastifyInstance } from "fastify";
import { bearerHook } from "../api/register.ts";
import type { BridgeMetrics } from "./metrics.ts";

export interface MetricsRouteOptions {
  /** Bearer token required to scrape; undefined serves /metrics openly (only behind a trusted network). */
  token?: string;
  /** Path. Default "/metrics". */
  path?: string;
}

/** Registers the scrape endpoint. */
export async function registerMetricsRoute(
  app: FastifyInstance,
  metrics: BridgeMetrics,
  options: MetricsRouteOptions = {},
): Promise<void> {
  await app.register(async (scope) => {
    if (options.token !== undefined) scope.addHook("onRequest", bearerHook(options.token));
    scope.get(options.path ?? "/metrics", async (_request, reply) => {
      const body = await metrics.scrape();
      return reply.type(metrics.contentType).header("cache-control", "no-store").send(body);
    });
  });
}
