/**
 * The up path: one MQTT publish from a device becomes one agent event. Limits and decoding run at arrival, in
 * packet order; the hand-over to `host.deliver` is chained per connection so events reach the mailbox in order;
 * the returned promise settles only after the event committed, and aedes sends the PUBACK only then.
 */
import type { AgentHost, EventResult } from "../agents/host.ts";
import type { UpMessage } from "../codecs/frames.ts";
import type { Clock } from "./clock.ts";
import type { DeviceConnection } from "./connection.ts";
import { logErrorFrame } from "./error-frame-log.ts";
import { BrokerErrorCode } from "./errors.ts";
import { handleUp } from "./handlers/index.ts";
import { decodeRefusalMessage } from "./json-text-hint.ts";
import type { ObserverHub } from "./observer.ts";
import type { BrokerLimits, BrokerLogger } from "./options.ts";
import { readPacing } from "./read-pacer.ts";
import type { DeviceRegistry } from "./registry/index.ts";
import { ThrottledWarningPerKey } from "./throttled-warning-per-key.ts";
import type { DownSender } from "./transport.ts";
import { decodeUp, guessHelloCodec, parseUpTopic, type UpTopic } from "./wire.ts";

/**
 * What to tell aedes about one up message. `ack`: it was handled (stored, or refused with an error frame the
 * device received), so a QoS 1 PUBACK may go. `disconnect`: protocol abuse or a server fault; the session ends
 * without acknowledging.
 */
export type UplinkOutcome = { status: "ack" } | { status: "disconnect"; code: string; message: string };

export interface UplinkDeps {
  host: AgentHost;
  registry: DeviceRegistry;
  hub: ObserverHub;
  logger: BrokerLogger;
  limits: BrokerLimits;
  sender: DownSender;
  /** The broker's clock: the rate limit and the registry's last-seen marks read it once per message. */
  clock: Clock;
}

/** Receives the outcome of one up message; called exactly once, in the order the messages arrived. */
export type UplinkDone = (outcome: UplinkOutcome) => void;

export interface Uplink {
  /**
   * Handles one publish from `connection` on `topic` (already inside its up namespace). `done` runs once the outcome
   * is known and every earlier message of the connection has had its own (synchronously, for a refusal with nothing
   * pending before it), so PUBACKs keep arrival order.
   */
  handle(connection: DeviceConnection, topic: string, payload: Buffer, done: UplinkDone): void;
  /**
   * Answers a message without handing it to the agent (a QoS 2 copy of a message handled already, or being handled):
   * with `outcome` once that settled, else with an ack. `done` runs in arrival order with the connection's other
   * messages, as for `handle`.
   */
  skip(connection: DeviceConnection, done: UplinkDone, outcome?: Promise<UplinkOutcome>): void;
}

const ACK: UplinkOutcome = { status: "ack" };
const CLOSED: UplinkOutcome = { status: "disconnect", code: "closed", message: "connection closed" };
const HOST_FAULT: UplinkOutcome = {
  status: "disconnect",
  code: BrokerErrorCode.hostFault,
  message: "agent host fault",
};

export const UNAPPLIED_WARNING = "up message not applied; the session ends without acknowledging it";

/** The registry's last_seen is advisory and written in batches: one mark a second per session is plenty. */
const TOUCH_EVERY_MS = 1000;

/**
 * Failed results that mean the event was never applied for a reason outside the message itself (the runtime is
 * shutting down, the agent was destroyed under it, the connection is unknown to it, its storage failed or is full).
 * Acknowledged means stored, so these get no PUBACK: the device is told with an error frame, then the session ends
 * and the device sends the message again after reconnecting (by then the retention may have made room, an operator
 * raised the cap, or a new agent serves a device still allowed in after its agent was destroyed; a removed device's
 * reconnect is refused).
 * Any other failure is the handler refusing this message: it is acknowledged with an error frame, since sending
 * it again cannot help.
 */
export const UNAPPLIED_FAILURE_CODES: readonly string[] = [
  "BRIDGE_ERR_RUNTIME_CLOSED",
  "BRIDGE_ERR_AGENT_DESTROYED",
  "BRIDGE_ERR_CONNECTION_UNKNOWN",
  "BRIDGE_ERR_STORAGE",
  "BRIDGE_ERR_STORAGE_FULL",
  // Its agent is not started (its onStart keeps timing out, agents/start-backoff.ts): the message waits on the device
  // until the agent starts again rather than being acknowledged and lost.
  "BRIDGE_ERR_AGENT_START_TIMEOUT",
];

export function createUplink(deps: UplinkDeps): Uplink {
  const { host, hub, limits, sender, clock, logger } = deps;
  const decodeLimits = { maxFrameBytes: limits.maxPayloadBytes, maxDepth: limits.maxDepth };
  const paceReads = readPacing(limits);
  // A device whose agent cannot apply its messages (a full database, a start backing off) reconnects and sends the
  // same message again at its backoff rate: one line per 10 s per device and code, with the attempts since the last.
  const unapplied = new ThrottledWarningPerKey(logger, clock, UNAPPLIED_WARNING, { keysAre: "devices" });

  // Refusals go in the connection's codec, not the refused message's suffix: a binary device that sent a /json
  // message must still never receive a JSON text frame (DESIGN section 3, protocol suppression).
  function refuse(connection: DeviceConnection, topic: string, code: string, msg: string, codec?: string): void {
    logErrorFrame(logger, connection.deviceId, { code, msg }, { topic, codec });
    sender.send(connection, { channel: "error", frame: { code, msg } }, 0);
  }

  function hostFault(connection: DeviceConnection, err: unknown): UplinkOutcome {
    logger.error({ err, device: connection.deviceId }, "agent host failed to take an event");
    hub.limitBreach(BrokerErrorCode.hostFault);
    return HOST_FAULT;
  }

  /** What the device is told about its message once the agent handled it (or could not). */
  async function outcomeOf(
    connection: DeviceConnection,
    topic: string,
    message: UpMessage,
    result: EventResult,
  ): Promise<UplinkOutcome> {
    if (result.status !== "failed") return ACK;
    // The handler threw and its frames were dropped; the device still learns its message was not applied.
    const id = "id" in message.frame && typeof message.frame.id === "string" ? message.frame.id : undefined;
    const frame =
      id === undefined ? { code: result.code, msg: result.message } : { code: result.code, msg: result.message, id };
    if (UNAPPLIED_FAILURE_CODES.includes(result.code)) {
      // Handed over as the session ended (SessionManager.handedOver): nobody is left to tell or to disconnect.
      if (connection.closed) return { status: "disconnect", code: result.code, message: result.message };
      // The code in the key: a device whose failure changes cause gets a line for the new one at once.
      unapplied.note(`${connection.deviceId}\u0000${result.code}`, { device: connection.deviceId, code: result.code });
      logErrorFrame(logger, connection.deviceId, frame, { topic });
      // Written before the session ends (aedes writes on a later tick), so the device sees why it was cut.
      await sender.sendLast(connection, { channel: "error", frame });
      return { status: "disconnect", code: result.code, message: result.message };
    }
    logErrorFrame(logger, connection.deviceId, frame, { topic });
    sender.send(connection, { channel: "error", frame }, 0);
    return ACK;
  }

  /** Waits for the commit of an accepted event and maps its result. */
  function afterCommit(connection: DeviceConnection, topic: string, message: UpMessage, done: Promise<EventResult>) {
    return done.then(
      (result) => (result.status === "failed" ? outcomeOf(connection, topic, message, result) : ACK),
      (err: unknown) => hostFault(connection, err),
    );
  }

  /**
   * The slow hand-over: after the connection's earlier hand-overs, offers the event to the mailbox until it is
   * accepted, waiting on `ready` while the mailbox is full. Resolves on acceptance, not on commit: `done` is wrapped
   * so the async function does not adopt it, which would make the next message wait for this one's commit instead
   * of only for its place in the mailbox. When the session's end gives the waiting messages up (`abandonHandOvers`),
   * it resolves undefined at once and lets go of its message; those behind it follow as it settles.
   */
  async function handOverInOrder(
    connection: DeviceConnection,
    message: UpMessage,
    previous: Promise<void> | undefined,
  ): Promise<{ done: Promise<EventResult> } | undefined> {
    if (previous !== undefined) await previous;
    // The wait is over; no hand-over of the session waits for room now (those behind this one wait for it).
    connection.wakeHandOver = undefined;
    for (;;) {
      // The message was received in full, so it reaches the agent even when the session ended meanwhile (the end
      // waits for it, bounded: SessionManager.handedOver), unless the end gave it up or the agent was told of the end
      // already: behind the close it would arrive from a connection the agent let go.
      if (connection.hostClosed || connection.handOversAbandoned) return undefined;
      const outcome = host.deliver(connection.deviceId, connection.connectionId, message);
      if (outcome.accepted) return { done: outcome.done };
      // Backpressure: this publish stays unacknowledged, and aedes reads nothing more of this session while a
      // hand-over waits (read-pacer.ts), so the device slows down instead of the broker's memory growing. The end of
      // the session may give it up first: then it is let go at once, not when the mailbox has room.
      await roomOrAbandoned(connection, outcome.ready);
      connection.wakeHandOver = undefined;
    }
  }

  function deliver(
    connection: DeviceConnection,
    topic: string,
    message: UpMessage,
  ): UplinkOutcome | Promise<UplinkOutcome> {
    if (connection.handOversPending === 0) {
      // Fast path: nothing of this connection is waiting for the mailbox, so the order is kept by handing over now,
      // with no promise chain per message.
      if (connection.hostClosed || connection.handOversAbandoned) return CLOSED;
      let outcome: ReturnType<AgentHost["deliver"]>;
      try {
        outcome = host.deliver(connection.deviceId, connection.connectionId, message);
      } catch (err) {
        return hostFault(connection, err);
      }
      if (outcome.accepted) return afterCommit(connection, topic, message, outcome.done);
      // The mailbox is full: wait for room, then keep later messages of this connection behind this one.
      return slowDeliver(connection, topic, message, outcome.ready);
    }
    return slowDeliver(connection, topic, message, undefined);
  }

  /**
   * Resolves when the mailbox has room (`ready`), or when the session's end gives up the messages waiting for it
   * (`connection.wakeHandOver`). Not `Promise.race` with a promise of the session's, which would gather a reaction per
   * wait for the session's life; and what `ready` keeps until the mailbox has room is this promise's `resolve` alone,
   * not the session.
   */
  function roomOrAbandoned(connection: DeviceConnection, ready: Promise<void>): Promise<void> {
    return new Promise<void>((resolve) => {
      connection.wakeHandOver = resolve;
      ready.then(resolve, resolve);
    });
  }

  function slowDeliver(
    connection: DeviceConnection,
    topic: string,
    message: UpMessage,
    firstWait: Promise<void> | undefined,
  ): Promise<UplinkOutcome> {
    connection.handOversPending++;
    paceReads(connection);
    const accepted = handOverInOrder(
      connection,
      message,
      firstWait === undefined ? connection.deliverTail : roomOrAbandoned(connection, firstWait),
    );
    const settled = accepted.then(
      () => {
        connection.handOversPending--;
        paceReads(connection);
      },
      () => {
        connection.handOversPending--;
        paceReads(connection);
      },
    );
    connection.deliverTail = settled;
    return accepted.then(
      (handedOver) => (handedOver === undefined ? CLOSED : afterCommit(connection, topic, message, handedOver.done)),
      (err: unknown) => hostFault(connection, err),
    );
  }

  return {
    handle(connection, topic, payload, done) {
      let own: UplinkOutcome | Promise<UplinkOutcome>;
      try {
        own = handleNow(connection, topic, payload);
      } catch (err) {
        own = hostFault(connection, err);
      }
      answerInOrder(connection, own, done);
    },
    skip(connection, done, outcome) {
      answerInOrder(connection, outcome ?? ACK, done);
    },
  };

  /**
   * [MQTT-4.6.0-2] PUBACKs go out in the order the PUBLISHes came: a message refused at once (an error frame) still
   * waits for the commits of the messages before it.
   */
  function answerInOrder(
    connection: DeviceConnection,
    own: UplinkOutcome | Promise<UplinkOutcome>,
    done: UplinkDone,
  ): void {
    // Inline arrows, not named closures: under tsx every named function expression costs a `__name` call per
    // message on top of its allocation.
    if (connection.acksPending === 0) {
      if (!(own instanceof Promise)) {
        done(own);
        return;
      }
      connection.acksPending++;
      connection.ackTail = own.then(
        (outcome) => report(connection, done, outcome),
        (err: unknown) => report(connection, done, hostFault(connection, err)),
      );
      return;
    }
    connection.acksPending++;
    const previous = connection.ackTail ?? Promise.resolve();
    connection.ackTail = previous
      .then(() => own)
      .then(
        (outcome) => report(connection, done, outcome),
        (err: unknown) => report(connection, done, hostFault(connection, err)),
      );
  }

  /** Reports one outcome to aedes; never throws, so the chain of later outcomes is never broken. */
  function report(connection: DeviceConnection, done: UplinkDone, outcome: UplinkOutcome): void {
    connection.acksPending--;
    try {
      done(outcome);
    } catch (err) {
      // aedes' callback should never throw; if it does, the next message's outcome must still be reported.
      logger.error({ err, device: connection.deviceId }, "reporting an up message outcome failed");
    }
  }

  function handleNow(
    connection: DeviceConnection,
    topic: string,
    payload: Buffer,
  ): UplinkOutcome | Promise<UplinkOutcome> {
    // Monotonic, for the rate limit and the touch interval; the registry's last_seen is a wall time.
    const now = clock.monotonicNow();
    if (!connection.bucket.take(now)) {
      connection.rateBreaches++;
      hub.limitBreach(BrokerErrorCode.rateLimited);
      if (connection.rateBreaches > limits.maxRateBreaches) {
        return {
          status: "disconnect",
          code: BrokerErrorCode.rateLimited,
          message: `flood: more than ${limits.maxRateBreaches} messages over the rate limit`,
        };
      }
      refuse(
        connection,
        topic,
        BrokerErrorCode.rateLimited,
        `over ${limits.messagesPerSecond} messages/s; message dropped`,
      );
      return ACK;
    }
    connection.rateBreaches = 0;
    if (payload.length > limits.maxPayloadBytes) {
      hub.limitBreach(BrokerErrorCode.frameTooLarge);
      refuse(connection, topic, BrokerErrorCode.frameTooLarge, `payload over ${limits.maxPayloadBytes} bytes`);
      return ACK;
    }
    let parsed: UpTopic;
    if (topic === connection.lastUpTopic && connection.lastUpParsed !== undefined) {
      parsed = connection.lastUpParsed;
    } else {
      parsed = parseUpTopic(topic);
      connection.lastUpTopic = topic;
      connection.lastUpParsed = parsed;
    }
    if (!parsed.ok) {
      hub.decodeError(parsed.code);
      refuse(connection, topic, parsed.code, parsed.message);
      return ACK;
    }
    const known = connection.upCodec();
    let codec = parsed.codec ?? known.codec;
    if (parsed.codec === undefined && parsed.channel === "hello" && known.source === "default") {
      codec = guessHelloCodec(payload) ?? codec;
    }
    const decoded = decodeUp(codec, parsed.channel, payload, decodeLimits);
    if (!decoded.ok) {
      hub.decodeError(decoded.code);
      // A suffix says what the device meant to send; without one, JSON text read as CBOR or protobuf is named as such.
      const msg =
        parsed.codec === undefined
          ? decodeRefusalMessage(codec, parsed.channel, payload, decoded.message)
          : decoded.message;
      refuse(connection, topic, decoded.code, msg, codec);
      return ACK;
    }
    // What the device's latest message was in hints at what it speaks: its down frames use that only when nothing is
    // known (no hello, no registry codec). A message without a suffix was in the connection's codec already.
    connection.topicCodec = parsed.codec;
    handleUp({ registry: deps.registry, logger, connection, registered: connection.registered }, decoded.message);
    hub.messageIn(parsed.channel, codec);
    if (connection.registered && now - connection.touchedAtMs >= TOUCH_EVERY_MS) {
      connection.touchedAtMs = now;
      deps.registry.touch(connection.deviceId, clock.now());
    }
    return deliver(connection, topic, decoded.message);
  }
}
