/**
 * A QoS 0 down frame written on the spot whose write throws (a packet mqtt-packet refuses) never throws into the
 * agent's send: the session fails as aedes fails it for the same write, an error of the client on a later tick, which
 * the broker logs and counts as a session error; frames sent meanwhile are left to aedes, behind it.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import type { Client } from "aedes";
import { DeviceConnection } from "../../broker/connection.ts";
import { DeviceCodecs } from "../../broker/device-codecs.ts";
import { writeDownNow } from "../../broker/down-write-now.ts";
import { TokenBucket } from "../../broker/token-bucket.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { MemoryLogger } from "./helpers.ts";

/** A stream that takes writes (nothing pending, no drain needed) until `fail` is set, then throws on each. */
class FailingStream extends Writable {
  fail = false;
  override write(chunk: unknown, ...rest: never[]): boolean {
    if (this.fail) throw new TypeError("not a writable chunk");
    return super.write(chunk, ...rest);
  }
  override _write(_chunk: unknown, _encoding: BufferEncoding, callback: () => void): void {
    callback();
  }
}

/** The parts of an aedes client the writer reads, on an EventEmitter so its `error` can be seen. */
function fakeClient(conn: Writable): Client {
  return Object.assign(new EventEmitter(), { connected: true, closed: false, conn }) as unknown as Client;
}

function connectionOf(client: Client): DeviceConnection {
  return new DeviceConnection(
    {
      connectionId: "c1",
      deviceId: "d1",
      transport: "tcp",
      remoteAddress: "",
      registryCodec: undefined,
      defaultCodec: "cbor",
      shared: new DeviceCodecs().acquire("d1"),
      client,
      clean: true,
      registered: true,
    },
    new TokenBucket(10, 10, new ManualClock()),
  );
}

describe("a QoS 0 down frame whose write throws", () => {
  test("is logged, fails the session as an error of its client on a later tick, and never throws", async () => {
    const stream = new FailingStream();
    const client = fakeClient(stream);
    const connection = connectionOf(client);
    const logger = new MemoryLogger();
    const errors: Error[] = [];
    client.on("error", (err) => errors.push(err));
    const topic = "devices/d1/down/reason";

    assert.equal(writeDownNow(connection, topic, Buffer.from("a"), logger), true, "written on the spot");
    stream.fail = true;
    assert.equal(writeDownNow(connection, topic, Buffer.from("b"), logger), true, "taken, though it failed");
    assert.deepEqual(
      logger.lines.map((l) => [l.level, l.msg, l.obj.device]),
      [["error", "down frame could not be written", "d1"]],
    );
    assert.equal(errors.length, 0, "reported on a later tick, as aedes reports a failed write");
    stream.fail = false;
    assert.equal(writeDownNow(connection, topic, Buffer.from("c"), logger), false, "meanwhile left to aedes");

    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      errors.map((e) => [e.message, (e.cause as Error).message]),
      [["packet received not valid", "not a writable chunk"]],
    );
    assert.equal(connection.downInAedes, 0);
  });
});
