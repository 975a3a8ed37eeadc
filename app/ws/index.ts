/**
 * The WebSocket agent protocol endpoint `/agents/{id}` (docs/protocol.md, "WebSocket agent protocol").
 */
export {
  AGENT_SOCKET_DEFAULTS,
  type AgentSocketServer,
  type AgentSocketServerOptions,
  createAgentSocketServer,
  NO_SOCKET_OBSERVER,
} from "./server.ts";
export { CLOSE_CODES, type SessionLogger } from "./session.ts";
export { type ClientMessage, parseClientMessage, type ServerMessage, WS_ERROR_CODES } from "./protocol.ts";
