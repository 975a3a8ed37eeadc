/**
 * The WebSocket agent endpoint served for a test as the bridge's HTTP server serves it: an HTTP server on 127.0.0.1
 * port 0 that hands every upgrade to the agent socket server.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { AgentSocketServer } from "../../app/ws/index.ts";

export interface ServedAgentSockets {
  /** `ws://127.0.0.1:<port>`; agents are under `/agents/{id}`. */
  url: string;
  /** Closes the socket server (and so its clients' sockets), then the HTTP server. */
  close(): Promise<void>;
}

export async function serveAgentSockets(sockets: AgentSocketServer): Promise<ServedAgentSockets> {
  const server = createServer();
  server.on("upgrade", (req, socket, head) => sockets.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await sockets.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
