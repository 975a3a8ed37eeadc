/**
 * The `info` lines of connections aedes ends with an error (a packet its parser refuses, a socket reset, no CONNECT in
 * time) are written at the default log level. A client reconnecting in a loop and sending a bad packet each time wrote
 * one per connection, without bound, before CONNECT without even its address; and a connection the packet guard cut
 * wrote one beside its (throttled) warning. Now: at most one line per source address (before CONNECT) or per device
 * (after) per interval, with `count`; none for a cut the guard's warning tells already.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import { CONNECTION_ERROR_LINE, SESSION_ERROR_LINE } from "../../broker/hooks/events.ts";
import { PROTOCOL_VIOLATION_WARNING } from "../../broker/packet-refusals.ts";
import { THROTTLED_WARNING_INTERVAL_MS } from "../../broker/throttled-warning.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connectRaw, cutAfter, type TestBroker, startTestBroker } from "./helpers.ts";

/** A CONNECT whose reserved flag bits are set: aedes' parser refuses it ([MQTT-2.2.2-2]). */
const CONNECT_WITH_BAD_FLAGS = Buffer.from([0x1f, 0x00]);
/** A PUBLISH with both QoS bits set ([MQTT-3.3.1-4]): aedes' parser refuses it. */
const PUBLISH_WITH_QOS_3 = Buffer.from([0x36, 0x00]);
const CONNACK = mqttPacket.generate({ cmd: "connack", returnCode: 0, sessionPresent: false });

function lines(tb: TestBroker, msg: string): Array<Record<string, unknown>> {
  return tb.logger.lines.filter((l) => l.msg === msg).map((l) => l.obj);
}

describe("connections aedes ends with an error, again and again", () => {
  test("a bad packet before CONNECT over N connections: one line per address per interval, with the count", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    try {
      for (let i = 0; i < 5; i++) await cutAfter(tb.port, CONNECT_WITH_BAD_FLAGS);
      await cutAfter(tb.port, CONNECT_WITH_BAD_FLAGS, "127.0.0.2");
      const logged = lines(tb, CONNECTION_ERROR_LINE);
      assert.deepEqual(
        logged.map((l) => [l.remoteAddress, l.count]),
        [
          ["127.0.0.1", 1],
          ["127.0.0.2", 1],
        ],
      );
      assert.equal(typeof logged[0].err, "string", "the parser's reason is kept");

      clock.advanceSync(THROTTLED_WARNING_INTERVAL_MS);
      await cutAfter(tb.port, CONNECT_WITH_BAD_FLAGS);
      assert.deepEqual(
        lines(tb, CONNECTION_ERROR_LINE).map((l) => [l.remoteAddress, l.count]),
        [
          ["127.0.0.1", 1],
          ["127.0.0.2", 1],
          ["127.0.0.1", 5],
        ],
      );
    } finally {
      await tb.close();
    }
  });

  test("a device whose sessions end in a bad packet N times: one line per device per interval", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock });
    try {
      const secret = Buffer.from(await tb.addDevice("bad-qos"));
      for (let i = 0; i < 4; i++) {
        const raw = await connectRaw(tb.port, { clientId: "bad-qos", username: "bad-qos", password: secret });
        raw.socket.write(PUBLISH_WITH_QOS_3);
        await raw.closed;
        await tb.host.waitFor(() => tb.host.closes("bad-qos").length === i + 1);
      }
      assert.deepEqual(
        lines(tb, SESSION_ERROR_LINE).map((l) => [l.device, l.count]),
        [["bad-qos", 1]],
      );
      assert.equal(tb.host.closes("bad-qos").at(-1)?.reason, "error", "the session still ends as an error");
    } finally {
      await tb.close();
    }
  });

  test("a connection the packet guard cut gets its warning only, not a second info line", async () => {
    const tb = await startTestBroker();
    try {
      await cutAfter(tb.port, CONNACK);
      const secret = Buffer.from(await tb.addDevice("sends-connack"));
      const raw = await connectRaw(tb.port, { clientId: "sends-connack", username: "sends-connack", password: secret });
      raw.socket.write(CONNACK);
      await raw.closed;
      await tb.host.waitFor(() => tb.host.closes("sends-connack").length === 1);
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_PROTOCOL_VIOLATION, 2);
      assert.equal(lines(tb, PROTOCOL_VIOLATION_WARNING).length, 1, "one address, one line");
      assert.deepEqual(lines(tb, CONNECTION_ERROR_LINE), []);
      assert.deepEqual(lines(tb, SESSION_ERROR_LINE), []);
    } finally {
      await tb.close();
    }
  });
});
