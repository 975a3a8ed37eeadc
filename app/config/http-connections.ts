/**
 * The default of `http.maxConnections`. Every WebSocket the operator HTTP server upgrades keeps counting against it
 * while open, so it must hold the `/mqtt` endpoint's own bound (the sockets an MQTT listener takes for
 * `mqtt.limits.maxConnections` sessions), the agent endpoint's clients, and room for operators besides (API, dashboard,
 * `/metrics`, `/healthz`). A fixed 12288 fit only the default `mqtt.limits.maxConnections`: raised, devices over
 * `/mqtt` filled the cap, locked the operator out and were refused where the broker would have taken them.
 */
import { socketsPerListener } from "../../broker/listener-bound.ts";

/** Agent WebSocket clients (`/agents/{id}`) at once: the endpoint's own bound (app/ws AGENT_SOCKET_DEFAULTS). */
export const AGENT_SOCKETS_MAX = 1024;

/** Connections kept for operators beyond every WebSocket the server may hold. */
export const OPERATOR_HTTP_CONNECTIONS = 264;

/**
 * `http.maxConnections` when the operator did not set it: 12288 with the default `mqtt.limits.maxConnections` (10000).
 *
 * @example
 * defaultHttpMaxConnections(50_000); // 55000 + 1024 + 264
 */
export function defaultHttpMaxConnections(mqttMaxConnections: number): number {
  return socketsPerListener(mqttMaxConnections) + AGENT_SOCKETS_MAX + OPERATOR_HTTP_CONNECTIONS;
}
