import type { CodecName, DownMessage, Value } from "../codecs/frames.ts";
import type { AgentCell } from "./cell.ts";
import { assertWritable } from "./readonly-guard.ts";
import { liveCell } from "./retirement.ts";
import { decodeValue, encodeValue } from "./value-codec.ts";
import type { ConnectionKind, ConnectionTransport } from "./host.ts";
import type { Connection } from "./types.ts";

/** A connection row as persisted in `_bridge_connections`. */
export interface ConnectionRow {
  id: string;
  kind: string;
  codec: string;
  readonly: number;
  protocol: number;
  context: Uint8Array | null;
  state: Uint8Array | null;
}

type Context = Readonly<Record<string, string | number | boolean | undefined>>;

/** The runtime's Connection: facts persisted per row, the live transport kept by the host across hibernation. */
export class ConnectionImpl implements Connection {
  readonly id: string;
  readonly kind: ConnectionKind;
  readonly readonly: boolean;
  protocol: boolean;
  readonly context: Context;
  state: Value | null;
  readonly transport: ConnectionTransport;
  readonly #home: AgentCell;
  /** The codec given when the connection opened (or as persisted). */
  readonly #openedCodec: CodecName;

  constructor(
    cell: AgentCell,
    facts: {
      id: string;
      kind: ConnectionKind;
      codec: CodecName;
      readonly: boolean;
      protocol: boolean;
      context: Context;
    },
    state: Value | null,
    transport: ConnectionTransport,
  ) {
    this.#home = cell;
    this.id = facts.id;
    this.kind = facts.kind;
    this.#openedCodec = facts.codec;
    this.readonly = facts.readonly;
    this.protocol = facts.protocol;
    this.context = facts.context;
    this.state = state;
    this.transport = transport;
  }

  /**
   * The codec frames leave in now: the transport's when it can change (an MQTT device's hello names another codec
   * than the session opened with), so a frame is measured against the device's maxFrame in the codec it is sent in.
   */
  get codec(): CodecName {
    return this.transport.codec ?? this.#openedCodec;
  }

  /** The cell, refused once its agent instance was retired: a late send must not join another event (retirement.ts). */
  get #cell(): AgentCell {
    return liveCell(this.#home);
  }

  static fromRow(cell: AgentCell, row: ConnectionRow, transport: ConnectionTransport): ConnectionImpl {
    const context = (decodeValue(row.context) ?? {}) as Context;
    return new ConnectionImpl(
      cell,
      {
        id: row.id,
        kind: row.kind as ConnectionKind,
        codec: row.codec as CodecName,
        readonly: row.readonly === 1,
        protocol: row.protocol === 1,
        context,
      },
      decodeValue(row.state),
      transport,
    );
  }

  /** Inserts or replaces this connection's row (inside the current event). */
  persist(): void {
    this.#cell
      .sqlRunner()
      .run(
        "INSERT OR REPLACE INTO _bridge_connections (id, kind, codec, readonly, protocol, context, state) VALUES (?, ?, ?, ?, ?, ?, ?)",
        this.id,
        this.kind,
        this.codec,
        this.readonly ? 1 : 0,
        this.protocol ? 1 : 0,
        encodeValue(this.context as Value),
        this.state === null ? null : encodeValue(this.state),
      );
  }

  setState(next: Value | null): void {
    // Agent code's write, refused in a readonly connection's event; the runtime's own row writes (persist) are not.
    assertWritable(this.#cell, "connection.setState");
    const bytes = next === null ? null : encodeValue(next);
    this.#cell.write(() => {
      this.#cell.sqlRunner().run("UPDATE _bridge_connections SET state = ? WHERE id = ?", bytes, this.id);
      const previous = this.state;
      this.state = next;
      this.#cell.onUndo(() => {
        this.state = previous;
      });
    });
  }

  send(message: DownMessage, options?: { qos?: 0 | 1 }): void {
    this.#cell.output({ type: "send", connectionId: this.id, message, qos: options?.qos ?? 1 });
  }

  close(reason: string): void {
    this.#cell.output({ type: "close", connectionId: this.id, reason });
  }

  setFrameLimit(maxFrame: number | null): void {
    // Not an output held for the commit: a limit the device declared holds even if the event that learnt it fails.
    this.transport.setFrameLimit?.(maxFrame);
  }
}
