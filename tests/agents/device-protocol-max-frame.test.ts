/**
 * The runtime's own protocol frames (identity at open, agent-state broadcasts) keep within a device's maxFrame like
 * the DeviceAgent's frames do: one too large is left out for that connection and the device gets a small
 * BRIDGE_ERR_FRAME_TOO_LARGE error frame (without `v`) instead; the first refusal is logged, not every broadcast. A
 * WebSocket viewer has no limit, and a binary device gets no protocol frames (nor these errors) at all.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { ProtocolMessage } from "../../agents/host.ts";
import { protocolToDown } from "../../agents/protocol-down.ts";
import { DeviceAgent } from "../../agents/device/index.ts";
import { FRAME_TOO_LARGE } from "../../agents/device/frame-limit.ts";
import type { CodecName } from "../../codecs/frames.ts";
import { encodeDownMessage, getCodec } from "../../codecs/index.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import type { HarnessOptions, RecordingDevice } from "./device-harness.ts";
import { DeviceHarness } from "./device-harness.ts";

const MAX_FRAME = 128;
const BIG_TEXT = "x".repeat(300);

/** An agent that keeps what an operator shows on the device's panel in its (runtime) state. */
class Panel extends DeviceAgent {
  show(text: unknown): boolean {
    this.setState({ text: String(text) });
    return true;
  }
}

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

function harness(options: HarnessOptions = {}): DeviceHarness {
  const h = new DeviceHarness({ agentClass: Panel, ...options });
  harnesses.push(h);
  return h;
}

async function online(h: DeviceHarness, id: string, codec: CodecName, maxFrame: number): Promise<RecordingDevice> {
  const dev = await h.open(id, codec);
  await h.send(dev, { channel: "hello", frame: { fw: "1.0", codec, maxFrame } });
  return dev;
}

function states(dev: RecordingDevice): ProtocolMessage[] {
  return dev.protocol.filter((m) => m.type === "state");
}

/** The size of a protocol frame as the device would receive it, in `codec`. */
function downBytes(codec: CodecName, message: ProtocolMessage): number {
  return encodeDownMessage(getCodec(codec), protocolToDown(message)).byteLength;
}

test("an agent-state broadcast larger than a JSON device's maxFrame is not sent to it; it gets an error frame, a viewer gets the state", async () => {
  const { logger, lines } = capturingLogger("warn");
  const h = harness({ logger });
  const dev = await online(h, "panel-1", "json", MAX_FRAME);
  const viewer = await h.open("panel-1", "json", "ws");
  viewer.clear();

  await h.call("panel-1", "show", BIG_TEXT);
  await h.call("panel-1", "show", `${BIG_TEXT}!`);
  assert.deepEqual(states(dev), [], "no state frame over maxFrame");
  const bytes = downBytes("json", { type: "state", state: { text: BIG_TEXT } });
  assert.deepEqual(dev.frames("error"), [
    { code: FRAME_TOO_LARGE, msg: `agent state is ${bytes} bytes, over maxFrame ${MAX_FRAME}` },
    { code: FRAME_TOO_LARGE, msg: `agent state is ${bytes + 1} bytes, over maxFrame ${MAX_FRAME}` },
  ]);
  for (const { message } of dev.sent) {
    assert.ok(encodeDownMessage(getCodec("json"), message).byteLength <= MAX_FRAME);
  }
  assert.equal(states(viewer).length, 2, "a WebSocket viewer has no maxFrame");
  const warnings = lines.filter((l) => l.frame === "state");
  assert.equal(warnings.length, 1, "logged once, not per broadcast");
  assert.deepEqual([warnings[0].agent, warnings[0].bytes, warnings[0].maxFrame], ["panel-1", bytes, MAX_FRAME]);

  await h.call("panel-1", "show", "hi");
  assert.deepEqual(states(dev), [{ type: "state", state: { text: "hi" } }], "a state that fits goes as before");
  assert.equal(dev.frames("error").length, 2);
});

test("the identity frame, and the state at open, too large for the maxFrame of the device's last hello are left out of the next session", async () => {
  const h = harness();
  const id = `panel-with-a-long-device-id-${"n".repeat(30)}`;
  const identity: ProtocolMessage = {
    type: "identity",
    name: "Panel",
    agent: id,
    protocolVersion: 1,
    serverTime: h.clock.now(),
  };
  const maxFrame = downBytes("json", identity) - 1;
  const first = await online(h, id, "json", maxFrame);
  assert.equal(first.protocol.filter((m) => m.type === "identity").length, 1, "no hello was in force at this open");
  await h.call(id, "show", BIG_TEXT);
  await h.close(first);

  const second = await h.open(id, "json");
  assert.deepEqual(second.protocol, [], "neither identity nor the state fits");
  const errors = second.frames("error");
  assert.equal(errors.length, 2);
  assert.deepEqual(
    errors.map((e) => [e.code, e.v]),
    [
      [FRAME_TOO_LARGE, undefined],
      [FRAME_TOO_LARGE, undefined],
    ],
  );
  assert.match(errors[0].msg, /^identity/);
  for (const { message } of second.sent) {
    assert.ok(encodeDownMessage(getCodec("json"), message).byteLength <= maxFrame);
  }
});

test("a binary device gets no protocol frame and no error frame for one, whatever its maxFrame", async () => {
  const h = harness();
  const dev = await online(h, "panel-cbor", "cbor", 64);
  await h.call("panel-cbor", "show", BIG_TEXT);
  assert.deepEqual([dev.protocol, dev.frames("error")], [[], []]);
});
