import assert from "node:assert/strict";
import { describe, test } from "node:test";
import mqttPacket from "mqtt-packet";
import { PublishCounter } from "../../broker/publish-counter.ts";
import { publishPacket } from "./helpers.ts";

const pub = (n: number, bytes = 3): Buffer =>
  mqttPacket.generate(publishPacket("devices/d/up/telemetry", Buffer.alloc(bytes, n), n));
const ping = (): Buffer => mqttPacket.generate({ cmd: "pingreq" });

describe("PublishCounter", () => {
  test("cuts a chunk before the PUBLISH past the allowance; other packets do not count", () => {
    const chunk = Buffer.concat([ping(), pub(1), ping(), pub(2), pub(3)]);
    const counter = new PublishCounter();
    const cut = counter.cut(chunk, 2);
    assert.equal(cut, ping().length * 2 + pub(1).length * 2);
    // The bytes from the cut are fed again: the count resumes at the third PUBLISH.
    assert.equal(counter.cut(chunk.subarray(cut), 1), pub(3).length);
  });

  test("keeps whole chunks within the allowance", () => {
    const chunk = Buffer.concat([pub(1), pub(2)]);
    assert.equal(new PublishCounter().cut(chunk, 2), chunk.length);
  });

  test("a PUBLISH begun in an earlier chunk counts against the next chunk's allowance", () => {
    const first = pub(1, 200);
    const counter = new PublishCounter();
    assert.equal(counter.cut(first.subarray(0, 50), 1), 50);
    const rest = Buffer.concat([first.subarray(50), pub(2)]);
    assert.equal(counter.cut(rest, 1), first.length - 50);
    assert.equal(counter.cut(rest.subarray(first.length - 50), 1), pub(2).length);
  });

  test("reads a remaining length split across chunks, and bodies of 128 bytes and more", () => {
    const big = pub(1, 20_000);
    const counter = new PublishCounter();
    assert.equal(counter.cut(big.subarray(0, 2), 1), 2);
    const rest = Buffer.concat([big.subarray(2), pub(2)]);
    assert.equal(counter.cut(rest, 1), big.length - 2);
  });

  test("with no allowance, a chunk that starts with a PUBLISH is cut at 0", () => {
    assert.equal(new PublishCounter().cut(pub(1), 0), 0);
  });
});
