import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  AddressFailures,
  addressKey,
  ConnectGuard,
  type VerificationTicket,
  VerificationSlots,
} from "../../broker/connect-guard/index.ts";
import { ManualClock } from "../support/manual-clock.ts";

describe("addressKey", () => {
  test("an IPv4 address counts as itself, also when a dual-stack listener reports it IPv4-mapped", () => {
    assert.equal(addressKey("192.0.2.7"), "192.0.2.7");
    assert.equal(addressKey("::ffff:192.0.2.7"), "192.0.2.7");
    assert.equal(addressKey("::FFFF:192.0.2.7"), "192.0.2.7");
  });

  test("an IPv4-mapped address written in hex groups counts as its IPv4 address, not as the shared ::/64", () => {
    // What a proxy may write into X-Forwarded-For; counted by /64, every such client would share one allowance.
    assert.equal(addressKey("::ffff:c000:207"), "192.0.2.7");
    assert.equal(addressKey("0:0:0:0:0:FFFF:C000:0207"), "192.0.2.7");
    assert.equal(addressKey("::ffff:0:0"), "0.0.0.0");
    assert.notEqual(addressKey("::ffff:c000:208"), addressKey("::ffff:c000:207"));
  });

  test("an IPv6 address counts by its /64 prefix, however it is written", () => {
    const key = "2001:db8:1:2::/64";
    assert.equal(addressKey("2001:db8:1:2::1"), key);
    assert.equal(addressKey("2001:0db8:0001:0002:ffff:ffff:ffff:ffff"), key);
    assert.equal(addressKey("2001:db8:1:2:a:b:c:d%eth0"), key);
    assert.equal(addressKey("::1"), "0:0:0:0::/64");
    assert.equal(addressKey("64:ff9b::192.0.2.7"), "64:ff9b:0:0::/64");
    assert.notEqual(addressKey("2001:db8:1:3::1"), key);
  });

  test("anything else counts as itself", () => {
    assert.equal(addressKey(""), "");
    assert.equal(addressKey("not-an-address"), "not-an-address");
  });
});

describe("VerificationSlots", () => {
  test("runs at most maxRunning at once, lets maxWaiting wait in arrival order, and refuses the rest at once", async () => {
    const slots = new VerificationSlots(1, 2);
    const first = await slots.acquire();
    assert.ok(first);
    const order: string[] = [];
    const second = slots.acquire()?.then((release) => {
      order.push("second");
      return release;
    });
    const third = slots.acquire()?.then((release) => {
      order.push("third");
      return release;
    });
    assert.equal(slots.acquire(), undefined, "a fourth finds the queue full");
    assert.deepEqual([slots.running, slots.waiting], [1, 2]);
    first();
    first();
    const releaseSecond = await second;
    assert.deepEqual(order, ["second"], "releasing twice hands on one slot only");
    releaseSecond?.();
    (await third)?.();
    assert.deepEqual(order, ["second", "third"]);
    assert.deepEqual([slots.running, slots.waiting], [0, 0]);
  });
});

describe("AddressFailures", () => {
  const make = (clock: ManualClock, capacity = 3, maxAddresses = 100) =>
    new AddressFailures({ capacity, refillMs: 1000, blockMs: 10_000, clock, maxAddresses });

  test("the failure that uses up the allowance blocks the address until blockMs passed", () => {
    const clock = new ManualClock();
    const failures = make(clock);
    for (let i = 0; i < 3; i++) {
      assert.equal(failures.blockedUntil("a"), undefined);
      assert.ok(failures.begin("a"));
      failures.end("a", true);
    }
    assert.equal(failures.blockedUntil("a"), clock.monotonicNow() + 10_000);
    assert.equal(failures.blockedUntil("b"), undefined, "other addresses are not affected");
    clock.advanceSync(9_999);
    assert.notEqual(failures.blockedUntil("a"), undefined);
    clock.advanceSync(1);
    assert.equal(failures.blockedUntil("a"), undefined);
  });

  test("an address may not have more verifications pending than failures left; successes cost nothing", () => {
    const clock = new ManualClock();
    const failures = make(clock);
    assert.ok(failures.begin("a"));
    failures.end("a", true);
    assert.ok(failures.begin("a"));
    assert.ok(failures.begin("a"));
    assert.equal(failures.begin("a"), false, "two failures left, two pending");
    failures.end("a", false);
    failures.end("a", false);
    assert.ok(failures.begin("a"), "a success gives the turn back");
    failures.end("a", false);
    // Refilled: one failure forgiven per refillMs, and then the address is forgotten.
    clock.advanceSync(1000);
    assert.equal(failures.size, 1);
    assert.ok(failures.begin("a"));
    failures.end("a", false);
    assert.equal(failures.size, 0, "an address with its full allowance and nothing pending is not kept");
  });

  test("0 turns the limit off", () => {
    const clock = new ManualClock();
    const failures = make(clock, 0);
    for (let i = 0; i < 100; i++) {
      assert.ok(failures.begin("a"));
      failures.end("a", true);
    }
    assert.equal(failures.blockedUntil("a"), undefined);
    assert.equal(failures.size, 0);
  });

  test("remembers at most maxAddresses, dropping the least recently active one without pending work", () => {
    const clock = new ManualClock();
    const failures = make(clock, 3, 2);
    for (const key of ["a", "b"]) {
      assert.ok(failures.begin(key));
      failures.end(key, true);
    }
    assert.ok(failures.begin("c"));
    assert.equal(failures.size, 2);
    failures.end("c", true);
    // "a" was dropped: it starts again with a full allowance.
    for (let i = 0; i < 2; i++) {
      assert.ok(failures.begin("a"));
      failures.end("a", true);
    }
    assert.equal(failures.blockedUntil("a"), undefined);
  });
});

describe("ConnectGuard", () => {
  const limits = {
    maxConcurrentVerifications: 1,
    maxQueuedVerifications: 1,
    authFailuresPerAddress: 2,
    authFailureRefillMs: 1000,
    authBlockMs: 5000,
  };

  test("a CONNECT that went away while it waited costs no verification and frees its place", async () => {
    const guard = new ConnectGuard(limits, new ManualClock());
    const first = await guard.admit("192.0.2.1", () => true);
    assert.equal(first.status, "granted");
    let wanted = true;
    const second = guard.admit("192.0.2.2", () => wanted);
    wanted = false;
    if (first.status === "granted") first.finish(false);
    assert.deepEqual(await second, { status: "abandoned" });
    assert.deepEqual(guard.load, { running: 0, waiting: 0, held: 0, addresses: 0 });
  });

  test("an address blocked after its failures is refused without a turn, and others are not", async () => {
    const guard = new ConnectGuard(limits, new ManualClock());
    for (let i = 0; i < 2; i++) {
      const ticket = await guard.admit("192.0.2.1", () => true);
      assert.equal(ticket.status, "granted");
      if (ticket.status === "granted") ticket.finish(true);
    }
    assert.equal(guard.isBlocked("192.0.2.1"), true);
    assert.equal(guard.isBlocked("::ffff:192.0.2.1"), true);
    assert.deepEqual(await guard.admit("192.0.2.1", () => true), { status: "refused", reason: "address-blocked" });
    assert.equal((await guard.admit("192.0.2.9", () => true)).status, "granted");
  });
});

/** A ticket's status as soon as it is known, or "pending" while it still waits. */
async function peek(ticket: Promise<VerificationTicket>): Promise<string> {
  const pending = Symbol("pending");
  // Two turns of the microtask queue let a ticket that was just handed on settle.
  const first = await Promise.race([ticket, new Promise<typeof pending>((r) => setImmediate(() => r(pending)))]);
  return first === pending ? "pending" : first.status;
}

function finish(ticket: VerificationTicket, failed: boolean): void {
  assert.equal(ticket.status, "granted");
  if (ticket.status === "granted") ticket.finish(failed);
}

describe("ConnectGuard: CONNECTs behind one address (NAT) wait their turn", () => {
  const limits = {
    maxConcurrentVerifications: 1,
    maxQueuedVerifications: 4,
    authFailuresPerAddress: 2,
    authFailureRefillMs: 1000,
    authBlockMs: 5000,
  };

  test("CONNECTs beyond the address's failures left wait in arrival order and go on as earlier ones succeed", async () => {
    const guard = new ConnectGuard(limits, new ManualClock());
    const order: number[] = [];
    const tickets = Array.from({ length: 6 }, (_, i) =>
      guard
        .admit("192.0.2.1", () => true)
        .then((ticket) => {
          order.push(i);
          return ticket;
        }),
    );
    // Two (the failures left) in the shared queue, one running; four wait behind their address.
    assert.deepEqual(guard.load, { running: 1, waiting: 1, held: 4, addresses: 1 });
    for (const ticket of tickets) finish(await ticket, false);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(guard.load, { running: 0, waiting: 0, held: 0, addresses: 0 });
  });

  test("100 CONNECTs with right secrets from one address are all verified with the default limits", async () => {
    const guard = new ConnectGuard(
      { ...limits, maxConcurrentVerifications: 4, maxQueuedVerifications: 256, authFailuresPerAddress: 20 },
      new ManualClock(),
    );
    const tickets = Array.from({ length: 100 }, () => guard.admit("192.0.2.1", () => true));
    const granted = await Promise.all(
      tickets.map(async (pending) => {
        const ticket = await pending;
        // Verified right away: the next in the address's line enters the shared queue.
        finish(ticket, false);
        return ticket.status;
      }),
    );
    assert.deepEqual(new Set(granted), new Set(["granted"]));
    assert.deepEqual(guard.load, { running: 0, waiting: 0, held: 0, addresses: 0 });
  });

  test("a flood of wrong secrets costs at most the allowance, then all it has waiting is refused as blocked", async () => {
    const guard = new ConnectGuard(limits, new ManualClock());
    const tickets = Array.from({ length: 5 }, () => guard.admit("192.0.2.1", () => true));
    assert.deepEqual(guard.load, { running: 1, waiting: 1, held: 3, addresses: 1 });
    finish(await tickets[0], true);
    // One failure left: the one in the shared queue runs, nobody from the line may join it.
    assert.deepEqual(guard.load, { running: 1, waiting: 0, held: 3, addresses: 1 });
    finish(await tickets[1], true);
    for (const ticket of tickets.slice(2)) {
      assert.deepEqual(await ticket, { status: "refused", reason: "address-blocked" });
    }
    assert.equal(guard.isBlocked("192.0.2.1"), true);
    assert.deepEqual(guard.load, { running: 0, waiting: 0, held: 0, addresses: 1 });
  });

  test("a CONNECT from another address is not held behind one address's waiting line", async () => {
    const guard = new ConnectGuard(limits, new ManualClock());
    const flood = Array.from({ length: 5 }, () => guard.admit("192.0.2.1", () => true));
    const other = guard.admit("192.0.2.9", () => true);
    finish(await flood[0], true);
    // Next in the shared queue: the flood's second, then the other address, ahead of the flood's line.
    const second = await flood[1];
    assert.equal(await peek(other), "pending");
    finish(second, true);
    finish(await other, false);
    for (const ticket of flood.slice(2)) assert.equal((await ticket).status, "refused");
  });

  test("the line of one address is bounded by maxQueuedVerifications; further CONNECTs get server-busy at once", async () => {
    const guard = new ConnectGuard(limits, new ManualClock());
    const tickets = Array.from({ length: 6 }, () => guard.admit("192.0.2.1", () => true));
    assert.deepEqual(await guard.admit("192.0.2.1", () => true), { status: "refused", reason: "server-busy" });
    const other = guard.admit("192.0.2.2", () => true);
    assert.equal(await peek(other), "pending", "another address still finds room in the shared queue");
    await Promise.all([...tickets, other].map(async (ticket) => finish(await ticket, false)));
    assert.deepEqual(guard.load, { running: 0, waiting: 0, held: 0, addresses: 0 });
  });

  test("a CONNECT that went away while in its address's line costs nothing and leaves the line", async () => {
    const guard = new ConnectGuard(limits, new ManualClock());
    const gone = new Set<number>();
    const tickets = Array.from({ length: 6 }, (_, i) => guard.admit("192.0.2.1", () => !gone.has(i)));
    assert.deepEqual(guard.load.held, 4);
    // All four in the line go away: a new CONNECT finds the line full of them, and they make room for it.
    for (const i of [2, 3, 4, 5]) gone.add(i);
    const late = guard.admit("192.0.2.1", () => true);
    for (const i of [2, 3, 4, 5]) assert.deepEqual(await tickets[i], { status: "abandoned" });
    assert.equal(guard.load.held, 1);
    finish(await tickets[0], false);
    finish(await tickets[1], false);
    finish(await late, false);
    assert.deepEqual(guard.load, { running: 0, waiting: 0, held: 0, addresses: 0 });
  });

  test("one that went away is dropped when its turn in the line comes, without a verification", async () => {
    const guard = new ConnectGuard(limits, new ManualClock());
    let wanted = true;
    const tickets = [
      guard.admit("192.0.2.1", () => true),
      guard.admit("192.0.2.1", () => true),
      guard.admit("192.0.2.1", () => wanted),
      guard.admit("192.0.2.1", () => true),
    ];
    wanted = false;
    finish(await tickets[0], false);
    assert.deepEqual(await tickets[2], { status: "abandoned" });
    finish(await tickets[1], false);
    finish(await tickets[3], false);
    assert.deepEqual(guard.load, { running: 0, waiting: 0, held: 0, addresses: 0 });
  });

  test("with authFailuresPerAddress 0 nothing waits behind its address: only the shared queue bounds CONNECTs", async () => {
    const guard = new ConnectGuard(
      { ...limits, authFailuresPerAddress: 0, maxQueuedVerifications: 2 },
      new ManualClock(),
    );
    const tickets = Array.from({ length: 3 }, () => guard.admit("192.0.2.1", () => true));
    assert.deepEqual(guard.load, { running: 1, waiting: 2, held: 0, addresses: 0 });
    assert.deepEqual(await guard.admit("192.0.2.1", () => true), { status: "refused", reason: "server-busy" });
    for (const ticket of tickets) finish(await ticket, true);
    assert.equal(guard.isBlocked("192.0.2.1"), false);
  });
});
