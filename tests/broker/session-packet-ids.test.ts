/**
 * A persistent session's packet id counter (broker/session-packet-ids.ts): it goes on across the session's connections
 * and passes over the ids of the frames stored when a connection opened; a forgotten session starts afresh.
 * tests/broker/resumed-packet-ids.test.ts runs the same through aedes and a device.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SessionPacketIds } from "../../broker/session-packet-ids.ts";

/** What aedes keeps of a connection's counter: `_nextId`, drawn at random when the connection comes. */
interface AedesClient {
  _nextId: number;
}

/** Numbers a new frame as aedes' QoSPacket does (lib/qos-packet.js, not exported by the package). */
function take(client: AedesClient): number {
  const id = client._nextId;
  if (client._nextId >= 65_535) client._nextId = 1;
  else client._nextId++;
  return id;
}

function takeMany(client: AedesClient, count: number): number[] {
  return Array.from({ length: count }, () => take(client));
}

describe("a persistent session's packet ids", () => {
  test("go on across connections, whatever id each connection would have started at", () => {
    const ids = new SessionPacketIds();
    const first = { _nextId: 40 };
    ids.resume("d", first, []);
    assert.deepEqual(takeMany(first, 3), [40, 41, 42]);
    const second = { _nextId: 41 };
    ids.resume("d", second, [41, 42]);
    assert.deepEqual(takeMany(second, 2), [43, 44]);
    assert.deepEqual(takeMany({ _nextId: 7 }, 1), [7], "a client of no session keeps aedes' own counter");
  });

  test("pass over the ids of the frames stored at the connection's start, also once the counter wrapped", () => {
    const ids = new SessionPacketIds();
    const client = { _nextId: 65_534 };
    ids.resume("d", client, [65_535, 1, 3]);
    assert.deepEqual(takeMany(client, 4), [65_534, 2, 4, 5]);
  });

  test("of a takeover: the old and the new connection share the counter", () => {
    const ids = new SessionPacketIds();
    const old = { _nextId: 10 };
    ids.resume("d", old, []);
    take(old);
    const taking = { _nextId: 10 };
    ids.resume("d", taking, [10]);
    assert.deepEqual([take(old), take(taking), take(old)], [11, 12, 13]);
  });

  test("start afresh once the session is forgotten, and are per device", () => {
    const ids = new SessionPacketIds();
    const first = { _nextId: 100 };
    ids.resume("d", first, []);
    take(first);
    const other = { _nextId: 100 };
    ids.resume("e", other, []);
    assert.equal(take(other), 100, "another device's session has its own counter");
    ids.forget("d");
    const again = { _nextId: 9 };
    ids.resume("d", again, []);
    assert.equal(take(again), 9);
  });

  test("leave a client alone whose counter is not aedes' number", () => {
    const ids = new SessionPacketIds();
    const client: Record<string, unknown> = { nextId: 5 };
    ids.resume("d", client, []);
    assert.deepEqual(Object.keys(client), ["nextId"]);
  });
});
