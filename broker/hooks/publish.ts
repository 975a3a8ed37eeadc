/** PUBLISH from a device: ACL, in-flight limit, then the up path; aedes sends the PUBACK when `callback` runs. */
import type { AedesOptions, Client } from "aedes";
import { BridgeError } from "../../errors/index.ts";
import { mayPublish } from "../acl.ts";
import type { DeviceConnection } from "../connection.ts";
import { BrokerErrorCode } from "../errors.ts";
import { readPacing } from "../read-pacer.ts";
import type { UplinkOutcome } from "../uplink.ts";
import { AclWarnings } from "./acl-warnings.ts";
import type { HookContext } from "./context.ts";

type AuthorizePublish = NonNullable<AedesOptions["authorizePublish"]>;
type PublishPacket = Parameters<AuthorizePublish>[1];
type Answer = (error?: Error | null) => void;

/**
 * A QoS 2 PUBLISH sent again ([MQTT-3.3.1-1]: DUP set): its first copy may have reached the agent already, with only
 * the PUBREC lost. aedes answers a copy it still holds with PUBREC alone, but only after this hook, so the hook asks
 * first rather than hand the message to the agent twice.
 */
function isQos2Retransmission(packet: PublishPacket): boolean {
  return packet.qos === 2 && packet.dup && packet.messageId !== undefined;
}

/**
 * What to do with one up message. `deliver`: hand it to the agent. `skip`: a QoS 2 copy whose first copy aedes holds
 * (received, PUBREL not yet): answer it alone ([MQTT-4.3.3-2]). `repeat`: a QoS 2 copy whose first copy this session
 * is still handling: answer it as that one was answered, after it.
 */
type Handling = { kind: "deliver" } | { kind: "skip" } | { kind: "repeat"; outcome: Promise<UplinkOutcome> };

const DELIVER: Handling = { kind: "deliver" };
/** What aedes keeps of an up message's payload once the broker took it (never written to: shared). */
const NO_PAYLOAD = Buffer.alloc(0);
const SKIP: Handling = { kind: "skip" };

export function createAuthorizePublish(ctx: HookContext): AuthorizePublish {
  const { hub, uplink, connections, qos2InFlight } = ctx;
  const { logger, limits } = ctx.opts;
  const paceReads = readPacing(limits);
  const aclWarnings = new AclWarnings(logger, ctx.opts.clock);

  /** The first copy of a QoS 2 message may be in aedes' store already: then only answer this one. */
  const askStore = (client: Client, messageId: number): Promise<Handling> =>
    ctx.holdsQos2(client, messageId).then(
      (held) => (held ? SKIP : DELIVER),
      // A store that fails to answer counts as "not held": delivered at least once rather than lost.
      () => DELIVER,
    );

  /**
   * Hands one message to the up path (or only answers it); the answer keeps PUBLISH order. `settled` runs right after
   * aedes took the answer (a QoS 2 message being tracked in `qos2InFlight`).
   */
  const forward = (
    connection: DeviceConnection,
    packet: PublishPacket,
    payload: Buffer,
    callback: Answer,
    handling: Handling,
    settled: ((outcome: UplinkOutcome) => void) | undefined,
  ): void => {
    const answer = (outcome: UplinkOutcome): void => {
      connection.inflight--;
      paceReads(connection);
      let error: BridgeError | null = null;
      if (outcome.status !== "ack") {
        // Only a live session is ended by an outcome; one that ended already keeps the reason it ended for.
        if (!connection.closed) connection.markClosing("error");
        error = new BridgeError(outcome.code, outcome.message);
      }
      // The answer (PUBACK, or the session's end) leaves on the loop's check phase, after the I/O this message
      // started in the poll phase: an engine request an agent started while handling it, which undici also writes
      // on the check phase, and first. Written at once, the ack would wake the device's process just ahead of the
      // request, and on a machine with few cores the two wake-ups compete (docs/benchmarks.md, "Session 5"). Every
      // outcome takes the same path, so answers keep the order of the PUBLISHes.
      setImmediate(() => {
        // A message the agent got after its session ended (received in full before the end): no answer reaches the
        // device any more, so aedes is not asked to write one, except to store an applied QoS 2 message of a
        // persistent session, whose store then answers the device's resend after reconnecting with PUBREC alone. Not
        // a removed device's: its session was dropped from the store already (persistent-session.ts), and stored now
        // the message would answer, unseen by the agent, a QoS 2 message of a device provisioned later under its id.
        const resumable = !connection.clean && connection.closeReason !== "removed";
        if (connection.client.closed && !(packet.qos === 2 && resumable && error === null)) {
          settled?.(outcome);
          return;
        }
        // The broker ended the session already and aedes has not closed its client yet: a takeover that gave up the
        // old session's waiting messages (END_HAND_OVER_WAIT_MS), or whose agent could not apply them, and now waits
        // for the agent to take the close. No PUBACK is owed and the session keeps the reason it ended for: its
        // connection ends now, quietly, as the takeover would end it. Passed to aedes, the error would cut it as a
        // protocol error (an MQTT WebSocket's 1008) and log a session error for what the broker did itself.
        if (error !== null && connection.closed) {
          connection.client.close();
          settled?.(outcome);
          return;
        }
        try {
          callback(error);
        } catch (err) {
          // Outside the uplink's own guard now: a throw here would otherwise end the process.
          logger.error({ err, device: connection.deviceId }, "answering an up message failed");
        }
        // aedes stores an accepted QoS 2 message on its own from here on (in microtasks, before it reads the
        // socket again), and its store answers later copies.
        settled?.(outcome);
      });
    };
    if (handling.kind === "deliver") uplink.handle(connection, packet.topic, payload, answer);
    else uplink.skip(connection, answer, handling.kind === "repeat" ? handling.outcome : undefined);
  };

  /**
   * Forwards after the session's pending decisions and once `decide` settled: later messages wait, so the agent
   * still gets them in arrival order.
   */
  const forwardGated = (
    connection: DeviceConnection,
    packet: PublishPacket,
    payload: Buffer,
    callback: Answer,
    decide: () => Handling | Promise<Handling>,
    settled: ((outcome: UplinkOutcome) => void) | undefined,
  ): void => {
    const gate = (connection.upGate ?? Promise.resolve())
      .then(decide)
      // Forwarded even when the session ended meanwhile: it was received in full, and the end waits for it.
      .then((handling) => forward(connection, packet, payload, callback, handling, settled))
      .catch((err: unknown) => logger.error({ err, device: connection.deviceId }, "forwarding an up message failed"));
    connection.upGate = gate;
    void gate.then(() => {
      if (connection.upGate === gate) connection.upGate = undefined;
    });
  };

  /**
   * A QoS 2 message: tracked while it is handled, so a copy sent again meanwhile is not delivered twice. aedes
   * itself recognises a copy only once the first is in its store, i.e. after this hook answered it.
   */
  const forwardQos2 = (
    client: Client,
    connection: DeviceConnection,
    packet: PublishPacket,
    payload: Buffer,
    callback: Answer,
    messageId: number,
  ): void => {
    const earlier = qos2InFlight.find(connection.deviceId, messageId);
    if (earlier !== undefined && earlier.connection === connection) {
      // The same message again within this session (a packet id is not reused before the handshake ends,
      // [MQTT-2.3.1-3]): answered as its first copy is, after it; the agent sees it once.
      const repeat: Handling = { kind: "repeat", outcome: earlier.outcome };
      if (connection.upGate === undefined) forward(connection, packet, payload, callback, repeat, undefined);
      else forwardGated(connection, packet, payload, callback, () => repeat, undefined);
      return;
    }
    // A persistent session goes on across connections: its copy from before a reconnect may still be in flight.
    // A clean session starts afresh ([MQTT-3.1.2-6]), and its packet ids name new messages.
    const resumed = earlier !== undefined && !connection.clean && !earlier.connection.clean ? earlier : undefined;
    const settled = qos2InFlight.begin(connection, messageId);
    if (resumed !== undefined) {
      // Handled by the earlier connection: only answered. Not applied there (that session ended first, or its
      // storage failed): delivered here, unless aedes holds it after all.
      const decide = () =>
        resumed.outcome.then((outcome) => (outcome.status === "ack" ? SKIP : askStore(client, messageId)));
      forwardGated(connection, packet, payload, callback, decide, settled);
    } else if (isQos2Retransmission(packet)) {
      forwardGated(connection, packet, payload, callback, () => askStore(client, messageId), settled);
    } else if (connection.upGate !== undefined) {
      forwardGated(connection, packet, payload, callback, () => DELIVER, settled);
    } else {
      forward(connection, packet, payload, callback, DELIVER, settled);
    }
  };

  return (client, packet, callback) => {
    const connection = client ? connections.get(client) : undefined;
    if (!client || !connection) return callback(new Error("publish without a device session"));
    if (client.closed) {
      // aedes publishes the last will only after the session is gone: the agent learns it as close("will"),
      // and the will itself is not relayed (nobody may subscribe to up topics).
      connection.markClosing("will");
      return callback(new Error("last will consumed by the bridge"));
    }
    if (connection.closed || !connection.opened) return callback(new Error("session closed"));
    // The topic of the previous message passed already; a device publishes to the same topic again and again.
    if (packet.topic !== connection.lastUpTopic && !mayPublish(connection.deviceId, packet.topic)) {
      hub.aclDenied("publish");
      aclWarnings.publishDenied(connection.deviceId, packet.topic);
      connection.markClosing("error");
      return callback(new BridgeError(BrokerErrorCode.aclDenied, "publish outside the device namespace"));
    }
    // A safety net: the read pacer never lets aedes take more PUBLISHes than the limit has room for (read-pacer.ts).
    if (connection.inflight >= limits.maxInflightPerDevice) {
      hub.limitBreach(BrokerErrorCode.inflightLimit);
      logger.warn({ device: connection.deviceId, max: limits.maxInflightPerDevice }, "too many messages in flight");
      connection.markClosing("error");
      return callback(new BridgeError(BrokerErrorCode.inflightLimit, "too many messages in flight"));
    }
    // Counted from here, a message waiting behind a QoS 2 check included, until its answer; half the limit in flight
    // holds aedes' reads of the session (read-pacer.ts).
    connection.inflight++;
    paceReads(connection);
    // Up messages are consumed here; retaining them would keep device payloads in broker memory for nobody.
    packet.retain = false;
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
    // Taken, so aedes keeps none of it: it stores a QoS 2 message until its PUBREL only to know a resend by its id, up
    // to maxInflightInbound (1000) per device and across reconnects of a persistent session; with its payload, a device
    // withholding PUBRELs made the broker hold 1000 payloads for nobody (nobody may subscribe to up topics).
    packet.payload = NO_PAYLOAD;
    if (packet.qos === 2 && packet.messageId !== undefined) {
      forwardQos2(client, connection, packet, payload, callback, packet.messageId);
    } else if (connection.upGate !== undefined) {
      forwardGated(connection, packet, payload, callback, () => DELIVER, undefined);
    } else {
      forward(connection, packet, payload, callback, DELIVER, undefined);
    }
  };
}
