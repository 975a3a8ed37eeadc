/**
 * The packet ids a resuming persistent session's new frames take (broker/session-packet-ids.ts): from the id after the
 * run the resent frames' ids form, past those the unwritten frames of a takeover's earlier connection may have or
 * take; aedes' own start when there are none. tests/broker/resumed-packet-ids.test.ts runs it through aedes and a
 * device.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { OfflineDownQueue } from "../../broker/offline-down-queue.ts";
import { ObserverHub } from "../../broker/observer.ts";
import { silentLogger } from "../../broker/options.ts";
import type { SessionStore } from "../../broker/persistent-session.ts";
import { afterRun, idsOfUnwrittenFrames, MAX_PACKET_ID, numberPastResent } from "../../broker/session-packet-ids.ts";
import { ManualClock } from "../support/manual-clock.ts";

/** What aedes keeps of a connection's counter: `_nextId`, drawn at random when the connection comes. */
interface AedesClient {
  _nextId: number;
}

/** Numbers a new frame as aedes' QoSPacket does (lib/qos-packet.js, not exported by the package). */
function take(client: AedesClient): number {
  const id = client._nextId;
  if (client._nextId >= MAX_PACKET_ID) client._nextId = 1;
  else client._nextId++;
  return id;
}

/** An earlier connection of the device: a persistent one unless `clean`, with `inAedes` frames not yet written. */
function earlier(next: number, inAedes: number, clean = false) {
  return { client: { _nextId: next }, clean, downInAedes: inAedes };
}

describe("the end of a run of packet ids", () => {
  test("is its largest id when it does not wrap, and 65535 is followed by 1", () => {
    assert.equal(afterRun([]), undefined);
    assert.equal(afterRun([100]), 101);
    assert.equal(afterRun([103, 100, 101, 100]), 104);
    assert.equal(afterRun([MAX_PACKET_ID]), 1);
  });

  test("is found past the wrap: the largest gap between two ids is where the run ends", () => {
    assert.equal(afterRun([MAX_PACKET_ID, 1, 3]), 4);
    // A frame left unacknowledged while the counter went nearly round: the run is 65003, 65004, 5.
    assert.equal(afterRun([5, 65_003, 65_004]), 6);
  });
});

describe("a resuming session's new frames", () => {
  test("keep aedes' own start when nothing is resent", () => {
    const client = { _nextId: 40 };
    numberPastResent(client, []);
    assert.equal(client._nextId, 40);
  });

  test("take every id of the range but the resent run's span before one of its ids comes again", () => {
    const stored = [65_530, 65_533, 2, 4];
    const client = { _nextId: 65_531 };
    numberPastResent(client, stored);
    const span = 10; // 65530 to 65535, then 1 to 4
    const fresh = Array.from({ length: MAX_PACKET_ID - span }, () => take(client));
    assert.equal(fresh[0], 5);
    assert.deepEqual(
      fresh.filter((id) => stored.includes(id)),
      [],
    );
    assert.equal(take(client), 65_530, "then the counter has gone round to the run");
  });

  test("pass over the ids the unwritten frames of a takeover's earlier persistent connection may have or take", () => {
    // 3 frames aedes has not written: numbered already (497 to 499, the store maybe not updated yet) or not (500 on).
    assert.deepEqual(idsOfUnwrittenFrames([earlier(500, 3)]), [497, 502]);
    assert.deepEqual(idsOfUnwrittenFrames([earlier(1, 2), earlier(65_535, 1)]), [65_534, 2, 65_534, 65_535]);
    assert.deepEqual(
      idsOfUnwrittenFrames([earlier(500, 0), earlier(900, 4, true), { ...earlier(9, 1), client: {} }]),
      [],
      "none with nothing left to number, for a clean session's frames (never stored), nor without aedes' counter",
    );

    const client = { _nextId: 100 };
    numberPastResent(client, [100, ...idsOfUnwrittenFrames([earlier(500, 3)])]);
    assert.equal(client._nextId, 503);
    const alone = { _nextId: 9 };
    numberPastResent(alone, idsOfUnwrittenFrames([earlier(65_535, 2)]));
    assert.equal(alone._nextId, 2, "frames of it may yet reach the store while nothing is there now");
  });

  test("leave a client alone whose counter is not aedes' number", () => {
    const client: Record<string, unknown> = { nextId: 5 };
    numberPastResent(client, [7]);
    assert.deepEqual(client, { nextId: 5 });
    const inherited = Object.create({ _nextId: 5 }) as object;
    numberPastResent(inherited, [7]);
    assert.equal(Object.hasOwn(inherited, "_nextId"), false);
  });
});

test("the offline queue renumbers a resuming client from the device's store and its earlier sessions", async () => {
  const store = {
    async *outgoingStream() {
      yield { messageId: 100 };
      yield {};
    },
  } as unknown as SessionStore;
  const stamp = () => ({ brokerId: "b", brokerCounter: 1 });
  const queue = new OfflineDownQueue(() => store, stamp, new ObserverHub({}), silentLogger, new ManualClock());
  const client = { _nextId: 100 };
  const connection = { deviceId: "d", recordId: "r1", client } as unknown as Parameters<typeof queue.queuedAtOpen>[0];
  assert.equal(await queue.queuedAtOpen(connection, [earlier(300, 2)]), 2, "both frames count, numbered or not");
  assert.equal(client._nextId, 302, "past 298 to 301, the taken-over connection's");
  assert.equal(await queue.queuedAtOpen(connection), 2);
  assert.equal(client._nextId, 101);
});
