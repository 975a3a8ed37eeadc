/** `GET /metrics`: Prometheus text with vLLM's metric names. */
import type { ServerResponse } from "node:http";
import type { SimContext } from "../context.ts";

export function handleMetrics(ctx: SimContext, res: ServerResponse): void {
  const text = ctx.metrics.render({
    model: ctx.options.model,
    running: ctx.scheduler.running,
    waiting: ctx.scheduler.waiting,
    kvCacheUsage: ctx.scheduler.kvCacheUsage,
    cacheQueries: ctx.cache.queriedTokens,
    cacheHits: ctx.cache.hitTokens,
  });
  res.writeHead(200, {
    "content-type": "text/plain; version=0.0.4; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}
