/**
 * The DeviceAgent never hands a device connection a frame larger than the `maxFrame` its hello declared, measured in
 * the connection's codec: an rpc result too large becomes BRIDGE_ERR_FRAME_TOO_LARGE, a command too large ends FAILED
 * unsent, a delta or full state too large becomes a `down/error`. Without maxFrame everything goes as before. Each
 * hello declares it anew (unlike the metric alias table): a later hello without it, or with 0, lifts the limit.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { CommandRecord, SetDesiredResult, Shadow } from "../../agents/device/index.ts";
import { DeviceAgent } from "../../agents/device/index.ts";
import type { CodecName } from "../../codecs/frames.ts";
import { encodeDownMessage, getCodec } from "../../codecs/index.ts";
import type { RecordingDevice } from "./device-harness.ts";
import { DeviceHarness } from "./device-harness.ts";

/** Small enough that a 300-character text cannot fit, large enough for every ordinary frame. */
const MAX_FRAME = 128;
const BIG_TEXT = "x".repeat(300);
const CODECS: readonly CodecName[] = ["cbor", "pb", "json"];

class Sensor extends DeviceAgent {
  static override callable = [...DeviceAgent.callable, "dump", "hi"];
  dump(): string {
    return BIG_TEXT;
  }
  hi(): string {
    return "hi";
  }
}

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

function harness(): DeviceHarness {
  const h = new DeviceHarness({ agentClass: Sensor });
  harnesses.push(h);
  return h;
}

/** Opens a session and says hello, with `maxFrame` when given. */
async function online(h: DeviceHarness, id: string, codec: CodecName, maxFrame?: number): Promise<RecordingDevice> {
  const dev = await h.open(id, codec);
  await h.send(dev, { channel: "hello", frame: { fw: "1.0", codec, ...(maxFrame === undefined ? {} : { maxFrame }) } });
  return dev;
}

/** Every frame the device was handed, encoded in its codec, is within `maxFrame` bytes. */
function assertAllWithin(dev: RecordingDevice, maxFrame: number): void {
  for (const { message } of dev.sent) {
    const bytes = encodeDownMessage(getCodec(dev.codec), message).byteLength;
    assert.ok(bytes <= maxFrame, `${message.channel} frame of ${bytes} bytes within ${maxFrame}`);
  }
}

for (const codec of CODECS) {
  test(`${codec}: an rpc result larger than maxFrame is answered with BRIDGE_ERR_FRAME_TOO_LARGE; a small one as before`, async () => {
    const h = harness();
    const dev = await online(h, "rpc-1", codec, MAX_FRAME);
    await h.send(dev, { channel: "rpc", frame: { id: "r1", m: "dump", a: [] } });
    await h.send(dev, { channel: "rpc", frame: { id: "r2", m: "hi", a: [] } });
    assert.deepEqual(dev.frames("rpc"), [
      { id: "r1", ok: false, err: "BRIDGE_ERR_FRAME_TOO_LARGE" },
      { id: "r2", ok: true, res: "hi" },
    ]);
    assertAllWithin(dev, MAX_FRAME);
  });

  test(`${codec}: a command whose frame exceeds maxFrame is not sent and ends FAILED with the sizes`, async () => {
    const h = harness();
    const dev = await online(h, "cmd-1", codec, MAX_FRAME);
    const big = await h.call<CommandRecord>("cmd-1", "sendCommand", { name: "flash", args: { blob: BIG_TEXT } });
    const small = await h.call<CommandRecord>("cmd-1", "sendCommand", { name: "blink" });
    assert.equal(big.state, "FAILED");
    assert.equal(big.attempts, 0);
    assert.match(big.error ?? "", /^command frame is \d+ bytes, over maxFrame 128$/);
    assert.deepEqual(await h.call<CommandRecord>("cmd-1", "getCommand", big.id), big, "the operator sees why");
    assert.equal(small.state, "SENT");
    assert.deepEqual(
      dev.frames("cmd").map((f) => f.id),
      [small.id],
    );
    assertAllWithin(dev, MAX_FRAME);
  });

  test(`${codec}: a delta or full state larger than maxFrame becomes a down/error and the shadow is kept`, async () => {
    const h = harness();
    const dev = await online(h, "shadow-1", codec, MAX_FRAME);
    assert.deepEqual(dev.frames("state"), [{ v: 0, d: {}, full: true }]);
    dev.clear();
    const set = await h.call<SetDesiredResult>("shadow-1", "setDesired", { note: BIG_TEXT });
    assert.deepEqual(set, { status: "ok", version: 1 });
    assert.deepEqual(dev.frames("state"), []);
    const [deltaError] = dev.frames("error");
    assert.equal(deltaError.code, "BRIDGE_ERR_FRAME_TOO_LARGE");
    assert.equal(deltaError.v, 1);
    assert.match(deltaError.msg, /^state delta is \d+ bytes, over maxFrame 128$/);
    const shadow = await h.call<Shadow>("shadow-1", "getShadow");
    assert.deepEqual(shadow.desired, { version: 1, state: { note: BIG_TEXT } });
    assert.deepEqual(shadow.delta, { note: BIG_TEXT });

    dev.clear();
    await h.send(dev, { channel: "hello", frame: { fw: "1.0", codec, maxFrame: MAX_FRAME } });
    assert.deepEqual(dev.frames("state"), []);
    assert.match(dev.frames("error")[0].msg, /^full desired state is \d+ bytes, over maxFrame 128$/);
    assertAllWithin(dev, MAX_FRAME);

    dev.clear();
    await h.call("shadow-1", "setDesired", { note: null, level: 2 });
    assert.deepEqual(dev.frames("state"), [{ v: 2, d: { level: 2 } }], "a delta that fits goes as before");
  });

  test(`${codec}: a device without maxFrame gets large rpc results, commands and deltas as before`, async () => {
    const h = harness();
    const dev = await online(h, "free-1", codec);
    await h.send(dev, { channel: "rpc", frame: { id: "r1", m: "dump", a: [] } });
    const command = await h.call<CommandRecord>("free-1", "sendCommand", { name: "flash", args: { blob: BIG_TEXT } });
    await h.call("free-1", "setDesired", { note: BIG_TEXT });
    assert.deepEqual(dev.frames("rpc"), [{ id: "r1", ok: true, res: BIG_TEXT }]);
    assert.equal(command.state, "SENT");
    assert.deepEqual(dev.frames("cmd")[0].a, { blob: BIG_TEXT });
    assert.deepEqual(dev.frames("state").at(-1), { v: 1, d: { note: BIG_TEXT } });
    assert.deepEqual(dev.frames("error"), []);
  });
}

test("a command queued while offline that does not fit fails at the hello that declares maxFrame", async () => {
  const h = harness();
  const queued = await h.call<CommandRecord>("cmd-2", "sendCommand", { name: "flash", args: { blob: BIG_TEXT } });
  assert.equal(queued.state, "QUEUED");
  const dev = await online(h, "cmd-2", "cbor", MAX_FRAME);
  const record = await h.call<CommandRecord>("cmd-2", "getCommand", queued.id);
  assert.equal(record.state, "FAILED");
  assert.match(record.error ?? "", /over maxFrame 128/);
  assert.deepEqual(dev.frames("cmd"), []);
});

test("an error frame's message is cut to fit a very small maxFrame, keeping the code", async () => {
  const h = harness();
  const dev = await online(h, "tiny-1", "cbor", 48);
  await h.send(dev, { channel: "state", frame: { v: 0, s: { on: true } } });
  await h.send(dev, { channel: "state", frame: { v: 0, s: { on: false } } });
  const [error] = dev.frames("error");
  assert.equal(error.code, "BRIDGE_ERR_STALE_VERSION");
  assert.equal(error.v, 1);
  // Cut in the middle: its beginning and its end around one ellipsis.
  assert.match(error.msg, /^re.*\u2026.* 0$/u);
  const [head = "", tail = ""] = error.msg.split("\u2026");
  assert.ok("reported version is 1, not 0".startsWith(head) && "reported version is 1, not 0".endsWith(tail));
  assertAllWithin(dev, 48);
});

for (const codec of CODECS) {
  test(`${codec}: an error message too long for maxFrame keeps what to do, at its end`, async () => {
    const h = harness();
    const dev = await online(h, `ahead-${codec}`, codec, 112);
    await h.send(dev, { channel: "state", frame: { v: 5, s: { on: true } } });
    const [error] = dev.frames("error");
    assert.equal(error.code, "BRIDGE_ERR_STALE_VERSION");
    const whole = "reported version is 0, not 5: version 5 is ahead and was never issued; report the whole state on 0";
    const [head = "", tail = ""] = error.msg.split("\u2026");
    assert.ok(head.length > 0 && whole.startsWith(head), error.msg);
    assert.ok(tail.endsWith("report the whole state on 0") && whole.endsWith(tail), error.msg);
    assertAllWithin(dev, 112);
  });
}

for (const lifted of [
  { how: "without maxFrame", maxFrame: undefined },
  { how: "with maxFrame 0", maxFrame: 0 },
]) {
  test(`a later hello ${lifted.how} lifts the limit an earlier hello set`, async () => {
    const h = harness();
    const dev = await online(h, "again-1", "pb", MAX_FRAME);
    await h.send(dev, { channel: "rpc", frame: { id: "r1", m: "dump", a: [] } });
    assert.deepEqual(dev.frames("rpc"), [{ id: "r1", ok: false, err: "BRIDGE_ERR_FRAME_TOO_LARGE" }]);
    dev.clear();
    const hello = {
      fw: "1.0",
      codec: "pb" as const,
      ...(lifted.maxFrame === undefined ? {} : { maxFrame: lifted.maxFrame }),
    };
    await h.send(dev, { channel: "hello", frame: hello });
    await h.send(dev, { channel: "rpc", frame: { id: "r2", m: "dump", a: [] } });
    assert.deepEqual(dev.frames("rpc"), [{ id: "r2", ok: true, res: BIG_TEXT }]);
  });
}
