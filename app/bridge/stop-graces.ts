/**
 * How a stop's budget (`shutdown.timeoutMs`) is shared. The bridge stops in order: the broker (its MQTT WebSockets
 * get to answer their close frame), the agent sockets (their 1001 close handshake), the HTTP server (requests in
 * progress), then the runtime drains the agents' mailboxes. Each of the first three waits at most its grace, one after
 * the other, so together they take at most five eighths of the budget (their caps, 6 s, from 24 s on), and the
 * agents keep at least three eighths of it to drain before the stop is forced.
 */

/** Longest the broker waits at a stop for an MQTT WebSocket to answer its close frame, ms (the broker's default). */
const MQTT_WEBSOCKET_CLOSE_GRACE_MS = 2000;
/** Longest agent socket clients get at a stop to finish the 1001 close handshake before they are cut, ms. */
const AGENT_SOCKET_CLOSE_GRACE_MS = 1000;
/** Longest the HTTP server waits for requests in progress at a stop before it cuts their connections, ms. */
const HTTP_CLOSE_GRACE_MS = 3000;

/** The close graces of one stop, ms. */
export interface StopGraces {
  /** The broker's `websocket.closeGraceMs`: a quarter of the budget, 2 s at most. */
  mqttWebSocket: number;
  /** The agent socket server's `closeGraceMs`: an eighth of the budget, 1 s at most. */
  agentSockets: number;
  /** The HTTP server's `closeGraceMs`: a quarter of the budget, 3 s at most. */
  http: number;
}

/** The close graces for a stop budget of `timeoutMs` (shutdown.timeoutMs). */
export function stopGraces(timeoutMs: number): StopGraces {
  return {
    mqttWebSocket: Math.min(MQTT_WEBSOCKET_CLOSE_GRACE_MS, Math.floor(timeoutMs / 4)),
    agentSockets: Math.min(AGENT_SOCKET_CLOSE_GRACE_MS, Math.floor(timeoutMs / 8)),
    http: Math.min(HTTP_CLOSE_GRACE_MS, Math.floor(timeoutMs / 4)),
  };
}
