/**
 * A DeviceAgent's readonly WebSocket viewer: its rpc may read the device (shadow, status, commands) but a callable that
 * changes it (the desired state, a command for the device) is refused, and nothing reaches the device.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { RpcResultFrame, Value } from "../../codecs/frames.ts";
import type { CommandRecord, Shadow } from "../../agents/device/index.ts";
import { DeviceAgent } from "../../agents/device/index.ts";
import { DeviceHarness, RecordingDevice } from "./device-harness.ts";

class Thermostat extends DeviceAgent {
  static override callable = [...DeviceAgent.callable, "setTarget", "command"];
  setTarget(celsius: number) {
    return this.setDesired({ target: celsius });
  }
  command(name: string) {
    return this.sendCommand({ name });
  }
}

const h = new DeviceHarness({ agentClass: Thermostat });
after(() => h.dispose());

/** Opens a WebSocket client on `agentId`, a viewer when `readonly`. */
async function openClient(agentId: string, id: string, readonly: boolean): Promise<RecordingDevice> {
  const client = new RecordingDevice(agentId, id, "json", "ws");
  const opened = await h.runtime.open(agentId, {
    id,
    kind: "ws",
    codec: "json",
    readonly,
    transport: client.transport,
  });
  assert.equal(opened.status, "committed");
  return client;
}

/** Sends an rpc and returns its reply, `res` typed as the caller expects it. */
async function rpc<R = Value>(client: RecordingDevice, id: string, m: string, a: Value[] = []) {
  await h.send(client, { channel: "rpc", frame: { id, m, a } });
  const reply = client.frames("rpc").at(-1);
  assert.ok(reply !== undefined, `no reply to ${m}`);
  return reply as RpcResultFrame & { res?: R };
}

test("a viewer's rpc that changes the desired state or sends a command is refused, and the device gets nothing", async () => {
  const device = await h.open("thermo-v", "cbor");
  await h.send(device, { channel: "hello", frame: { fw: "1.0", codec: "cbor" } });
  const viewer = await openClient("thermo-v", "viewer-1", true);
  device.clear();

  assert.deepEqual(await rpc(viewer, "1", "setTarget", [21]), {
    id: "1",
    ok: false,
    err: "BRIDGE_ERR_READONLY_CONNECTION",
  });
  assert.deepEqual(await rpc(viewer, "2", "command", ["reboot"]), {
    id: "2",
    ok: false,
    err: "BRIDGE_ERR_READONLY_CONNECTION",
  });
  assert.deepEqual((await h.call<Shadow>("thermo-v", "getShadow")).desired, { version: 0, state: {} });
  assert.deepEqual(await h.call<CommandRecord[]>("thermo-v", "listCommands"), []);
  assert.deepEqual(device.sent, [], "nothing was sent to the device");
});

test("a viewer's read-only rpcs work, and a read-write client's same writes commit and reach the device", async () => {
  const device = await h.open("thermo-w", "cbor");
  await h.send(device, { channel: "hello", frame: { fw: "1.0", codec: "cbor" } });
  const viewer = await openClient("thermo-w", "viewer-2", true);
  const editor = await openClient("thermo-w", "editor-2", false);
  device.clear();

  assert.equal((await rpc(viewer, "1", "ping")).ok, true);
  assert.equal((await rpc(viewer, "2", "getStatus")).ok, true);
  assert.deepEqual((await rpc<Shadow>(viewer, "3", "getShadow")).res?.desired, { version: 0, state: {} });
  assert.deepEqual(await rpc(viewer, "4", "getCommand", ["cmd-none"]), { id: "4", ok: true, res: null });

  assert.deepEqual(await rpc(editor, "5", "setTarget", [21]), { id: "5", ok: true, res: { status: "ok", version: 1 } });
  const sent = await rpc<CommandRecord>(editor, "6", "command", ["reboot"]);
  assert.equal(sent.ok, true);
  assert.deepEqual(device.frames("state").at(-1), { v: 1, d: { target: 21 } });
  assert.deepEqual(
    device.frames("cmd").map((c) => c.id),
    [sent.res?.id],
  );
  const read = await rpc<CommandRecord>(viewer, "7", "getCommand", [sent.res?.id ?? null]);
  assert.equal(read.res?.state, "SENT");
});
