/**
 * WriteBacklog: what waits behind the message a WebSocket is writing, from `ws.bufferedAmount` and the sizes of the
 * frames sent, oldest first.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { frameBytes, WriteBacklog } from "../../app/ws/write-backlog.ts";

describe("WriteBacklog", () => {
  test("a large frame being written is no backlog; what is queued behind it is", () => {
    const backlog = new WriteBacklog();
    backlog.add(100); // written out at once
    backlog.add(10_000_000); // the kernel took 1000 bytes of it
    backlog.add(50);
    backlog.trim(10_000_000 - 1000 + 50);
    assert.equal(backlog.bytesBehindOldest, 50);
    backlog.add(70);
    backlog.trim(10_000_000 - 2000 + 50 + 70);
    assert.equal(backlog.bytesBehindOldest, 120);
  });

  test("a client that reads nothing: the backlog grows with every frame", () => {
    const backlog = new WriteBacklog();
    let buffered = 0;
    for (let i = 1; i <= 10; i++) {
      backlog.add(1000);
      buffered += 1000;
      backlog.trim(buffered);
      assert.equal(backlog.bytesBehindOldest, (i - 1) * 1000);
    }
  });

  test("everything written: nothing is held, however many frames went out", () => {
    const backlog = new WriteBacklog();
    for (let i = 0; i < 5000; i++) {
      backlog.add(10);
      backlog.trim(0);
      assert.equal(backlog.bytesBehindOldest, 0);
    }
    for (let i = 0; i < 5000; i++) backlog.add(10);
    backlog.trim(25); // the last three frames, the oldest of them partly written
    assert.equal(backlog.bytesBehindOldest, 20);
  });

  test("frame sizes are those of RFC 6455 5.2 for unmasked frames", () => {
    assert.equal(frameBytes(0), 2);
    assert.equal(frameBytes(125), 127);
    assert.equal(frameBytes(126), 130);
    assert.equal(frameBytes(65535), 65539);
    assert.equal(frameBytes(65536), 65546);
  });
});
