/**
 * The narrow interface between the agent runtime and whatever carries connections to it (the MQTT broker,
 * the WebSocket agent endpoint, tests). Transports never see agent internals: they open connections,
 * deliver decoded events and receive frames back through a `ConnectionTransport` they provide.
 */
import type { CodecName, DownMessage, UpMessage, Value } from "../codecs/frames.ts";

/** What kind of transport carries a connection. */
export type ConnectionKind = "mqtt" | "ws" | "internal";

/**
 * A runtime protocol message: the runtime's own frames, sent only to connections whose protocol flag is on.
 * An MQTT transport maps them to `down/identity` and `down/state`; the WebSocket transport to the JSON protocol.
 */
export type ProtocolMessage =
  | { type: "identity"; name: string; agent: string; protocolVersion: number; serverTime: number }
  | { type: "state"; state: Value };

/** Provided by the transport for each connection: how the runtime reaches the other side. */
export interface ConnectionTransport {
  /**
   * Sends an application frame (cmd, rpc result, reason chunk, error, shadow delta) in the connection's own codec.
   * Called only after the writes of the event that produced it have committed (output gate).
   */
  send(message: DownMessage, options: { qos: 0 | 1 }): void;
  /** Sends a runtime protocol message. Never called when the connection's protocol flag is false. */
  sendProtocol(message: ProtocolMessage): void;
  /**
   * Closes the connection from the server side. `reason` is text for the other side and the logs (the agent's own
   * `conn.close(reason)`: protocol abuse, its own policy). `as` is set when the runtime itself closes it for a cause
   * the transport should record as such: `destroyed`, its agent was destroyed (gone, not failing).
   */
  close(reason: string, as?: RuntimeCloseReason): void;
  /**
   * The codec the transport encodes frames in now, for a transport where that can change after the connection opened
   * (an MQTT device's hello names another codec): the agent measures frames against the device's maxFrame in it.
   * Absent: the codec given when the connection opened holds for its whole life.
   */
  readonly codec?: CodecName;
  /**
   * The largest frame the other side can receive, as the agent knows it (`Connection.setFrameLimit`): a transport that
   * writes frames of its own keeps them within it. Absent: the transport writes none, or has no use for it.
   */
  setFrameLimit?(maxFrame: number | null): void;
}

/** Facts about a connection, given when it opens. */
export interface ConnectionInit {
  /** Unique per connection (an MQTT session or one WebSocket). */
  id: string;
  kind: ConnectionKind;
  codec: CodecName;
  /** A readonly connection may not change agent state (WebSocket viewers). */
  readonly?: boolean;
  /** Transport-specific facts for `onConnect` / `shouldSendProtocolMessages` (remote address, firmware, url...). */
  context?: Readonly<Record<string, string | number | boolean | undefined>>;
  /**
   * The transport's raw request (an HTTP upgrade request, an MQTT CONNECT packet), handed to `onConnect` and
   * `shouldSendProtocolMessages` as `ctx.request`. Never persisted. Added after the first contract; optional.
   */
  request?: unknown;
  transport: ConnectionTransport;
}

/** Events a transport can deliver besides device frames. */
export type ClientMessage =
  /** A WebSocket client asks to replace the agent state (refused for readonly connections). */
  { channel: "client-state"; frame: { state: Value } };

export type InboundMessage = UpMessage | ClientMessage;

/** The outcome of one event after it ran and its writes committed. Expected failures are values. */
export type EventResult =
  | { status: "committed" }
  /** The handler threw: its writes were rolled back, its frames dropped, `onError` was told. */
  | { status: "failed"; code: string; message: string };

/**
 * `deliver` either accepts the event into the agent's bounded mailbox, or says the mailbox is full.
 * When full the transport waits for `ready` and delivers again (an MQTT device's PUBACK waits meanwhile),
 * so memory stays bounded and nothing is dropped.
 */
export type DeliverOutcome =
  | { accepted: true; done: Promise<EventResult> }
  | { accepted: false; reason: "mailbox-full"; ready: Promise<void> };

/**
 * Why a connection closed. `will` means the device vanished and its last will was published. `removed` and `revoked`
 * are an operator's doing, not a failure: the device was removed (its record, and with `DELETE /api/devices/:id` its
 * agent) or its secret was rotated with the sessions that used it ended. `destroyed`: its agent was destroyed
 * otherwise (the agent's own `destroy()`, `runtime.destroyAgent`), not a failure either.
 */
export type CloseReason =
  | "disconnect"
  | "will"
  | "takeover"
  | "error"
  | "shutdown"
  | "removed"
  | "revoked"
  | "destroyed";

/** The closes the runtime itself asks of a transport (`ConnectionTransport.close`'s `as`). */
export type RuntimeCloseReason = Extract<CloseReason, "destroyed">;

/** Implemented by the agent runtime; used by transports. */
export interface AgentHost {
  /**
   * Opens a connection to agent `agentId` (creating or waking the agent), decides its protocol flag
   * once with `shouldSendProtocolMessages`, runs `onConnect`. Resolves when that event has committed.
   */
  open(agentId: string, connection: ConnectionInit): Promise<EventResult>;
  /** Delivers one inbound message from an open connection. `done` resolves after commit and output release. */
  deliver(agentId: string, connectionId: string, message: InboundMessage): DeliverOutcome;
  /** Closes a connection and runs `onClose`. Resolves when that event has committed. */
  close(agentId: string, connectionId: string, reason: CloseReason): Promise<EventResult>;
}
