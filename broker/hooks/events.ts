/** aedes events the broker follows: readiness, subscriptions, and why sessions end. */
import type { EventEmitter } from "node:events";
import type { Aedes } from "aedes";
import type { HookContext } from "./context.ts";

export function followEvents(aedes: Aedes, ctx: HookContext): void {
  const { sender, connections } = ctx;
  const { logger } = ctx.opts;
  // After the CONNACK and a persistent session's offline queue: frames the agent sent while opening may leave now.
  aedes.on("clientReady", (client) => {
    const connection = connections.get(client);
    if (connection) sender.flush(connection);
  });
  // After the SUBACK: frames the agent sent before the device subscribed go out now.
  aedes.on("subscribe", (_subscriptions, client) => {
    const connection = connections.get(client);
    if (connection) sender.subscribed(connection);
  });
  aedes.on("unsubscribe", (topics, client) => {
    const connection = connections.get(client);
    for (const topic of topics) connection?.subscriptions.delete(topic);
  });
  aedes.on("clientError", (client, err) => {
    // Closing a client, aedes fails each write still waiting for its socket to drain ("connection closed"; over
    // WebSocket, a send the close cut short) and reports every one as an error of the client. They follow the end,
    // whatever it was: a device that ended its connection while its frames backed up ended it as `disconnect` (or
    // `will`), not as `error`, and a thousand frames in its socket are not a thousand log lines.
    if (client.closed) return;
    const connection = connections.get(client);
    // An error after the session ended (a late answer aedes could not write) does not say how it ended.
    if (connection !== undefined && !connection.closed) connection.markClosing("error", { tentative: true });
    logger.info({ device: client.id, err: err.message }, "device session error");
  });
  aedes.on("keepaliveTimeout", (client) => {
    connections.get(client)?.markClosing("error", { tentative: true });
    logger.info({ device: client.id }, "device keepalive timeout");
  });
  aedes.on("connectionError", (_client, err) => {
    logger.info({ err: err.message }, "connection error before CONNECT completed");
  });
  // aedes is an EventEmitter: an "error" it emits with no listener (its will-cleanup timer can) would throw and end
  // the process, and with it every other device's session.
  // Its typings list no "error" event, so the listener goes on through the EventEmitter it is.
  const emitter: EventEmitter = aedes;
  emitter.on("error", (err: Error) => {
    logger.error({ err }, "broker error");
  });
}
