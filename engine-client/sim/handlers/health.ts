/** `GET /health`: 200 with an empty body, like vLLM; the `healthStatus` fault changes the status. */
import type { ServerResponse } from "node:http";
import type { SimContext } from "../context.ts";

export function handleHealth(ctx: SimContext, res: ServerResponse): void {
  res.writeHead(ctx.faults.healthStatus, { "content-length": 0 });
  res.end();
}
