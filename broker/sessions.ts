/**
 * Device sessions as the agent host sees them: open on CONNECT, close on disconnect, last will, takeover or
 * shutdown. Host calls for one device run one after another, so the host always sees the old session closed
 * (reason "takeover") before the new one opens, and a close never overtakes its open.
 */
import type { Duplex } from "node:stream";
import type { AgentHost, CloseReason, ConnectionTransport, EventResult } from "../agents/host.ts";
import type { Clock } from "./clock.ts";
import type { DeviceConnection } from "./connection.ts";
import type { ObserverHub } from "./observer.ts";
import type { BrokerLogger } from "./options.ts";
import { pacerOf } from "./read-pacer.ts";

/**
 * Ends the MQTT session of a connection the host closed as a takeover. aedes ends it only once the new session is
 * registered, after its CONNACK; when the new one fails instead (the host refuses it, its socket goes), the old one
 * would stay connected to an agent that has let it go, getting no frames. Resolves once aedes has unregistered it, so
 * the new session cannot be registered first and then removed by the old one's late cleanup.
 */
function endMqttSession(connection: DeviceConnection): Promise<void> {
  return new Promise((resolve) => connection.client.close(() => resolve()));
}

/**
 * The host's failure of an event whose agent was destroyed under it (a DELETE of its device): the agent is gone, not
 * failing. The runtime's own shutdown has a code of its own (BRIDGE_ERR_RUNTIME_CLOSED), so no context is needed to
 * tell the two apart.
 */
const AGENT_DESTROYED = "BRIDGE_ERR_AGENT_DESTROYED";

/**
 * How `open` ended: the host's result, or `ended`: the session ended while it was being opened (its device went, a
 * takeover, an operator's `endSessions`, its agent destroyed under it) and never opened. That is no failure of the
 * agent: the broker neither warns about it nor counts it as BRIDGE_ERR_OPEN_FAILED. `code` is the host's, absent when
 * the open never reached the host.
 */
export type OpenResult = EventResult | { status: "ended"; code?: string };

/**
 * A failed close that is the agent's removal going as asked, not an `onClose` that failed: `DELETE /api/devices/:id`
 * ends the session as `removed` and then destroys the agent, and when the agent is mid-event the close waits in its
 * mailbox until the destroy fails it (BRIDGE_ERR_AGENT_DESTROYED: there is no agent left to tell). `endSessions`
 * logged the removal already. Whatever the session's reason: a device that disconnected on its own in that moment has
 * no agent left to tell either. Any other failure of a close, a removed session's included, is a warning.
 */
function isCloseOfDestroyedAgent(result: Extract<EventResult, { status: "failed" }>): boolean {
  return result.code === AGENT_DESTROYED;
}

/**
 * How long, at most, the end of a session waits (on the broker's clock) for the up messages it received to get room in
 * the agent's mailbox before the agent is told of the end. Those messages were received in full, so they reach the
 * agent ahead of its close; a mailbox that stays full this long (an agent stuck on its events) drops the rest,
 * unacknowledged, rather than hold the close (and a reconnect's takeover) longer.
 */
export const END_HAND_OVER_WAIT_MS = 2000;

/** What becomes of the down frames an ended session still holds (transport.ts, offline-down-queue.ts). */
export interface SessionDownFrames {
  /** Settles what the ended session still holds (`DownSender.discard`); resolves once done, never rejects. */
  settle(connection: DeviceConnection): Promise<void>;
  /** Resolves once the writes of the device's offline queue started so far are done. */
  settled(deviceId: string): Promise<void>;
  /**
   * For a persistent session about to open: as `settled`, then drops a session aedes keeps for another record of the
   * id (offline-down-queue.ts `queuedAtOpen`), then resolves with how many frames the device's offline queue holds.
   * `earlier`: the device's sessions it took over, whose frames aedes may still be numbering.
   */
  queued(connection: DeviceConnection, earlier: readonly DeviceConnection[]): Promise<number>;
}

export class SessionManager {
  /** Sessions whose open committed and that have not closed: the online devices. */
  private readonly online = new Map<string, DeviceConnection>();
  /**
   * Every accepted session not yet finished (opening, open or closing), by device. An array, not a Set: a device has
   * one session except during a takeover, and 10,000 idle devices should not carry 10,000 hash tables.
   */
  private readonly live = new Map<string, DeviceConnection[]>();
  private liveCount = 0;
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly finishing = new Set<Promise<void>>();

  constructor(
    private readonly host: AgentHost,
    private readonly hub: ObserverHub,
    private readonly logger: BrokerLogger,
    /** The broker's clock: bounds the wait of a session's end for its messages (END_HAND_OVER_WAIT_MS). */
    private readonly clock: Clock,
    /** Runs when a session's bookkeeping ends, after its down frames were settled. */
    private readonly onFinished: (connection: DeviceConnection) => void,
    private readonly down: SessionDownFrames,
  ) {}

  /** Runs `fn` after every earlier host call for the same device settled. */
  private serial<T>(deviceId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(deviceId) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(deviceId, tail);
    void tail.then(() => {
      if (this.chains.get(deviceId) === tail) this.chains.delete(deviceId);
    });
    return next;
  }

  /** Live sessions other than those of `exceptDeviceId` (a takeover does not add a connection). O(1). */
  countExcept(exceptDeviceId: string): number {
    return this.liveCount - (this.live.get(exceptDeviceId)?.length ?? 0);
  }

  private addLive(connection: DeviceConnection): void {
    const list = this.live.get(connection.deviceId);
    if (list === undefined) {
      this.live.set(connection.deviceId, [connection]);
      this.liveCount++;
    } else if (!list.includes(connection)) {
      list.push(connection);
      this.liveCount++;
    }
  }

  private deleteLive(connection: DeviceConnection): void {
    const list = this.live.get(connection.deviceId);
    const at = list?.indexOf(connection) ?? -1;
    if (list === undefined || at < 0) return;
    list.splice(at, 1);
    this.liveCount--;
    if (list.length === 0) this.live.delete(connection.deviceId);
  }

  isOnline(deviceId: string): boolean {
    return this.online.has(deviceId);
  }

  onlineDevices(): string[] {
    return [...this.online.keys()];
  }

  liveSessions(): DeviceConnection[] {
    return [...this.live.values()].flat();
  }

  /**
   * Opens `connection` with the host, first closing any earlier session of the same device as a takeover.
   * Resolves with the host's result (a host fault becomes a failed result), or `ended` (see OpenResult).
   */
  open(connection: DeviceConnection, transport: ConnectionTransport): Promise<OpenResult> {
    this.addLive(connection);
    const opening = this.serial(connection.deviceId, async (): Promise<OpenResult> => {
      // A copy: closing in the host awaits, and the list may change meanwhile. Only the sessions listed before this
      // one: a later CONNECT of the device, listed while this one waited its turn, takes this one over in its own turn.
      const list = this.live.get(connection.deviceId) ?? [];
      const earlier = list.slice(0, Math.max(0, list.indexOf(connection)));
      for (const other of earlier) {
        if (!other.hostClosed) {
          // One bound for the whole hand-over of the old session, however its time is split below.
          const deadlineMs = this.clock.monotonicNow() + END_HAND_OVER_WAIT_MS;
          await this.readOut(other, deadlineMs);
          // A session whose socket had ended already (its close waits for its messages) ended as its device ended it.
          if (!other.finished) other.markClosing("takeover");
          other.closed = true;
          await this.handedOver(other, deadlineMs);
          await this.closeInHost(other);
          await endMqttSession(other);
        }
      }
      // The QoS 1 frames the earlier sessions still held join the device's offline queue before this session is
      // opened: aedes reads that queue once, after the CONNACK, and what came later would wait for yet another session.
      for (const other of earlier) void this.down.settle(other);
      if (connection.clean) {
        await this.down.settled(connection.deviceId);
      } else {
        // aedes resends every frame of that queue right after the CONNACK: until acknowledged, they count against the
        // session's window of unacknowledged frames (down-hand-over.ts), or a device that never acknowledges would
        // have a window's worth more in aedes' store at each of its sessions.
        connection.downUnacked = await this.down.queued(connection, earlier);
      }
      if (connection.closed) return { status: "ended" };
      let result: EventResult;
      try {
        result = await this.host.open(connection.deviceId, {
          id: connection.connectionId,
          kind: "mqtt",
          codec: connection.codec,
          context: {
            firmware: connection.firmware,
            remoteAddress: connection.remoteAddress,
            clean: connection.clean,
            transport: connection.transport,
          },
          transport,
        });
      } catch (err) {
        this.logger.error({ err, device: connection.deviceId }, "agent host failed to open a connection");
        result = { status: "failed", code: "BRIDGE_ERR_OPEN_FAILED", message: "agent host fault" };
      }
      if (result.status === "committed") {
        connection.opened = true;
        this.online.set(connection.deviceId, connection);
        this.hub.connectionOpened(connection.transport);
        return result;
      }
      // The agent was destroyed under it: a destroy fails the opens waiting in its mailbox and closes their
      // connections, so the session ended (`endSessions(id, "removed")` may have closed it first). Any other code is
      // the agent failing the open, reported whatever else happened to the session.
      const ended = result.code === AGENT_DESTROYED;
      connection.closed = true;
      connection.hostClosed = true;
      return ended ? { status: "ended", code: result.code } : result;
    });
    const settled = opening.then(
      () => {
        // Settled: nothing needs to wait for it any more, so an idle session does not keep a promise.
        if (connection.openSettled === settled) connection.openSettled = undefined;
      },
      () => {
        if (connection.openSettled === settled) connection.openSettled = undefined;
      },
    );
    connection.openSettled = settled;
    return opening;
  }

  private async closeInHost(connection: DeviceConnection): Promise<void> {
    if (connection.hostClosed) return;
    connection.hostClosed = true;
    if (this.online.get(connection.deviceId) === connection) this.online.delete(connection.deviceId);
    if (!connection.opened) return;
    const reason: CloseReason = connection.closeReason ?? "disconnect";
    try {
      const result = await this.host.close(connection.deviceId, connection.connectionId, reason);
      // No warning when the agent was destroyed under it: that is the destroy going as asked (a DELETE ends the
      // session as `removed`, then destroys the agent; the `device sessions ended` info line has the removal), or a
      // device that left as its agent went, with no agent left to tell. Not a fault of the agent's onClose.
      if (result.status === "failed" && !isCloseOfDestroyedAgent(result)) {
        this.logger.warn({ device: connection.deviceId, code: result.code }, "agent onClose failed");
      }
    } catch (err) {
      this.logger.error({ err, device: connection.deviceId }, "agent host failed to close a connection");
    }
  }

  /**
   * Resolves once every up message `connection` received has been handed to its agent's mailbox, or at `deadlineMs`
   * (END_HAND_OVER_WAIT_MS after the session's end began): then the messages still waiting for room are given up at
   * once (`abandonHandOvers`: none was acknowledged, so the device sends it again) and a warning says how many. They
   * are let go then, not once the mailbox has room, which an agent stuck on its events may never have: each ended
   * session of a device reconnecting meanwhile would stay in memory with its messages.
   */
  private handedOver(connection: DeviceConnection, deadlineMs: number): Promise<void> {
    if (connection.upGate === undefined && connection.handOversPending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(
        () => {
          this.logger.warn(
            { device: connection.deviceId, dropped: connection.handOversPending, waitedMs: END_HAND_OVER_WAIT_MS },
            "session ended with up messages still waiting for room in the agent's mailbox; dropped unacknowledged",
          );
          connection.abandonHandOvers();
          resolve();
        },
        Math.max(0, deadlineMs - this.clock.monotonicNow()),
      );
      void connection.untilHandedOver().then(() => {
        this.clock.clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Before a takeover ends `connection`: resolves once aedes has read what its stream had received, or once the
   * session ended on its own, or at `deadlineMs` (the broker clock's monotonicNow). While its agent is busy the read
   * pacer leaves what the device sent unread in the stream (read-pacer.ts); a device that sent PUBLISHes and a
   * DISCONNECT and then connected again would otherwise lose them, and its DISCONNECT, to the takeover, though a broker
   * reading in order would have had them before the new CONNECT. What is still unread at the deadline is dropped.
   */
  private async readOut(connection: DeviceConnection, deadlineMs: number): Promise<void> {
    const stream = connection.client.conn as Duplex;
    const pacer = pacerOf(stream);
    if (pacer === undefined) return;
    // A destroyed stream (a DISCONNECT read) waits for its close, which finishes the session with its own reason.
    while (!connection.closed && (pacer.unread > 0 || stream.destroyed)) {
      const leftMs = deadlineMs - this.clock.monotonicNow();
      if (leftMs <= 0) {
        this.logger.warn(
          { device: connection.deviceId, unreadBytes: pacer.unread, waitedMs: END_HAND_OVER_WAIT_MS },
          "session taken over before the broker read what its old connection had sent; the rest is dropped unread",
        );
        return;
      }
      let timer: unknown;
      await Promise.race([
        pacer.changed(),
        new Promise<void>((resolve) => {
          timer = this.clock.setTimeout(resolve, leftMs);
        }),
      ]);
      this.clock.clearTimeout(timer);
    }
  }

  /**
   * Called once the session's stream closed: the device is offline at once; the host is told (unless a takeover
   * already did) after the up messages the session received reached the agent's mailbox (see `handedOver`), so the
   * agent gets them before the close, as a broker that handles packets in order would. Then counts.
   */
  finish(connection: DeviceConnection): Promise<void> {
    if (connection.finished) return Promise.resolve();
    connection.finished = true;
    connection.closed = true;
    if (this.online.get(connection.deviceId) === connection) this.online.delete(connection.deviceId);
    const done = (connection.openSettled ?? Promise.resolve())
      .then(() => this.handedOver(connection, this.clock.monotonicNow() + END_HAND_OVER_WAIT_MS))
      .then(() => this.serial(connection.deviceId, () => this.closeInHost(connection)))
      // Before the session leaves the live list: a new session of the device waits for what this one settles.
      .then(() => this.down.settle(connection))
      .then(() => {
        this.onFinished(connection);
        this.deleteLive(connection);
        if (connection.opened) {
          this.hub.connectionClosed(connection.transport, connection.closeReason ?? "disconnect");
        }
      })
      .catch((err: unknown) => {
        // Runs from a socket's close event: a fault here must be logged, never become an unhandled rejection.
        this.logger.error({ err, device: connection.deviceId }, "session cleanup failed");
      });
    this.finishing.add(done);
    void done.finally(() => this.finishing.delete(done));
    return done;
  }

  /** Resolves when every session that is finishing has finished. */
  async drain(): Promise<void> {
    while (this.finishing.size > 0) await Promise.all([...this.finishing]);
  }
}
