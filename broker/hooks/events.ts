/** aedes events the broker follows: readiness, subscriptions, and why sessions end. */
import type { EventEmitter } from "node:events";
import type { Aedes, PublishPacket, PubrelPacket } from "aedes";
import { addressKey } from "../connect-guard/address-key.ts";
import { isPacketGuardCut } from "../listeners/packet-guard.ts";
import { ThrottledWarningPerKey } from "../throttled-warning-per-key.ts";
import type { HookContext } from "./context.ts";

export const SESSION_ERROR_LINE = "device session error";
export const CONNECTION_ERROR_LINE = "connection error before CONNECT completed";

export function followEvents(aedes: Aedes, ctx: HookContext): void {
  const { sender, connections, streamFacts } = ctx;
  const { logger, clock } = ctx.opts;
  // A client reconnecting in a loop and sending a bad packet each time (or resetting, or never sending CONNECT) ends
  // each connection with an error: at most one line per interval per device, or before CONNECT per source address,
  // with `count`. These are `info` lines, written at the default level.
  const sessionErrors = new ThrottledWarningPerKey(logger, clock, SESSION_ERROR_LINE, {
    keysAre: "devices",
    level: "info",
  });
  const connectionErrors = new ThrottledWarningPerKey(logger, clock, CONNECTION_ERROR_LINE, { level: "info" });
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
  // A PUBACK: aedes cleared the frame it acknowledges from its store (undefined when it held none by that id, as for
  // every frame of a clean session), so the window of unacknowledged frames has room for one more.
  aedes.on("ack", (packet: PublishPacket | PubrelPacket | undefined, client) => {
    if (packet === undefined) return;
    const connection = connections.get(client);
    if (connection) sender.acked(connection);
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
    if (isPacketGuardCut(err)) return;
    sessionErrors.note(client.id, { device: client.id, err: err.message });
  });
  aedes.on("keepaliveTimeout", (client) => {
    connections.get(client)?.markClosing("error", { tentative: true });
    logger.info({ device: client.id }, "device keepalive timeout");
  });
  aedes.on("connectionError", (client, err) => {
    if (isPacketGuardCut(err)) return;
    const remoteAddress = streamFacts.get(client.conn)?.remoteAddress ?? "";
    // An IPv6 /64 as one key, as failed authentications are counted.
    connectionErrors.note(addressKey(remoteAddress), { remoteAddress, err: err.message });
  });
  // aedes is an EventEmitter: an "error" it emits with no listener (its will-cleanup timer can) would throw and end
  // the process, and with it every other device's session.
  // Its typings list no "error" event, so the listener goes on through the EventEmitter it is.
  const emitter: EventEmitter = aedes;
  emitter.on("error", (err: Error) => {
    logger.error({ err }, "broker error");
  });
}
