/** DeviceAgent: operator values nested too deeply are refused with a clear error instead of overflowing the stack. */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { CommandRecord, SetDesiredResult, Shadow } from "../../agents/device/index.ts";
import { maxFieldDepth, nestingDepth } from "../../agents/device/value-depth.ts";
import type { Value, ValueMap } from "../../codecs/frames.ts";
import { getCodec, resolveLimits } from "../../codecs/index.ts";
import { DeviceHarness } from "./device-harness.ts";

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

/** A map `levels` deep: {a: {a: ... {x: 1}}}. */
function nested(levels: number): ValueMap {
  let v: ValueMap = { x: 1 };
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

async function failure(h: DeviceHarness, agentId: string, method: string, arg: Value) {
  const result = await h.runtime.call(agentId, method, [arg]);
  assert.equal(result.ok, false, `${method} must refuse`);
  return result as { ok: false; code: string; message: string };
}

test("nesting depth counts levels of maps and lists without recursing, and stops early on huge values", () => {
  assert.equal(nestingDepth(1, 10), 0);
  assert.equal(nestingDepth({}, 10), 1);
  assert.equal(nestingDepth({ a: [1, { b: new Uint8Array(2) }] }, 10), 3);
  assert.equal(nestingDepth(nested(200_000), 15), 16, "stops one level past the bound");
  assert.equal(maxFieldDepth(), resolveLimits().maxDepth - 1);
});

test("setDesired with a patch nested 100000 levels deep is refused with BRIDGE_ERR_INVALID_ARGUMENT naming the field, and the shadow is untouched", async () => {
  const h = new DeviceHarness();
  harnesses.push(h);
  const dev = await h.open("deep-1", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0", sync: true } });
  dev.clear();
  const refused = await failure(h, "deep-1", "setDesired", nested(100_000));
  assert.equal(refused.code, "BRIDGE_ERR_INVALID_ARGUMENT");
  assert.match(refused.message, /^patch nests deeper than 15 levels/);
  const shadow = await h.call<Shadow>("deep-1", "getShadow");
  assert.deepEqual(shadow.desired, { version: 0, state: {} });
  assert.deepEqual(dev.frames("state"), []);
  // Just past the bound is refused too; the agent keeps working afterwards.
  assert.equal(
    (await failure(h, "deep-1", "setDesired", nested(maxFieldDepth() + 1))).code,
    "BRIDGE_ERR_INVALID_ARGUMENT",
  );
  assert.deepEqual(await h.call<SetDesiredResult>("deep-1", "setDesired", { mode: "eco" }), {
    status: "ok",
    version: 1,
  });
});

test("the deepest patch accepted still fits a device frame in every codec", async () => {
  const h = new DeviceHarness();
  harnesses.push(h);
  const dev = await h.open("deep-2", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0", sync: true } });
  dev.clear();
  const deepest = nested(maxFieldDepth());
  assert.deepEqual(await h.call<SetDesiredResult>("deep-2", "setDesired", deepest), { status: "ok", version: 1 });
  const [delta] = dev.frames("state");
  assert.ok(delta);
  for (const name of ["json", "cbor", "pb"] as const) {
    const codec = getCodec(name);
    const bytes = codec.encodeDown("state", delta);
    const back = codec.decodeDown("state", bytes, resolveLimits());
    assert.equal(back.ok, true, `${name} round-trips the deepest accepted delta`);
  }
});

test("sendCommand with args nested too deeply is refused with BRIDGE_ERR_INVALID_ARGUMENT naming args, and nothing is queued", async () => {
  const h = new DeviceHarness();
  harnesses.push(h);
  const refused = await failure(h, "deep-3", "sendCommand", { name: "blink", args: nested(50_000) });
  assert.equal(refused.code, "BRIDGE_ERR_INVALID_ARGUMENT");
  assert.match(refused.message, /^args nests deeper than 15 levels/);
  assert.deepEqual(await h.call<CommandRecord[]>("deep-3", "listCommands"), []);
  const ok = await h.call<CommandRecord>("deep-3", "sendCommand", { name: "blink", args: nested(maxFieldDepth()) });
  assert.equal(ok.state, "QUEUED");
});

test("a patch or args that no device frame can carry (a lone surrogate, NaN) is refused naming the field, not stored to fail on the wire", async () => {
  const h = new DeviceHarness();
  harnesses.push(h);
  const dev = await h.open("bad-1", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0", sync: true } });
  dev.clear();
  // JSON.parse (the operator API's body parser) accepts "\ud800"; no codec can write it as UTF-8.
  const unencodable: Array<[string, Value]> = [
    ["a lone surrogate in a value", { label: "x\ud800" }],
    ["a lone surrogate in a key", { nested: { "k\udc00": 1 } }],
    ["NaN", { t: [1, Number.NaN] }],
  ];
  for (const [name, patch] of unencodable) {
    const refused = await failure(h, "bad-1", "setDesired", patch);
    assert.equal(refused.code, "BRIDGE_ERR_INVALID_ARGUMENT", name);
    assert.match(refused.message, /^patch /, name);
    const args = await failure(h, "bad-1", "sendCommand", { name: "blink", args: patch });
    assert.equal(args.code, "BRIDGE_ERR_INVALID_ARGUMENT", name);
    assert.match(args.message, /^args /, name);
  }
  assert.deepEqual((await h.call<Shadow>("bad-1", "getShadow")).desired, { version: 0, state: {} });
  assert.deepEqual(await h.call<CommandRecord[]>("bad-1", "listCommands"), []);
  assert.deepEqual(dev.sent, []);
});
