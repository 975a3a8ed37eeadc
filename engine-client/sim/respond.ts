/** Small HTTP helpers of the simulator: JSON bodies and vLLM-shaped errors. */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { SimContext } from "./context.ts";

/** Largest request body accepted (a prompt of ~100k tokens with tools). */
export const MAX_BODY_BYTES = 4 << 20;

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** The error object in the configured shape ("nested" is vLLM >= 0.10 and OpenAI; "flat" older vLLM). */
export function errorBody(ctx: SimContext, status: number, type: string, message: string): unknown {
  const info = { message, type, param: null, code: status };
  return ctx.options.errorFormat === "flat" ? { object: "error", ...info } : { error: info };
}

export function sendError(
  ctx: SimContext,
  res: ServerResponse,
  status: number,
  type: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, errorBody(ctx, status, type, message), headers);
}

/** Reads the request body; undefined when it is larger than MAX_BODY_BYTES. */
export async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString("utf8");
}
