/**
 * One WebSocket client connected to one agent: opens the agent connection, feeds client messages through the
 * agent mailbox one at a time in arrival order, and maps the agent's frames back to JSON messages.
 *
 * Backpressure: messages are queued per socket; when the queue reaches `maxPendingMessages` the socket is paused
 * (no more reads) until it drains, and a full agent mailbox is waited out, so a flooding client slows itself
 * rather than growing memory.
 */
import type { WebSocket } from "ws";
import { AGENT_ERRORS } from "../../agents/errors.ts";
import type { AgentHost, ConnectionTransport, EventResult, InboundMessage } from "../../agents/host.ts";
import type { SocketObserver } from "../metrics/metrics.ts";
import {
  type ClientMessage,
  fromDown,
  fromProtocol,
  parseClientMessage,
  type ServerMessage,
  WS_ERROR_CODES,
} from "./protocol.ts";
import { frameBytes, WriteBacklog } from "./write-backlog.ts";

/** Minimal logger (pino fits). */
export interface SessionLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface SessionOptions {
  host: AgentHost;
  agentId: string;
  connectionId: string;
  readonly: boolean;
  context: Record<string, string | number | boolean | undefined>;
  observer: SocketObserver;
  logger: SessionLogger;
  maxPendingMessages: number;
  maxProtocolErrors: number;
  /** Bytes waiting to be written to the client past which it is closed as not reading (see `#send`). */
  maxBufferedBytes: number;
}

/** The answer to a message queued on the socket when its agent was destroyed (the runtime's own failure). */
const AGENT_DESTROYED: EventResult = Object.freeze({
  status: "failed",
  code: AGENT_ERRORS.AGENT_DESTROYED,
  message: "agent destroyed",
});

/**
 * WebSocket close codes used by the endpoint (RFC 6455 section 7.4.1; 1013 from the IANA registry of close codes).
 * `tryAgainLater` closes a client that stopped reading: it broke no rule of the protocol (that is `policy`), it fell
 * behind, and a reconnect gets the agent's identity and whole state again, so it loses no state by coming back.
 */
export const CLOSE_CODES = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008,
  internal: 1011,
  tryAgainLater: 1013,
} as const;

export class AgentSocketSession {
  readonly #ws: WebSocket;
  readonly #o: SessionOptions;
  /** Resolves when the agent connection is open (true) or could not open (false). */
  readonly #opened: Promise<boolean>;
  #chain: Promise<void>;
  #pending = 0;
  #protocolErrors = 0;
  #closed = false;
  /** True while this socket's client-state event runs: an `error` frame then means the state was refused. */
  #stateInFlight = false;
  /** rpc ids waiting for a reply, so a failed event still answers its caller. */
  readonly #awaitingRpc = new Set<string>();
  /** The agent was destroyed: messages still queued on this socket are answered as failed, not delivered. */
  #agentDestroyed = false;
  /** The messages still unwritten to the client's socket, by size: see `#send`. */
  readonly #backlog = new WriteBacklog();
  /** Resolves when the socket has closed (the close handshake finished, or the socket was cut). */
  readonly #socketClosed: Promise<void>;
  #markSocketClosed!: () => void;

  constructor(ws: WebSocket, options: SessionOptions) {
    this.#ws = ws;
    this.#o = options;
    this.#socketClosed = new Promise((resolve) => {
      this.#markSocketClosed = resolve;
    });
    options.observer.opened();
    this.#opened = this.#open();
    this.#chain = this.#opened.then(() => undefined);
    ws.on("message", (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on("close", () => this.#onClose());
    ws.on("error", (err) => options.logger.debug({ err, agentId: options.agentId }, "agent socket error"));
  }

  /** Starts the close handshake from the server side (bridge shutdown); `terminate` cuts what is left of it. */
  shutdown(): void {
    this.#ws.close(CLOSE_CODES.goingAway, "bridge shutting down");
  }

  /** Cuts the socket without waiting for the close handshake any longer. */
  terminate(): void {
    this.#ws.terminate();
  }

  /** Resolves when the socket has closed, whether by the close handshake or cut. */
  socketClosed(): Promise<void> {
    return this.#socketClosed;
  }

  async #open(): Promise<boolean> {
    const transport: ConnectionTransport = {
      send: (message) => {
        if (message.channel === "rpc") this.#awaitingRpc.delete(message.frame.id);
        if (message.channel === "error" && this.#stateInFlight && message.frame.id === undefined) {
          // The runtime refuses a state change with an error frame; the Agents SDK client expects this shape.
          const { code, msg } = message.frame;
          this.#send({ type: "cf_agent_state_error", error: msg, code }, "state-error");
          return;
        }
        this.#send(fromDown(message), message.channel);
      },
      sendProtocol: (message) => this.#send(fromProtocol(message), message.type),
      close: (reason, as) => {
        if (as !== "destroyed") {
          this.#ws.close(CLOSE_CODES.normal, closeReason(reason));
          return;
        }
        // Every message this socket sent is answered before the close frame: the one the destroy failed in the
        // agent's mailbox (its answer is on its way), and those still queued here, which fail without reaching a
        // runtime that no longer knows the connection. A client never waits for an answer that cannot come.
        this.#agentDestroyed = true;
        void this.#chain.then(() => this.#ws.close(CLOSE_CODES.normal, closeReason(reason)));
      },
    };
    let result: EventResult;
    try {
      result = await this.#o.host.open(this.#o.agentId, {
        id: this.#o.connectionId,
        kind: "ws",
        codec: "json",
        readonly: this.#o.readonly,
        context: this.#o.context,
        transport,
      });
    } catch (err) {
      this.#o.logger.warn({ err, agentId: this.#o.agentId }, "agent socket open failed");
      result = { status: "failed", code: WS_ERROR_CODES.openFailed, message: "the agent could not be opened" };
    }
    if (result.status === "failed") {
      this.#send({ type: "error", code: result.code, message: result.message }, "error");
      this.#ws.close(CLOSE_CODES.internal, "agent open failed");
      return false;
    }
    return true;
  }

  #onMessage(data: unknown, isBinary: boolean): void {
    // ws still reads messages while its close handshake runs (1008, 1013, the agent's own close): the socket is
    // closed to the protocol from the moment it closes, so they must not reach the agent, whose answers could not go.
    if (this.#closed || this.#ws.readyState !== this.#ws.OPEN) return;
    if (isBinary) {
      this.#protocolError(WS_ERROR_CODES.badMessage, "binary messages are not part of this protocol; send JSON text");
      return;
    }
    const text = Buffer.isBuffer(data)
      ? data.toString("utf8")
      : Array.isArray(data)
        ? Buffer.concat(data).toString("utf8")
        : Buffer.from(data as ArrayBuffer).toString("utf8");
    const parsed = parseClientMessage(text);
    if (!parsed.ok) {
      this.#protocolError(parsed.code, parsed.message, parsed.id);
      return;
    }
    this.#o.observer.messageIn(parsed.message.type === "rpc" ? "rpc" : "client-state");
    this.#pending++;
    if (this.#pending >= this.#o.maxPendingMessages) this.#ws.pause();
    this.#chain = this.#chain.then(async () => {
      try {
        if (!this.#closed && (await this.#opened)) await this.#handle(parsed.message);
      } catch (err) {
        this.#o.logger.warn({ err, agentId: this.#o.agentId }, "agent socket message failed");
      } finally {
        this.#pending--;
        if (this.#pending < this.#o.maxPendingMessages && !this.#closed) this.#ws.resume();
      }
    });
  }

  async #handle(message: ClientMessage): Promise<void> {
    let inbound: InboundMessage;
    if (message.type === "cf_agent_state") {
      if (this.#o.readonly) {
        // Refused here so a viewer never costs the agent a mailbox slot; the runtime refuses it too.
        this.#send(
          { type: "cf_agent_state_error", error: "this connection is readonly", code: WS_ERROR_CODES.readonly },
          "state-error",
        );
        return;
      }
      inbound = { channel: "client-state", frame: { state: message.state } };
    } else {
      this.#awaitingRpc.add(message.id);
      inbound = { channel: "rpc", frame: { id: message.id, m: message.method, a: message.args } };
    }
    this.#stateInFlight = message.type === "cf_agent_state";
    let result: EventResult;
    try {
      result = this.#agentDestroyed ? AGENT_DESTROYED : await this.#deliver(inbound);
    } finally {
      this.#stateInFlight = false;
    }
    if (result.status === "committed") {
      // An agent that swallowed an rpc without answering still owes the caller a reply.
      if (message.type === "rpc" && this.#awaitingRpc.delete(message.id)) {
        this.#send({ type: "rpc", id: message.id, success: true, result: null, done: true }, "rpc");
      }
      return;
    }
    if (message.type === "rpc") {
      if (this.#awaitingRpc.delete(message.id)) {
        this.#send(
          { type: "rpc", id: message.id, success: false, error: result.message, code: result.code, done: true },
          "rpc",
        );
      }
    } else {
      this.#send({ type: "cf_agent_state_error", error: result.message, code: result.code }, "state-error");
    }
  }

  async #deliver(message: InboundMessage): Promise<EventResult> {
    for (;;) {
      const outcome = this.#o.host.deliver(this.#o.agentId, this.#o.connectionId, message);
      if (outcome.accepted) return outcome.done;
      await outcome.ready;
      if (this.#closed) return { status: "failed", code: WS_ERROR_CODES.eventFailed, message: "socket closed" };
    }
  }

  #protocolError(code: string, message: string, id?: string): void {
    this.#o.observer.protocolError(code);
    const out: ServerMessage = { type: "error", code, message };
    if (id !== undefined) out.id = id;
    this.#send(out, "error");
    if (++this.#protocolErrors >= this.#o.maxProtocolErrors) {
      this.#ws.close(CLOSE_CODES.policy, "too many protocol errors");
    }
  }

  #send(message: ServerMessage, channel: string): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    // ws keeps whatever the kernel does not take (a client that stopped reading: a closed TCP window, a suspended
    // tab) in memory without limit. What counts is what waits behind the message being written, checked before each
    // send: one large message to a client that keeps up is still being written when the next one goes out (a reply
    // after a big state broadcast), and ws.bufferedAmount, which counts it too, closed such a client at its second
    // message. Once closing, nothing more is sent (readyState).
    const buffered = this.#ws.bufferedAmount;
    this.#backlog.trim(buffered);
    if (this.#backlog.bytesBehindOldest >= this.#o.maxBufferedBytes) {
      this.#closeSlowConsumer(buffered);
      return;
    }
    this.#o.observer.messageOut(channel);
    const text = JSON.stringify(message);
    this.#ws.send(text);
    this.#backlog.add(frameBytes(Buffer.byteLength(text, "utf8")));
  }

  #closeSlowConsumer(bufferedBytes: number): void {
    this.#o.observer.limitBreach(WS_ERROR_CODES.slowConsumer);
    this.#o.logger.warn(
      {
        agentId: this.#o.agentId,
        connectionId: this.#o.connectionId,
        code: WS_ERROR_CODES.slowConsumer,
        bufferedBytes,
        maxBufferedBytes: this.#o.maxBufferedBytes,
      },
      "agent socket closed: the client is not reading what it is sent",
    );
    // The close frame queues behind the backlog: a client that reads again learns why; one that never does is cut
    // by ws's closing handshake timeout (30 s), and the backlog freed with it.
    this.#ws.close(CLOSE_CODES.tryAgainLater, "client not reading: too much data waiting for it");
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#markSocketClosed();
    this.#o.observer.closed();
    // Close after queued messages so the agent sees events in order; only if the connection ever opened.
    this.#chain = this.#chain.then(async () => {
      if (!(await this.#opened)) return;
      try {
        await this.#o.host.close(this.#o.agentId, this.#o.connectionId, "disconnect");
      } catch (err) {
        this.#o.logger.warn({ err, agentId: this.#o.agentId }, "agent socket close failed");
      }
    });
  }

  /** Resolves when every queued message and the close event have been handled. */
  settled(): Promise<void> {
    return this.#chain;
  }
}

/** A close reason must fit 123 bytes of UTF-8 (RFC 6455 section 5.5); cut on a character boundary. */
export function closeReason(reason: string): string {
  // Every character is at least one byte, so 123 code points are the most that can fit.
  let out = [...reason].slice(0, 123).join("");
  while (Buffer.byteLength(out, "utf8") > 123) out = [...out].slice(0, -1).join("");
  return out;
}
