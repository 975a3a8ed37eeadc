import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Outbox } from "../../firmware-sim/device/outbox.ts";
import { OfflineBuffer } from "../../firmware-sim/index.ts";

describe("offline buffer", () => {
  it("keeps everything up to its capacity and replays it oldest first", () => {
    const buffer = new OfflineBuffer<number>(3);
    for (const n of [1, 2, 3]) assert.deepEqual(buffer.push(n), { status: "stored" });
    assert.deepEqual(buffer.drain(), [1, 2, 3]);
    assert.equal(buffer.size, 0);
  });

  it("drops the oldest entry when full", () => {
    const buffer = new OfflineBuffer<number>(3);
    for (const n of [1, 2, 3]) buffer.push(n);
    assert.deepEqual(buffer.push(4), { status: "dropped-oldest", dropped: [1] });
    assert.deepEqual(buffer.push(5), { status: "dropped-oldest", dropped: [2] });
    assert.deepEqual(buffer.drain(), [3, 4, 5]);
  });

  it("puts unacknowledged messages back in front and drops the oldest beyond capacity", () => {
    const buffer = new OfflineBuffer<number>(4);
    for (const n of [10, 11, 12]) buffer.push(n);
    assert.deepEqual(buffer.pushFront([7, 8, 9]), [7, 8]);
    assert.deepEqual(buffer.drain(), [9, 10, 11, 12]);
  });

  it("keeps order across wrap-around of its ring", () => {
    const buffer = new OfflineBuffer<number>(5);
    const out: number[] = [];
    for (let n = 0; n < 100; n++) {
      buffer.push(n);
      if (n % 3 === 0) out.push(buffer.shift()!);
    }
    out.push(...buffer.drain());
    const expectedTail = out.slice(-5);
    assert.deepEqual(expectedTail, [95, 96, 97, 98, 99]);
    for (let i = 1; i < out.length; i++) assert.ok(out[i] > out[i - 1], "strictly increasing replay order");
  });

  it("keeps nothing with capacity zero", () => {
    const buffer = new OfflineBuffer<string>(0);
    assert.deepEqual(buffer.push("a"), { status: "dropped-oldest", dropped: ["a"] });
    assert.equal(buffer.size, 0);
  });

  it("refuses a negative or fractional capacity", () => {
    assert.throws(() => new OfflineBuffer(-1), RangeError);
    assert.throws(() => new OfflineBuffer(1.5), RangeError);
  });
});

describe("device outbox", () => {
  const msg = (ref: number, kind: "telemetry" | "hello" = "telemetry") => ({
    channel: "telemetry" as const,
    topic: "devices/d/up/telemetry",
    payload: new Uint8Array([ref]),
    kind,
    ref,
    dup: false,
    sentMs: 0,
  });

  it("replays unacknowledged in-flight messages before newer buffered ones after a disconnect, without the hello", () => {
    const outbox = new Outbox(10);
    const hello = msg(0, "hello");
    outbox.track(hello, 1);
    for (const n of [1, 2, 3, 4]) outbox.enqueue(msg(n));
    // The hello counts against the in-flight window like any QoS 1 message.
    const a = outbox.next(3)!;
    const b = outbox.next(3)!;
    assert.equal(outbox.next(3), undefined, "the in-flight window is full");
    a.message.dup = true;
    b.message.dup = true;
    assert.equal(outbox.onPuback(a.messageId)?.ref, 1);
    assert.deepEqual(outbox.onDisconnect(), []);
    const replay: number[] = [];
    for (let next = outbox.next(10); next; next = outbox.next(10)) replay.push(next.message.ref as number);
    assert.deepEqual(replay, [2, 3, 4]);
  });

  it("does not reuse a packet id while a duplicate's second PUBACK is still owed", () => {
    const outbox = new Outbox(10);
    const first = outbox.track(msg(1), 1);
    outbox.owesExtra(first);
    assert.equal(outbox.onPuback(first)?.ref, 1);
    const second = outbox.track(msg(2), 1);
    assert.notEqual(second, first);
    assert.equal(outbox.onPuback(first), undefined, "the duplicate's PUBACK completes nothing");
    assert.equal(outbox.onPuback(second)?.ref, 2);
  });
});
