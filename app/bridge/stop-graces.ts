/**
 * How a stop's budget (`shutdown.timeoutMs`) is shared. The bridge first closes, all at once, the three parts that
 * hold client sockets: the broker (its MQTT WebSockets get to answer their close frame), the agent sockets (their 1001
 * close handshake) and the HTTP server (requests in progress). They close independent sockets, so their waits overlap:
 * each starts when the stop does and ends at its own grace, so every socket is closed or cut by one shared deadline,
 * `closesMs` (the longest grace: a quarter of the budget, 3 s at most). Then the runtime drains the agents' mailboxes,
 * once every part that delivers events to the agents or calls into them has closed (the `onClose` of each connection
 * that closed runs meanwhile, in its agent's mailbox: that is drain work, not a socket wait). The agents keep at least
 * three quarters of the budget (12 s of the default 15 s) before the stop is forced. Run one after the other, as they
 * once were, the waits took up to five eighths of it (6 s from 24 s on) and left the agents three eighths.
 */

import { BROKER_DEFAULTS } from "../../broker/index.ts";
import { HTTP_SERVER_DEFAULTS } from "../http/index.ts";
import { AGENT_SOCKET_DEFAULTS } from "../ws/index.ts";

// Each grace is at most the part's own default: the budget only ever shortens it.
/** Longest the broker waits at a stop for an MQTT WebSocket to answer its close frame, ms. */
const MQTT_WEBSOCKET_CLOSE_GRACE_MS = BROKER_DEFAULTS.websocket.closeGraceMs;
/** Longest agent socket clients get at a stop to finish the 1001 close handshake before they are cut, ms. */
const AGENT_SOCKET_CLOSE_GRACE_MS = AGENT_SOCKET_DEFAULTS.closeGraceMs;
/** Longest the HTTP server waits for requests in progress at a stop before it cuts their connections, ms. */
const HTTP_CLOSE_GRACE_MS = HTTP_SERVER_DEFAULTS.closeGraceMs;

/** The close graces of one stop, ms, each counted from the stop's start. */
export interface StopGraces {
  /** The broker's `websocket.closeGraceMs`: a quarter of the budget, 2 s at most. */
  mqttWebSocket: number;
  /** The agent socket server's `closeGraceMs`: an eighth of the budget, 1 s at most. */
  agentSockets: number;
  /** The HTTP server's `closeGraceMs`: a quarter of the budget, 3 s at most. */
  http: number;
  /**
   * The shared deadline of the three overlapping waits: the longest grace, a quarter of the budget, 3 s at most. The
   * agents' drain gets the rest of the budget.
   */
  closesMs: number;
}

/** The close graces for a stop budget of `timeoutMs` (shutdown.timeoutMs). */
export function stopGraces(timeoutMs: number): StopGraces {
  const mqttWebSocket = Math.min(MQTT_WEBSOCKET_CLOSE_GRACE_MS, Math.floor(timeoutMs / 4));
  const agentSockets = Math.min(AGENT_SOCKET_CLOSE_GRACE_MS, Math.floor(timeoutMs / 8));
  const http = Math.min(HTTP_CLOSE_GRACE_MS, Math.floor(timeoutMs / 4));
  return { mqttWebSocket, agentSockets, http, closesMs: Math.max(mqttWebSocket, agentSockets, http) };
}
