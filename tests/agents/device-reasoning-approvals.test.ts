/**
 * Approvals and request ids over a device's lifetime: an approval id names one action forever (an operator's retried
 * or stale decision must never land on a later action), and a request id stays taken while its turn waits for an
 * operator, since that turn will still stream under it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ReasonStreamFrame } from "../../codecs/frames.ts";
import type { Approval, ResolveApprovalResult } from "../../agents/device/index.ts";
import { DeviceHarness, type RecordingDevice, useSimulatedEngine, waitFor } from "./device-harness.ts";

const env = useSimulatedEngine();

function harness(config: Record<string, unknown> = {}): DeviceHarness {
  const h = new DeviceHarness({ engine: env.engine, agentConfig: { DeviceAgent: config } });
  env.harnesses.push(h);
  return h;
}

function finalFrame(dev: RecordingDevice, id: string): Promise<ReasonStreamFrame> {
  return waitFor(() => dev.frames("reason").find((f) => f.id === id && f.fin === true), `final reason frame ${id}`);
}

/** Waits for the device's one pending approval in the fleet directory and returns its id. */
function pendingApprovalId(h: DeviceHarness, agentId: string): Promise<string> {
  return waitFor(
    () => h.runtime.directory.list("approval").find((entry) => entry.agentId === agentId)?.key,
    `a pending approval of ${agentId}`,
  );
}

test("an approval id is never given again after the turn that held it was pruned", async () => {
  const h = harness({ conversationMaxTurns: 1 });
  const dev = await h.open("ids-a1", "cbor");
  await h.send(dev, { channel: "reason", frame: { id: "q1", q: "Please send_command to open the door" } });
  const first = await pendingApprovalId(h, "ids-a1");
  await h.call("ids-a1", "resolveApproval", first, true);
  await finalFrame(dev, "q1");
  // A second finished turn prunes the first one, with its resolved approval.
  await h.send(dev, { channel: "reason", frame: { id: "q2", q: "How are you?" } });
  await finalFrame(dev, "q2");
  assert.deepEqual(await h.call<Approval[]>("ids-a1", "listApprovals", {}), []);
  await h.send(dev, { channel: "reason", frame: { id: "q3", q: "Please send_command to close the door" } });
  const second = await pendingApprovalId(h, "ids-a1");
  assert.notEqual(second, first);
  // An operator's retried decision on the old approval must not decide the new action.
  const stale = await h.call<ResolveApprovalResult>("ids-a1", "resolveApproval", first, true);
  assert.equal(stale.status, "not_found");
  const [pending] = await h.call<Approval[]>("ids-a1", "listApprovals", { status: "pending" });
  assert.equal(pending.id, second);
});

test("a request id is refused as busy while its turn waits for an approval", async () => {
  const h = harness();
  const dev = await h.open("ids-a2", "cbor");
  await h.send(dev, { channel: "reason", frame: { id: "act", q: "Please send_command to open the door" } });
  const approvalId = await pendingApprovalId(h, "ids-a2");
  await h.send(dev, { channel: "reason", frame: { id: "act", q: "How are you?" } });
  assert.deepEqual(
    dev.frames("error").map((e) => [e.code, e.id]),
    [["BRIDGE_ERR_REASON_BUSY", "act"]],
  );
  // Another id is free: a turn parked for an operator does not block the device.
  await h.send(dev, { channel: "reason", frame: { id: "other", q: "How are you?" } });
  await finalFrame(dev, "other");
  await h.call("ids-a2", "resolveApproval", approvalId, true);
  await finalFrame(dev, "act");
  assert.equal(dev.frames("reason").filter((f) => f.id === "act" && f.fin === true).length, 1);
});

test("the question an approval lists and an operator's reason are cut before an emoji, never inside it", async () => {
  const h = harness();
  const dev = await h.open("ids-a3", "cbor");
  // An emoji (two UTF-16 code units) across the 200th unit, where the directory's question is cut.
  const head = "Please send_command to open the door. ".padEnd(199, "x");
  await h.send(dev, { channel: "reason", frame: { id: "act", q: `${head}\u{1F6AA} now` } });
  const approvalId = await pendingApprovalId(h, "ids-a3");
  const entry = h.runtime.directory.list("approval").find((e) => e.key === approvalId);
  const listed = (entry?.value as { question?: unknown } | undefined)?.question;
  assert.equal(listed, head, "cut before the emoji, not between its halves");
  // The operator's reason is kept to 500 units the same way.
  const because = `${"r".repeat(499)}\u{1F6AA}`;
  const result = await h.call<ResolveApprovalResult>("ids-a3", "resolveApproval", approvalId, false, because);
  assert.equal(result.status, "ok");
  assert.equal(result.status === "ok" ? result.approval.reason : undefined, "r".repeat(499));
  await finalFrame(dev, "act");
});
