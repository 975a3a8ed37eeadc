/**
 * The device context a question is asked with shows the shadow as the question's event sees it: changed by an earlier
 * event, or by the same event before the question, and never as an event that rolled back left it. The agent keeps
 * what it rendered of the shadow between questions, so these pin that no change is missed and no undone one kept.
 * Against a scripted engine, so the test reads each request as it was asked.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { ChatRequest } from "../../agents/engine.ts";
import type { InboundMessage } from "../../agents/host.ts";
import { DeviceAgent } from "../../agents/device/index.ts";
import type { Connection } from "../../agents/types.ts";
import { DeviceHarness, type RecordingDevice, waitFor } from "./device-harness.ts";
import { type ScriptedEngine, scriptedEngine } from "./scripted-engine.ts";

/**
 * A DeviceAgent that acts on markers in a question: `[mode=X]` sets desired mode X in the question's own event,
 * before the question is handled; `[fail]` fails that event after it was handled (everything it did rolls back).
 */
class ShadowProbeAgent extends DeviceAgent {
  override onMessage(conn: Connection, message: InboundMessage): void | Promise<void> {
    if (message.channel !== "reason") return super.onMessage(conn, message);
    const q = String(message.frame.q);
    const mode = /\[mode=(\w+)\]/.exec(q)?.[1];
    if (mode !== undefined) this.setDesired({ mode });
    const handled = super.onMessage(conn, message);
    if (!q.includes("[fail]")) return handled;
    return Promise.resolve(handled).then(() => {
      throw new Error("the test fails this question's event");
    });
  }
}

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

function harness(engine: ScriptedEngine): DeviceHarness {
  const h = new DeviceHarness({ engine, agentClass: ShadowProbeAgent });
  harnesses.push(h);
  return h;
}

/** The shadow lines of the context the request's question was asked with. */
function shadowLines(request: ChatRequest): string[] {
  const last = request.messages.at(-1);
  assert.equal(last?.role, "user");
  return (last.content ?? "").split("\n").filter((line) => /^(Reported state|Desired state|Pending delta)/.test(line));
}

/** Asks `q` under `id`, answers it, and returns the shadow lines its prompt carried. */
async function askedWith(h: DeviceHarness, dev: RecordingDevice, engine: ScriptedEngine, id: string, q: string) {
  const index = engine.calls.length;
  assert.deepEqual(await h.send(dev, { channel: "reason", frame: { id, q } }), { status: "committed" });
  const call = await engine.call(index);
  call.reply({ text: "Noted." });
  await waitFor(() => dev.frames("reason").find((f) => f.id === id && f.fin === true), `final reason frame ${id}`);
  return shadowLines(call.request);
}

test("a question's context shows the shadow as the events before it changed it", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("shadow-c1", "cbor");
  assert.deepEqual(await askedWith(h, dev, engine, "q1", "How is it?"), [
    "Reported state (v0): {}",
    "Desired state (v0): {}",
    "Pending delta: {}",
  ]);
  await h.send(dev, { channel: "state", frame: { v: 0, s: { temp: 21 } } });
  assert.deepEqual(await askedWith(h, dev, engine, "q2", "And now?"), [
    'Reported state (v1): {"temp":21}',
    "Desired state (v0): {}",
    "Pending delta: {}",
  ]);
  await h.call("shadow-c1", "setDesired", { temp: 19 });
  assert.deepEqual(await askedWith(h, dev, engine, "q3", "And now?"), [
    'Reported state (v1): {"temp":21}',
    'Desired state (v1): {"temp":19}',
    'Pending delta: {"temp":19}',
  ]);
  // The same shadow for the next question: nothing changed in between.
  assert.deepEqual(await askedWith(h, dev, engine, "q4", "Still?"), [
    'Reported state (v1): {"temp":21}',
    'Desired state (v1): {"temp":19}',
    'Pending delta: {"temp":19}',
  ]);
  await h.send(dev, { channel: "state", frame: { v: 1, s: { temp: 19 } } });
  assert.deepEqual(await askedWith(h, dev, engine, "q5", "And now?"), [
    'Reported state (v2): {"temp":19}',
    'Desired state (v1): {"temp":19}',
    "Pending delta: {}",
  ]);
});

test("a question's context shows a shadow change its own event made before it", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("shadow-c2", "cbor");
  await askedWith(h, dev, engine, "q1", "How is it?");
  assert.deepEqual(await askedWith(h, dev, engine, "q2", "Switch [mode=eco]"), [
    "Reported state (v0): {}",
    'Desired state (v1): {"mode":"eco"}',
    'Pending delta: {"mode":"eco"}',
  ]);
});

test("a question's context never shows a shadow change an event rolled back", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("shadow-c3", "cbor");
  await askedWith(h, dev, engine, "q1", "How is it?");
  // The event changed the desired state and asked with it, then failed: both are undone.
  const failed = await h.send(dev, { channel: "reason", frame: { id: "q2", q: "Switch [mode=eco] [fail]" } });
  assert.equal(failed.status, "failed");
  assert.deepEqual(shadowLines(engine.calls[1].request)[1], 'Desired state (v1): {"mode":"eco"}');
  assert.equal(engine.calls[1].aborted, true);
  assert.deepEqual(await askedWith(h, dev, engine, "q3", "How is it now?"), [
    "Reported state (v0): {}",
    "Desired state (v0): {}",
    "Pending delta: {}",
  ]);
  // The same version again, with other content: what the rolled-back event saw is not taken for it.
  await h.call("shadow-c3", "setDesired", { mode: "off" });
  assert.deepEqual(await askedWith(h, dev, engine, "q4", "And now?"), [
    "Reported state (v0): {}",
    'Desired state (v1): {"mode":"off"}',
    'Pending delta: {"mode":"off"}',
  ]);
});
