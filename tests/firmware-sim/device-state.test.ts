import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DesiredStateFrame } from "../../codecs/frames.ts";
import {
  CommandBook,
  MAX_CONFIRMED_COMMANDS,
  MAX_DROPPED_ACK_COMMANDS,
} from "../../firmware-sim/device/command-book.ts";
import { ReasonTracker } from "../../firmware-sim/device/reason-tracker.ts";
import { DeviceShadow } from "../../firmware-sim/device/shadow.ts";
import { readDownState } from "../../firmware-sim/handlers/state.ts";

describe("device shadow", () => {
  it("reports each patch on the reported version it is based on and recovers from a stale one", () => {
    const shadow = new DeviceShadow({ mode: "heat", target: 21 });
    assert.deepEqual(shadow.fullReport(), { v: 0, s: { mode: "heat", target: 21 } });
    const delta = shadow.onDesired({ v: 1, d: { target: 23 } });
    assert.deepEqual(delta, { status: "apply", patch: { target: 23 } });
    assert.deepEqual(shadow.report({ target: 23 }), { v: 1, s: { target: 23 } });
    assert.deepEqual(shadow.onStale(7), { v: 7, s: { mode: "heat", target: 23 } });
    assert.equal(shadow.reportedVersion, 8);
  });

  it("converges only when every report was acknowledged and reported equals desired", () => {
    const shadow = new DeviceShadow({ mode: "heat" });
    assert.equal(shadow.convergence().status, "no-desired-state");
    shadow.onDesired({ v: 1, d: { mode: "cool" } });
    assert.equal(shadow.convergence().status, "diverged");
    shadow.report({ mode: "cool" });
    assert.equal(shadow.convergence().status, "report-unconfirmed");
    shadow.reportConfirmed();
    assert.deepEqual(shadow.convergence(), { status: "converged" });
    shadow.report({ fan: 1 });
    shadow.reportLost();
    assert.equal(
      shadow.convergence().status,
      "report-unconfirmed",
      "a report that fell out of the buffer is not converged",
    );
    shadow.fullReport();
    shadow.reportConfirmed();
    assert.deepEqual(shadow.convergence(), { status: "converged" });
  });

  it("ignores a late delta older than one already applied, and deletes fields desired as null", () => {
    const shadow = new DeviceShadow({ a: 1, b: 2 });
    shadow.onDesired({ v: 5, d: { a: 3 } });
    assert.deepEqual(shadow.onDesired({ v: 4, d: { a: 9 } }), { status: "stale" });
    assert.deepEqual(shadow.onDesired({ v: 6, d: { b: null } }), { status: "apply", patch: { b: null } });
    shadow.report({ a: 3, b: null });
    assert.deepEqual(shadow.reported, { a: 3 });
  });

  it("takes a full desired state's version as its own, even a lower one, so the deltas after it apply", () => {
    // The agent was destroyed and created again (DELETE, then the device provisioned anew): its desired version
    // starts over, and the hello's resync is the first thing the device hears from it.
    const shadow = new DeviceShadow({ mode: "heat", target: 21 });
    shadow.onDesired({ v: 40, d: { target: 23 } });
    assert.deepEqual(shadow.onDesired({ v: 0, d: {}, full: true }), { status: "apply", patch: {} });
    assert.equal(shadow.desired !== undefined && Object.keys(shadow.desired).length, 0);
    assert.deepEqual(shadow.onDesired({ v: 1, d: { mode: "cool" } }), { status: "apply", patch: { mode: "cool" } });
    assert.deepEqual(shadow.onDesired({ v: 2, d: { target: 19 } }), { status: "apply", patch: { target: 19 } });
    assert.deepEqual(shadow.desired, { mode: "cool", target: 19 });
    // The full frame's version is the base for staleness from then on.
    shadow.onDesired({ v: 3, d: { target: 20 }, full: true });
    assert.deepEqual(shadow.onDesired({ v: 2, d: { target: 19 } }), { status: "stale" });
  });
});

describe("down/state: desired state or the agent's state", () => {
  it("reads a full frame at version 0 with anything in it as the agent's state", () => {
    assert.deepEqual(readDownState({ v: 0, d: { note: "hi" }, full: true }), {
      kind: "agent-state",
      state: { note: "hi" },
    });
  });

  it("reads deltas, full desired states from version 1 and the empty desired state at version 0 as desired state", () => {
    const frames: DesiredStateFrame[] = [
      { v: 1, d: { target: 23 } },
      { v: 4, d: { target: 23 }, full: true },
      // The documented overlap: "nothing desired yet" after a hello (an agent state set to {} reads the same).
      { v: 0, d: {}, full: true },
    ];
    for (const frame of frames) {
      assert.deepEqual(readDownState(frame), { kind: "desired", frame }, JSON.stringify(frame));
    }
  });
});

describe("command book", () => {
  it("runs a command once and answers a redelivery with the first ack", () => {
    const book = new CommandBook();
    const first = { dup: false, packetId: 4 };
    assert.deepEqual(book.receive("c1", first), { status: "new" });
    book.executed({ id: "c1", ok: true, res: 1 }, 4);
    assert.deepEqual(book.receive("c1", { dup: false, packetId: 5 }), {
      status: "duplicate",
      ack: { id: "c1", ok: true, res: 1 },
      afterConfirmedAck: false,
      brokerResend: false,
    });
    assert.deepEqual(book.unconfirmed(), ["c1"]);
    book.confirm("c1");
    assert.deepEqual(book.unconfirmed(), []);
    assert.deepEqual(book.receive("c1", { dup: true, packetId: 5 }), {
      status: "duplicate",
      ack: { id: "c1", ok: true, res: 1 },
      afterConfirmedAck: true,
      brokerResend: true,
    });
  });

  it("tells the broker's resend by DUP, or by the last packet id from a broker that resends without DUP", () => {
    const resent = (book: CommandBook, dup: boolean, packetId: number): boolean => {
      const receipt = book.receive("c1", { dup, packetId });
      return receipt.status === "duplicate" && receipt.brokerResend;
    };
    const withDup = new CommandBook();
    withDup.receive("c1", { dup: false, packetId: 4 });
    withDup.executed({ id: "c1", ok: true }, 4);
    assert.deepEqual(
      [resent(withDup, false, 4), resent(withDup, true, 4), resent(withDup, true, 8)],
      [false, true, true],
    );
    const withoutDup = new CommandBook(false);
    withoutDup.receive("c1", { dup: false, packetId: 4 });
    withoutDup.executed({ id: "c1", ok: true }, 4);
    assert.deepEqual(
      [resent(withoutDup, false, 4), resent(withoutDup, false, 8), resent(withoutDup, false, 8)],
      [true, false, true],
    );
  });

  it(`keeps every command still owed an ack, and the latest ${MAX_CONFIRMED_COMMANDS} confirmed ones`, () => {
    const book = new CommandBook();
    const run = (id: string): void => {
      book.receive(id);
      book.executed({ id, ok: true });
    };
    run("owed");
    for (let i = 0; i <= MAX_CONFIRMED_COMMANDS; i++) {
      run(`c${i}`);
      book.confirm(`c${i}`);
    }
    assert.equal(book.size, MAX_CONFIRMED_COMMANDS + 1);
    assert.deepEqual(book.unconfirmed(), ["owed"]);
    const confirmed = book.confirmed().map((c) => c.id);
    assert.equal(confirmed.length, MAX_CONFIRMED_COMMANDS);
    assert.equal(confirmed[0], "c1", "the oldest confirmed command is forgotten first");
    assert.equal(book.receive("owed").status, "duplicate");
    assert.equal(book.receive(`c${MAX_CONFIRMED_COMMANDS}`).status, "duplicate");
  });

  it(`forgets the oldest beyond ${MAX_DROPPED_ACK_COMMANDS} commands whose every ack was dropped, and says so`, () => {
    const book = new CommandBook();
    const runAndDropAck = (id: string): boolean => {
      book.receive(id);
      book.executed({ id, ok: true });
      return book.ackDropped(id);
    };
    book.receive("owed");
    book.executed({ id: "owed", ok: true });
    assert.equal(runAndDropAck("d0"), false);
    const forgotten: string[] = [];
    for (let i = 1; i <= MAX_DROPPED_ACK_COMMANDS; i++) if (runAndDropAck(`d${i}`)) forgotten.push(`d${i}`);
    assert.deepEqual(forgotten, [`d${MAX_DROPPED_ACK_COMMANDS}`], "the one past the limit made room");
    assert.equal(book.size, MAX_DROPPED_ACK_COMMANDS + 1, "the command still owed an ack is never forgotten");
    assert.deepEqual(book.unconfirmed(), ["owed"]);
    assert.equal(book.receive("d0").status, "new", "the oldest is forgotten: a redelivery runs it again");
    assert.equal(book.receive("d1").status, "duplicate");
    // Owed an ack again by that redelivery, d1 is no longer among those that can be forgotten: d2 goes next.
    assert.deepEqual([runAndDropAck("n1"), runAndDropAck("n2")], [false, true]);
    assert.equal(book.receive("d1").status, "duplicate");
    assert.equal(book.receive("d2").status, "new");
  });
});

describe("reasoning stream checks", () => {
  it("accepts increasing chunks then the final frame and times the answer", () => {
    const tracker = new ReasonTracker();
    tracker.start("r1", true, 1000);
    assert.deepEqual(tracker.onFrame({ id: "r1", seq: 0, text: "a" }, false, 1010), {
      status: "chunk",
      firstChunk: true,
    });
    assert.deepEqual(tracker.onFrame({ id: "r1", seq: 1, text: "b" }, false, 1020), {
      status: "chunk",
      firstChunk: false,
    });
    assert.deepEqual(tracker.onFrame({ id: "r1", seq: 2, fin: true }, false, 1050), {
      status: "finished",
      totalMs: 50,
      firstChunkMs: 10,
    });
    assert.equal(tracker.openId, undefined);
  });

  it("flags a chunk out of order, a stray chunk, and a partial chunk to a non-streaming device", () => {
    const tracker = new ReasonTracker();
    tracker.start("r1", true, 0);
    tracker.onFrame({ id: "r1", seq: 3, text: "x" }, false, 1);
    assert.equal(tracker.onFrame({ id: "r1", seq: 2, text: "y" }, false, 2).status, "violation");
    assert.equal(tracker.onFrame({ id: "zz", seq: 0, text: "y" }, false, 2).status, "violation");
    const quiet = new ReasonTracker();
    quiet.start("q", false, 0);
    const outcome = quiet.onFrame({ id: "q", seq: 0, text: "partial" }, false, 1);
    assert.equal(outcome.status === "violation" && outcome.kind, "stream-to-non-streaming-device");
  });

  it("tolerates a QoS 1 redelivery (DUP) of a chunk or of a finished request", () => {
    const tracker = new ReasonTracker();
    tracker.start("r1", true, 0);
    tracker.onFrame({ id: "r1", seq: 0, text: "a" }, false, 1);
    assert.deepEqual(tracker.onFrame({ id: "r1", seq: 0, text: "a" }, true, 2), { status: "duplicate" });
    tracker.onFrame({ id: "r1", seq: 1, fin: true }, false, 3);
    assert.deepEqual(tracker.onFrame({ id: "r1", seq: 1, fin: true }, true, 4), { status: "duplicate" });
  });

  it("flags a chunk or another final frame after the final frame, but not a redelivery of the final frame", () => {
    const tracker = new ReasonTracker(false);
    tracker.start("r1", true, 0);
    tracker.onFrame({ id: "r1", seq: 0, text: "a" }, false, 1);
    assert.equal(tracker.onFrame({ id: "r1", seq: 1, fin: true }, false, 2).status, "finished");
    // Plain aedes resends a persistent session's unacknowledged QoS 1 message without DUP: the same final frame again.
    assert.deepEqual(tracker.onFrame({ id: "r1", seq: 1, fin: true }, false, 3), { status: "duplicate" });
    const late = tracker.onFrame({ id: "r1", seq: 2, text: "more" }, false, 4);
    assert.equal(late.status === "violation" && late.kind, "reason-out-of-order");
    assert.match(late.status === "violation" ? late.message : "", /after its final frame/);
    assert.equal(tracker.onFrame({ id: "r1", seq: 3, fin: true }, false, 5).status, "violation");
  });

  it("flags the final frame again without DUP from a broker that sets DUP on its resends", () => {
    const tracker = new ReasonTracker();
    tracker.start("r1", true, 0);
    assert.equal(tracker.onFrame({ id: "r1", seq: 0, fin: true }, false, 1).status, "finished");
    assert.deepEqual(tracker.onFrame({ id: "r1", seq: 0, fin: true }, true, 2), { status: "duplicate" });
    // A later request open meanwhile changes nothing: the repeat is still a new PUBLISH of r1's final frame.
    tracker.start("r2", true, 3);
    assert.deepEqual(tracker.onFrame({ id: "r1", seq: 0, fin: true }, false, 4), {
      status: "violation",
      kind: "reason-out-of-order",
      message: "request r1: its final frame (seq 0) again without DUP, a new PUBLISH, not the broker's resend",
    });
  });

  it("tolerates late frames of a request the device gave up on (timed out, or ended by an error frame)", () => {
    const tracker = new ReasonTracker();
    tracker.start("r1", true, 0);
    tracker.onFrame({ id: "r1", seq: 0, text: "a" }, false, 1);
    tracker.abandon();
    // BRIDGE_ERR_ENGINE_* comes as an error frame, then the final frame with fr: "error".
    assert.deepEqual(tracker.onFrame({ id: "r1", seq: 1, text: "b" }, false, 2), { status: "duplicate" });
    assert.deepEqual(tracker.onFrame({ id: "r1", seq: 2, fin: true, fr: "error" }, false, 3), { status: "duplicate" });
  });
});
