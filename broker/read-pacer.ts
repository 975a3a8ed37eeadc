/**
 * Socket-level backpressure for one device connection (docs/broker.md, "Backpressure").
 *
 * aedes 1.2 reads a session's stream whenever the stream emits `readable`, i.e. whenever a new chunk arrives, even
 * while PUBLISHes of its previous read still wait for their answers (it counts a `readable` as one of the answers it
 * waits for), and it parses and handles every packet of what it read at once. Left alone, a device that keeps sending
 * while its agent is slow has every packet read and held in memory. The pacer stands in front of aedes'
 * `read(null)` on the stream (under the packet size guard, which so sees only what aedes takes):
 *
 * - **held** (a message of the session waits for room in the agent's mailbox, or half of `maxInflightPerDevice` is in
 *   flight): aedes gets nothing. The bytes stay in the stream's buffer, which stops reading the socket at its
 *   high-water mark; TCP's window (ws.pause for a WebSocket) then slows the device.
 * - **otherwise** aedes gets no more PUBLISHes than the rest of the in-flight budget (`maxInflightPerDevice` less
 *   those in flight); the rest goes back to the front of the buffer (`unshift`) for a later read. So a session never
 *   has more than the limit in flight, however much it pipelines. Before the session's first PUBLISH reached the
 *   broker, packets of every kind count, since aedes' queue of packets behind a CONNECT is bounded by the same limit.
 *
 * aedes reads again on its own once the packets it got were answered. Only when it asked and got nothing may it wait
 * for a `readable` that new bytes will not bring (the device is blocked by TCP, or waits for its PUBACKs), so on
 * release the pacer emits one. While held, the device's PINGREQs wait in the buffer behind its PUBLISHes; the bridge
 * is the slow side, so aedes' keepalive timer is refreshed meanwhile, and the device is not cut for it. That timer is
 * aedes' own and runs on the wall clock, so the refresh must keep to the same clock, not to the broker's injected one:
 * on a test's manual clock that stands still, a held device would be refreshed once and then cut.
 */
import type { Duplex } from "node:stream";
import type { Client } from "aedes";
import type { Clock } from "./clock.ts";
import type { DeviceConnection } from "./connection.ts";
import type { BrokerLimits, BrokerLogger } from "./options.ts";
import { PublishCounter } from "./publish-counter.ts";

/**
 * aedes' keepalive state of a client (not in its typings, so read as unknown): the timer `handle` refreshes per packet
 * (a Node Timeout in aedes 1.x; older versions had a retimer without `refresh`), and its period in ms: 1.5 times the
 * CONNECT's keepalive ([MQTT-3.1.2-24]), -1 without one.
 */
interface AedesKeepalive {
  _keepaliveTimer?: unknown;
  _keepaliveInterval?: unknown;
}

/** aedes' keepalive timer of a client: `off` without a keepalive, `unknown` when its fields are not as aedes 1.x has them. */
type Keepalive = { status: "on"; periodMs: number; timer: { refresh(): unknown } } | { status: "off" | "unknown" };

const KEEPALIVE_OFF: Keepalive = { status: "off" };
const KEEPALIVE_UNKNOWN: Keepalive = { status: "unknown" };

function keepaliveOf(client: Client): Keepalive {
  const { _keepaliveInterval: periodMs, _keepaliveTimer: timer } = client as unknown as AedesKeepalive;
  if (typeof periodMs !== "number") return KEEPALIVE_UNKNOWN;
  if (periodMs <= 0) return KEEPALIVE_OFF;
  const refresh = (timer as { refresh?: unknown } | null | undefined)?.refresh;
  if (typeof refresh !== "function") return KEEPALIVE_UNKNOWN;
  return { status: "on", periodMs, timer: timer as { refresh(): unknown } };
}

/**
 * What a broker's pacers call when a client's keepalive timer is not where they look for it (another aedes version):
 * one warning per broker, since it says the same of every session. Such a session is held without its keepalive
 * refreshed, so a device the broker holds longer than 1.5 times its keepalive is cut, as aedes alone would cut it.
 */
export function keepaliveWarning(logger: Pick<BrokerLogger, "warn">): () => void {
  let warned = false;
  return () => {
    if (warned) return;
    warned = true;
    logger.warn(
      {},
      "aedes' keepalive timer is not where the read pacer looks for it (another aedes version?): a device the broker holds is not kept alive meanwhile",
    );
  };
}

const pacers = new WeakMap<Duplex, ReadPacer>();

export class ReadPacer {
  #held = false;
  /** PUBLISHes aedes may take in its next read. */
  #allowance: number;
  /**
   * Until the session's first `update` (its first PUBLISH reached the broker), packets of every kind count against the
   * allowance: aedes queues what comes behind a CONNECT until the session is accepted, at most `queueLimit`
   * (`maxInflightPerDevice`) packets of any kind, and cuts the device past it, so a SUBSCRIBE in front of as many
   * PUBLISHes cut a device flushing its offline buffer on every reconnect. Later, only PUBLISHes count.
   */
  #countEveryPacket = true;
  /** aedes asked for data while bytes were buffered and got none: it may wait for a `readable` that does not come. */
  #starved = false;
  #kickQueued = false;
  #keepaliveTimer: unknown;
  /** Made only while someone waits for the next change (`changed`): the session's end after a takeover. */
  #change: { promise: Promise<void>; resolve: () => void } | undefined;
  #closeWatched = false;
  readonly #counter = new PublishCounter();
  readonly #stream: Duplex;
  /** The clock aedes' keepalive timer runs on, for its refresh (see `paceReads`). */
  readonly #keepaliveClock: Clock;
  readonly #unknownKeepalive: () => void;

  /**
   * Stands in front of `stream.read`; aedes may take `allowance` PUBLISHes until the first `update`.
   * `unknownKeepalive` runs when a client's keepalive timer cannot be refreshed (see `keepaliveWarning`).
   */
  constructor(stream: Duplex, keepaliveClock: Clock, allowance: number, unknownKeepalive: () => void) {
    this.#stream = stream;
    this.#keepaliveClock = keepaliveClock;
    this.#allowance = allowance;
    this.#unknownKeepalive = unknownKeepalive;
    // `call` rather than `bind`, as the packet size guard does: one bound function less per connection.
    const read = stream.read;
    stream.read = (size?: number): unknown => {
      if (this.#change !== undefined) this.#changed();
      // aedes reads with read(null); Node's own read(0) (refilling the buffer) and sized reads pass unchanged, and so
      // does a read of an empty buffer, which is how an ended stream emits `end`.
      if ((size !== null && size !== undefined) || stream.readableLength === 0) return read.call(stream, size);
      if (this.#held) {
        this.#starved = true;
        return null;
      }
      const chunk: unknown = read.call(stream, size);
      if (!(chunk instanceof Uint8Array)) return chunk;
      const cut = this.#counter.cut(chunk, this.#allowance, this.#countEveryPacket);
      if (cut === chunk.length) {
        this.#starved = false;
        return chunk;
      }
      stream.unshift(chunk.subarray(cut));
      // With packets before the cut, aedes comes back once they are answered; with none, it waits to be told.
      this.#starved = cut === 0;
      return cut === 0 ? null : chunk.subarray(0, cut);
    };
  }

  /** After the session's in-flight count or its hand-overs changed: whether aedes is held, and how much it may take. */
  update(held: boolean, allowance: number, client: Client): void {
    if (this.#change !== undefined) this.#changed();
    this.#allowance = allowance;
    this.#countEveryPacket = false;
    if (held === this.#held) return;
    this.#held = held;
    if (held) {
      this.#keepAlive(client);
      return;
    }
    if (this.#keepaliveTimer !== undefined) this.#keepaliveClock.clearTimeout(this.#keepaliveTimer);
    this.#keepaliveTimer = undefined;
    // A full keepalive period from the moment the broker reads again: the PINGREQs it held are read only now.
    const keepalive = keepaliveOf(client);
    if (keepalive.status === "on") keepalive.timer.refresh();
    if (this.#starved) this.#kickSoon();
  }

  /** Bytes the stream received that aedes has not read yet (0 once the stream is destroyed: they are dropped). */
  get unread(): number {
    return this.#stream.destroyed ? 0 : this.#stream.readableLength;
  }

  /**
   * Resolves at the next read, hold, release or answer of the session, or at its stream's close: for a caller waiting
   * until aedes has read what the stream holds (`unread`), which checks again each time.
   */
  changed(): Promise<void> {
    if (this.#change === undefined) {
      let resolve = (): void => {};
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.#change = { promise, resolve };
      this.#watchClose();
    }
    return this.#change.promise;
  }

  /**
   * From the first hold or wait on, the stream's close ends the keepalive refresh and wakes a waiter: a session may
   * stay held after its connection ended (its messages wait for the mailbox), and the refresh timer would otherwise
   * keep its stream and client for up to 0.75 times its keepalive. Sessions never held pay no listener.
   */
  #watchClose(): void {
    if (this.#closeWatched) return;
    this.#closeWatched = true;
    this.#stream.once("close", () => {
      if (this.#keepaliveTimer !== undefined) this.#keepaliveClock.clearTimeout(this.#keepaliveTimer);
      this.#keepaliveTimer = undefined;
      this.#changed();
    });
  }

  #changed(): void {
    const change = this.#change;
    this.#change = undefined;
    change?.resolve();
  }

  /** On a later turn of the loop (never inside aedes' own parse), a `readable` for an aedes that may be idle. */
  #kickSoon(): void {
    if (this.#kickQueued) return;
    this.#kickQueued = true;
    setImmediate(() => {
      this.#kickQueued = false;
      const stream = this.#stream;
      if (this.#held || !this.#starved || stream.destroyed || stream.readableLength === 0) return;
      stream.emit("readable");
    });
  }

  /** Refreshes aedes' keepalive timer now and every half period while held. */
  #keepAlive(client: Client): void {
    const keepalive = keepaliveOf(client);
    // Fails safe: never a throw in the up path for a field aedes does not promise; the session is held as it is.
    if (keepalive.status === "unknown") this.#unknownKeepalive();
    if (keepalive.status !== "on") return;
    const { timer, periodMs } = keepalive;
    this.#watchClose();
    const refresh = (): void => {
      this.#keepaliveTimer = undefined;
      if (!this.#held || client.closed || this.#stream.destroyed) return;
      timer.refresh();
      this.#keepaliveTimer = this.#keepaliveClock.setTimeout(refresh, periodMs / 2);
    };
    refresh();
  }
}

/**
 * Puts a pacer in front of `stream.read` (before the packet size guard wraps it); until its session says otherwise,
 * aedes may take `maxInflightPerDevice` packets of any kind, so what a device pipelines behind its CONNECT stays
 * within aedes' queue for it. `keepaliveClock` times the refresh of aedes' keepalive timer while the session is held:
 * the wall clock (`systemClock`), which that timer runs on whatever the broker's clock is; tests of the refresh itself
 * give a manual one.
 */
export function paceReads<S extends Duplex>(
  stream: S,
  keepaliveClock: Clock,
  maxInflightPerDevice: number,
  unknownKeepalive: () => void,
): S {
  pacers.set(stream, new ReadPacer(stream, keepaliveClock, maxInflightPerDevice, unknownKeepalive));
  return stream;
}

/** The pacer in front of `stream`'s reads, if the broker made one. */
export function pacerOf(stream: Duplex): ReadPacer | undefined {
  return pacers.get(stream);
}

/**
 * The pacing rule of one broker: returns what to call whenever a session's in-flight count (`inflight`) or its
 * hand-overs waiting for the mailbox (`handOversPending`) changed. A session is held while a message waits for room
 * in the mailbox or half of `maxInflightPerDevice` is in flight; released, it may take the rest of the limit in one
 * read, so reads stay few under load rather than one per answer.
 */
export function readPacing(limits: Pick<BrokerLimits, "maxInflightPerDevice">): (connection: DeviceConnection) => void {
  const max = limits.maxInflightPerDevice;
  const holdAt = Math.ceil(max / 2);
  return (connection) => {
    // The lookup runs once per session; a stream without a pacer (none in the broker) is left alone.
    connection.readPacer ??= pacers.get(connection.client.conn as Duplex);
    const pacer = connection.readPacer;
    if (pacer === undefined) return;
    const held = connection.handOversPending > 0 || connection.inflight >= holdAt;
    pacer.update(held, max - connection.inflight, connection.client);
  };
}
