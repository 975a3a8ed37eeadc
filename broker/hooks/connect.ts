/** CONNECT: `preConnect` records the packet's facts, `authenticate` decides and opens the agent connection. */
import { randomUUID } from "node:crypto";
import type { Duplex } from "node:stream";
import type { AedesOptions, AuthenticateError } from "aedes";
import type { CloseReason, RuntimeCloseReason } from "../../agents/host.ts";
import { isCodecName } from "../../codecs/index.ts";
import { ADDRESS_BLOCKED, type AuthRefusal, authenticateDevice, type RefusalCode, staleVerification } from "../auth.ts";
import { DeviceConnection } from "../connection.ts";
import { BrokerErrorCode } from "../errors.ts";
import type { SessionManager } from "../sessions.ts";
import { MqttConnectionTransport } from "../transport.ts";
import { ConnectRefusalWarnings } from "./connect-refusal-warnings.ts";
import type { HookContext } from "./context.ts";

type PreConnect = NonNullable<AedesOptions["preConnect"]>;
type Authenticate = NonNullable<AedesOptions["authenticate"]>;

function connackError(returnCode: RefusalCode, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/**
 * The runtime's `transport.close(reason, as)`, and the broker's own end of a session: the session ends as `as` when the
 * runtime says why (`destroyed`: its agent was destroyed), as `shutdown` when the runtime shuts down, else `error`,
 * unless a reason was marked first (the first one marked is kept): `endSessions` and the registry watch mark
 * `removed` or `revoked`, an operator's doing rather than a failed session (a `DELETE` ends the sessions as `removed`
 * before it destroys the agent).
 */
export function closeFromServer(connection: DeviceConnection, reason: string, as?: RuntimeCloseReason): void {
  const closeReason: CloseReason = as ?? (reason === "shutdown" ? "shutdown" : "error");
  connection.markClosing(closeReason);
  connection.closed = true;
  connection.client.close();
}

/**
 * The session's close listener, built outside `authenticate` so its closure keeps only these two references, not the
 * whole CONNECT scope (callback, facts, decision) for the life of the session. `close` is emitted once, so `on` saves
 * the wrapper `once` would allocate.
 */
function finishOnClose(sessions: SessionManager, connection: DeviceConnection): () => void {
  return () => void sessions.finish(connection);
}

export function createPreConnect(ctx: HookContext): PreConnect {
  return (client, packet, callback) => {
    if (!ctx.accepting()) return callback(new Error("broker is not accepting connections"), false);
    ctx.connectFacts.set(client, {
      clientId: packet.clientId,
      willTopic: packet.will?.topic,
      clean: packet.clean ?? true,
    });
    callback(null, true);
  };
}

/**
 * Checks the device, then applies the connection limit (after the secret, so the answer never depends on who is online
 * for someone without it), then opens the agent connection; the CONNACK (0) goes out only after `host.open` committed.
 * Refusals carry their MQTT 3.1.1 return code (docs/broker.md).
 */
export function createAuthenticate(ctx: HookContext): Authenticate {
  const { opts, registry, hub, sessions, sender, connections, connectFacts, streamFacts, connectGuard } = ctx;
  const { logger, limits } = opts;
  // A reconnect loop or a flood repeats a refusal: every one is counted, the warnings are throttled.
  const warnings = new ConnectRefusalWarnings(logger, opts.clock);
  const refuse = (
    decision: AuthRefusal,
    clientId: string,
    remoteAddress: string,
    callback: Parameters<Authenticate>[3],
  ): void => {
    hub.authFailure(decision.reason);
    warnings.authRefused(decision, clientId.slice(0, 64), remoteAddress);
    callback(connackError(decision.returnCode, decision.message), false);
  };
  return (client, username, password, callback) => {
    const facts = connectFacts.get(client);
    const stream = streamFacts.get(client.conn) ?? { transport: "tcp", remoteAddress: "" };
    if (!facts || !ctx.accepting()) return callback(connackError(3, "broker is not accepting connections"), false);
    // Before anything else: a blocked address gets no verification, and the same answer whatever it sends.
    if (connectGuard.isBlocked(stream.remoteAddress)) {
      return refuse(ADDRESS_BLOCKED, facts.clientId, stream.remoteAddress, callback);
    }
    void (async () => {
      const stillWanted = (): boolean => !client.closed && !(client.conn as Duplex).destroyed;
      const decision = await authenticateDevice(
        {
          registry,
          anonymous: opts.anonymous,
          admitVerification: () => connectGuard.admit(stream.remoteAddress, stillWanted),
        },
        { clientId: facts.clientId, username, password, willTopic: facts.willTopic },
      );
      // Gone while waiting for its turn: aedes drops such a client without an answer, as below.
      if (decision.status === "abandoned") return;
      if (decision.status === "refused") return refuse(decision, facts.clientId, stream.remoteAddress, callback);
      const deviceId = facts.clientId;
      // The connection limit is applied only once the secret is known to be right. A takeover does not add a session,
      // so a device with a live session passes where others get CONNACK 3; checked before the secret, that difference
      // told anyone, secret or not, which ids were online while the broker was full. A flood at the limit costs
      // verifications, which the connect guard bounds as it does below the limit.
      if (sessions.countExcept(deviceId) >= limits.maxConnections) {
        hub.limitBreach(BrokerErrorCode.connectionLimit);
        warnings.connectionLimit(deviceId, limits.maxConnections);
        return callback(connackError(3, "connection limit reached"), false);
      }
      // aedes drops a client that went away during the (async) checks without calling back; so do we.
      if (client.closed || (client.conn as Duplex).destroyed) return;
      // Read again after the (slow) secret check: a hello of another session may have changed it meanwhile, another
      // process (`agent-bridge devices rm`) may have removed the device, and an operator may have rotated its secret
      // (`POST /api/devices/:id/secret`). `endSessions` and the registry watch end only sessions that exist when they
      // run, so a CONNECT they missed while its secret was checked would otherwise keep a former secret's session for
      // good. Nothing from here to the session being live (listed for `endSessions` and the watch) awaits, so no later
      // change can slip in between.
      const record = decision.device ? registry.get(deviceId) : undefined;
      const stale = decision.device ? staleVerification(decision.device, record) : undefined;
      if (stale !== undefined) return refuse(stale, facts.clientId, stream.remoteAddress, callback);
      const registryCodec = record?.codec;
      const connection = new DeviceConnection(
        {
          connectionId: randomUUID(),
          deviceId,
          transport: stream.transport,
          remoteAddress: stream.remoteAddress,
          registryCodec: isCodecName(registryCodec) ? registryCodec : undefined,
          defaultCodec: opts.defaultCodec,
          shared: ctx.deviceCodecs.acquire(deviceId),
          client,
          clean: facts.clean,
          firmware: decision.device?.firmware ?? undefined,
          registered: decision.device !== undefined,
          recordId: record?.recordId,
        },
        ctx.rateLimits.acquire(deviceId),
      );
      connections.set(client, connection);
      // Copied into the connection; the per-stream records need not live as long as the session.
      connectFacts.delete(client);
      streamFacts.delete(client.conn);
      client.conn.on("close", finishOnClose(sessions, connection));
      const transport = new MqttConnectionTransport(connection, sender, closeFromServer, logger);
      const result = await sessions.open(connection, transport);
      if (result.status === "ended") {
        // Not the agent refusing it: the session ended while it was opened (see OpenResult); its client is closed, so
        // aedes sends nothing for this answer. Expected in a race (a device reconnecting while an operator's DELETE
        // waits for its busy agent), so an `info` line, and no BRIDGE_ERR_OPEN_FAILED.
        logger.info({ device: deviceId, code: result.code }, "session ended while it was being opened");
        return callback(connackError(3, "session ended while it was being opened"), false);
      }
      if (result.status !== "committed") {
        hub.limitBreach(BrokerErrorCode.openFailed);
        warnings.openRefused(deviceId, result.code);
        return callback(connackError(3, "agent unavailable"), false);
      }
      if (decision.device) registry.touch(deviceId);
      ctx.offlineQueue.opened(connection);
      callback(null, true);
    })().catch((err: unknown) => {
      logger.error({ err, device: facts.clientId.slice(0, 64) }, "authentication failed with a fault");
      callback(connackError(3, "server unavailable"), false);
    });
  };
}
