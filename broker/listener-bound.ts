/**
 * The sockets one MQTT listener holds at most: the sessions `maxConnections` allows, plus room for sockets that have
 * not sent CONNECT yet (each waits up to `connectTimeoutMs`), takeovers and refusals answered with CONNACK 3. Without
 * a bound, a flood of sockets that never send CONNECT used file descriptors until the process could open no database.
 * Its own file, free of aedes, so the bridge's config can size the HTTP server by it (MQTT over WebSocket shares it).
 *
 * @example
 * server.maxConnections = socketsPerListener(limits.maxConnections);
 */
export function socketsPerListener(maxConnections: number): number {
  return maxConnections + Math.max(64, Math.ceil(maxConnections / 10));
}
