/** The simulator's node:http server: connection faults, API-key check, and one route switch. */
import { timingSafeEqual } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { Socket } from "node:net";
import type { SimContext } from "./context.ts";
import { handleAdmin } from "./handlers/admin.ts";
import { handleChat } from "./handlers/chat.ts";
import { handleHealth } from "./handlers/health.ts";
import { handleMetrics } from "./handlers/metrics.ts";
import { handleModels } from "./handlers/models.ts";
import { sendError, sendJson } from "./respond.ts";

export function createSimServer(ctx: SimContext): { server: Server; sockets: Set<Socket> } {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    route(ctx, req, res).catch(() => {
      // A handler fault must not take the simulator down; the client sees a 500 or a closed socket.
      if (!res.headersSent) sendError(ctx, res, 500, "InternalServerError", "simulator fault");
      else res.destroy();
    });
  });
  // Long generations must not be cut by Node's default request timeout.
  server.requestTimeout = 0;
  // vLLM's default idle close (VLLM_HTTP_TIMEOUT_KEEP_ALIVE, 5 s), so clients meet the same socket lifetime.
  server.keepAliveTimeout = 5_000;
  server.on("connection", (socket: Socket) => {
    if (ctx.faults.refuseConnections) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  return { server, sockets };
}

async function route(ctx: SimContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (ctx.faults.refuseConnections) {
    req.socket.destroy();
    return;
  }
  const path = (req.url ?? "/").split("?")[0];
  if (req.method === "GET" && path === "/health") ctx.healthChecks++;
  // A hung engine answers nothing, not even its health check; chat requests are held (and recorded) by their handler.
  if (ctx.faults.stall && !path.startsWith("/admin/") && path !== "/v1/chat/completions") {
    req.resume();
    return;
  }
  if (path.startsWith("/v1/") && !authorized(ctx, req)) {
    const presented = (req.headers.authorization ?? "").replace(/^Bearer /, "");
    return sendJson(res, 401, {
      error: ctx.faults.echoApiKey ? `Unauthorized: invalid API key '${presented}'` : "Unauthorized",
    });
  }
  if (path.startsWith("/admin/")) return handleAdmin(ctx, req, res, path);
  switch (`${req.method} ${path}`) {
    case "GET /health":
      return handleHealth(ctx, res);
    case "GET /v1/models":
      return handleModels(ctx, res);
    case "POST /v1/chat/completions":
      return handleChat(ctx, req, res);
    case "GET /metrics":
      return handleMetrics(ctx, res);
    default:
      return sendError(ctx, res, 404, "NotFoundError", `no route ${req.method} ${path}`);
  }
}

function authorized(ctx: SimContext, req: IncomingMessage): boolean {
  const key = ctx.options.apiKey;
  if (key === undefined) return true;
  const expected = Buffer.from(`Bearer ${key}`);
  const given = Buffer.from(req.headers.authorization ?? "");
  return given.length === expected.length && timingSafeEqual(given, expected);
}
