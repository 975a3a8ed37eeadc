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

  test("with everyPacket, packets of every kind count (as behind a CONNECT, before the session is accepted)", () => {
    const chunk = Buffer.concat([ping(), pub(1), ping(), pub(2)]);
    assert.equal(new PublishCounter().cut(chunk, 2, true), ping().length + pub(1).length);
  });

  test("with no allowance, a chunk that starts with a PUBLISH is cut at 0", () => {
    assert.equal(new PublishCounter().cut(pub(1), 0), 0);
  });

  test("over a long stream cut at random (single bytes, split lengths, packets larger than a chunk), it agrees with mqtt-packet's parser", () => {
    for (let seed = 1; seed <= 8; seed++) checkAgainstParser(seed);
  });
});

/** A small deterministic random source (LCG), so a failure names the seed that reproduces it. */
function randomSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * A stream of real packets of every kind a device sends (PUBLISH of each QoS with remaining lengths of 1 to 4 bytes,
 * PINGREQ, SUBSCRIBE, PUBREL, PUBACK), fed as a socket delivers it, through cuts at random allowances with the rest put
 * back, as the read pacer does. Each read must stop right before a PUBLISH past its allowance (or take the whole
 * chunk), and everything given on must parse, in order, into the packets sent: nothing lost, doubled or reordered.
 */
function checkAgainstParser(seed: number): void {
  const random = randomSource(seed);
  const sizes = [0, 1, 100, 126, 127, 128, 16_382, 16_384, 20_000];
  const packets: Buffer[] = [];
  const publishStarts: number[] = [];
  let offset = 0;
  for (let i = 0; i < 2000; i++) {
    const kind = random();
    let packet: mqttPacket.Packet;
    if (kind < 0.6) {
      // Now and then one whose remaining length takes 4 bytes (2 MiB and more).
      const bytes = i === 1000 ? 2_100_000 : sizes[Math.floor(random() * sizes.length)];
      const qos = Math.floor(random() * 3) as 0 | 1 | 2;
      packet = { ...publishPacket("devices/d/up/telemetry", Buffer.alloc(bytes, i), (i % 65_535) + 1), qos };
      publishStarts.push(offset);
    } else if (kind < 0.7) packet = { cmd: "pingreq" };
    else if (kind < 0.8)
      packet = { cmd: "subscribe", messageId: 5, subscriptions: [{ topic: "devices/d/down/#", qos: 1 }] };
    else if (kind < 0.9) packet = { cmd: "pubrel", messageId: 9 };
    else packet = { cmd: "puback", messageId: 3 };
    const bytes = mqttPacket.generate(packet);
    packets.push(bytes);
    offset += bytes.length;
  }
  const stream = Buffer.concat(packets);
  const starts = new Set(publishStarts);
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const parsed: Buffer[] = [];
  parser.on("packet", (p) => parsed.push(mqttPacket.generate(p)));
  parser.on("error", (err) => assert.fail(`seed ${seed}: ${err.message}`));
  const counter = new PublishCounter();
  let arrived = 0;
  let given = 0;
  while (given < stream.length) {
    const mode = random();
    arrived = Math.min(
      stream.length,
      arrived + (mode < 0.3 ? 1 : mode < 0.6 ? 1 + Math.floor(random() * 8) : 1 + Math.floor(random() * 70_000)),
    );
    const chunk = stream.subarray(given, arrived);
    const allowance = Math.floor(random() * 4);
    // A PUBLISH begun in an earlier read counts against this one's allowance, and is always completed.
    const begun = publishStarts.filter((s) => s < given).length - parsed.filter((p) => p[0] >> 4 === 3).length;
    const cut = counter.cut(chunk, allowance);
    const started = publishStarts.filter((s) => s >= given && s < given + cut).length + begun;
    assert.ok(
      started <= Math.max(allowance, begun),
      `seed ${seed}: ${started} PUBLISHes past an allowance of ${allowance}`,
    );
    if (cut < chunk.length) {
      assert.ok(starts.has(given + cut), `seed ${seed}: cut at ${given + cut}, not before a PUBLISH`);
      assert.equal(started, Math.max(allowance, begun), `seed ${seed}: cut before the allowance was used`);
    }
    parser.parse(chunk.subarray(0, cut));
    given += cut;
  }
  assert.equal(parsed.length, packets.length, `seed ${seed}`);
  for (let i = 0; i < packets.length; i++) assert.ok(parsed[i].equals(packets[i]), `seed ${seed}: packet ${i} differs`);
}
