/** DeviceAgent shadow through the real runtime: versions, deltas in the device codec, stale rejection, conflicts. */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { SetDesiredResult, Shadow } from "../../agents/device/index.ts";
import { DeviceHarness } from "./device-harness.ts";

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

test("reported patches bump the version and a stale base version is refused with the current version", async () => {
  const h = new DeviceHarness();
  harnesses.push(h);
  const dev = await h.open("lamp-1");
  await h.send(dev, { channel: "state", frame: { v: 0, s: { on: true, level: 3 } } });
  await h.send(dev, { channel: "state", frame: { v: 1, s: { level: null, color: "red" } } });
  await h.send(dev, { channel: "state", frame: { v: 1, s: { on: false } } });
  assert.deepEqual(dev.frames("error"), [
    { code: "BRIDGE_ERR_STALE_VERSION", msg: "reported version is 2, not 1", v: 2 },
  ]);
  const shadow = await h.call<Shadow>("lamp-1", "getShadow");
  assert.deepEqual(shadow.reported, { version: 2, state: { on: true, color: "red" } });
  assert.deepEqual(shadow.desired, { version: 0, state: {} });
});

test("a reported patch based on a version the bridge never issued is refused with the same code and says it is ahead", async () => {
  // A device that kept its version across a destroyed and recreated agent (or a firmware bug) claims v 3 while the
  // shadow is at 0. The code stays BRIDGE_ERR_STALE_VERSION so devices that resync on it keep working; the message
  // says which case it is, and `v` (the current version, lower than the one sent) lets the device tell it too.
  const h = new DeviceHarness();
  harnesses.push(h);
  const dev = await h.open("lamp-2");
  await h.send(dev, { channel: "state", frame: { v: 3, s: { on: true } } });
  assert.deepEqual(dev.frames("error"), [
    {
      code: "BRIDGE_ERR_STALE_VERSION",
      msg: "reported version is 0, not 3: version 3 is ahead and was never issued; report the whole state on 0",
      v: 0,
    },
  ]);
  await h.send(dev, { channel: "state", frame: { v: 0, s: { on: true } } });
  assert.equal(dev.frames("error").length, 1, "the resync on the current version applies");
  assert.deepEqual((await h.call<Shadow>("lamp-2", "getShadow")).reported, { version: 1, state: { on: true } });
});

test("desired changes send the delta to a binary device whose protocol flag is off, and only when it changes", async () => {
  const h = new DeviceHarness();
  harnesses.push(h);
  const dev = await h.open("thermo-2", "cbor");
  assert.deepEqual(dev.protocol, [], "a binary device gets no protocol frames");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0.0" } });
  assert.deepEqual(dev.frames("state"), [{ v: 0, d: {}, full: true }], "hello resyncs the full desired state");
  dev.clear();

  assert.deepEqual(await h.call<SetDesiredResult>("thermo-2", "setDesired", { target: 21, mode: { fan: "auto" } }), {
    status: "ok",
    version: 1,
  });
  assert.deepEqual(dev.frames("state"), [{ v: 1, d: { target: 21, mode: { fan: "auto" } } }]);
  await h.send(dev, { channel: "state", frame: { v: 0, s: { target: 21, temp: 19 } } });
  assert.deepEqual(dev.frames("state").at(-1), { v: 1, d: { mode: { fan: "auto" } } }, "the delta shrank");
  dev.clear();
  await h.send(dev, { channel: "state", frame: { v: 1, s: { temp: 20 } } });
  assert.deepEqual(dev.frames("state"), [], "an unrelated reported change does not resend the same delta");
  await h.call("thermo-2", "setDesired", { mode: null });
  assert.deepEqual(dev.frames("state"), [{ v: 2, d: {} }]);
  const shadow = await h.call<Shadow>("thermo-2", "getShadow");
  assert.deepEqual(shadow.delta, {});
  assert.deepEqual(shadow.desired, { version: 2, state: { target: 21 } });
});

test("setDesired with a stale expectedVersion is a conflict value and changes nothing", async () => {
  const h = new DeviceHarness();
  harnesses.push(h);
  await h.call("valve-1", "setDesired", { open: true }, 0);
  assert.deepEqual(await h.call("valve-1", "setDesired", { open: false }, 0), { status: "conflict", version: 1 });
  assert.deepEqual((await h.call<Shadow>("valve-1", "getShadow")).desired, { version: 1, state: { open: true } });
});

test("a device whose hello says sync false gets no deltas and no resync", async () => {
  const h = new DeviceHarness();
  harnesses.push(h);
  const dev = await h.open("sensor-1", "pb");
  await h.send(dev, { channel: "hello", frame: { fw: "2.1", sync: false } });
  await h.call("sensor-1", "setDesired", { rate: 5 });
  assert.deepEqual(dev.frames("state"), []);
});

test("a protocol connection gets exactly one identity, the one sent when it opened, and a hello adds none", async () => {
  const h = new DeviceHarness();
  harnesses.push(h);
  const json = await h.open("panel-1", "json");
  await h.send(json, { channel: "hello", frame: { fw: "3.0", codec: "json" } });
  assert.deepEqual(
    json.protocol.filter((m) => m.type === "identity").map((m) => m.type === "identity" && m.agent),
    ["panel-1"],
  );
  assert.deepEqual(json.frames("identity"), [], "the hello is not answered with a second identity");
  const binary = await h.open("panel-2", "cbor");
  await h.send(binary, { channel: "hello", frame: { fw: "3.0" } });
  assert.deepEqual(binary.frames("identity"), []);
  assert.deepEqual(binary.protocol, []);
});
