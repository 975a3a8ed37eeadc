/**
 * A turn's own tool outputs have a budget: each output is cut to `maxToolOutputChars` and all of a turn's outputs
 * together to `maxTurnToolOutputChars`, with a note saying what was cut, so a turn whose tools return large outputs
 * over several rounds cannot outgrow the engine's context window.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { ConversationEntry } from "../../agents/device/index.ts";
import { resolveDeviceAgentOptions } from "../../agents/device/options.ts";
import { fitToolOutput } from "../../agents/device/reasoning/tool-output-budget.ts";
import { BridgeError } from "../../errors/bridge-error.ts";
import { DeviceHarness, waitFor } from "./device-harness.ts";
import { scriptedEngine } from "./scripted-engine.ts";

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

describe("fitToolOutput", () => {
  const budget = { maxOutputChars: 1000, maxTurnChars: 1500 };

  test("an output that fits both bounds is kept as it is", () => {
    assert.deepEqual(fitToolOutput("x".repeat(1000), 500, budget), { text: "x".repeat(1000), compacted: false });
  });

  test("an output is cut to maxOutputChars, head and tail kept with a note", () => {
    const { text, compacted } = fitToolOutput(`${"a".repeat(3000)}${"z".repeat(1000)}`, 0, budget);
    assert.equal(compacted, true);
    assert.ok(text.length <= 1000, `${text.length} characters`);
    assert.match(text, /^a+\n\[compacted: the tool output was 4000 characters; \d+ from the middle were cut\]\nz+$/);
  });

  test("an output is cut to what is left of the turn's budget", () => {
    const { text } = fitToolOutput("x".repeat(3000), 1100, budget);
    assert.ok(text.length <= 400 && text.length > 300, `${text.length} characters`);
  });

  test("once less than a useful share of the budget is left, the output is left out with a note", () => {
    const { text, compacted } = fitToolOutput("x".repeat(3000), 1400, budget);
    assert.equal(compacted, true);
    assert.equal(
      text,
      "[left out: the tool output was 3000 characters, and this question's tool outputs have used their budget of 1500]",
    );
    // A short output still goes in whole while it fits what is left.
    assert.equal(fitToolOutput('{"ok":true}', 1400, budget).text, '{"ok":true}');
  });
});

describe("options", () => {
  test("maxTurnToolOutputChars defaults to 8000 and is validated, naming the field", () => {
    assert.equal(resolveDeviceAgentOptions().maxTurnToolOutputChars, 8000);
    assert.equal(resolveDeviceAgentOptions({ maxTurnToolOutputChars: 20_000 }).maxTurnToolOutputChars, 20_000);
    for (const bad of [0, 255, 1.5, "8000", null]) {
      assert.throws(
        () => resolveDeviceAgentOptions({ maxTurnToolOutputChars: bad }),
        (err) =>
          err instanceof BridgeError &&
          err.code === "BRIDGE_ERR_CONFIG" &&
          err.details.field === "maxTurnToolOutputChars",
        String(bad),
      );
    }
  });

  test("without its own value, the turn's budget is at least one output's bound (a config valid before it stays so)", () => {
    const raised = resolveDeviceAgentOptions({ maxToolOutputChars: 9000 });
    assert.equal(raised.maxTurnToolOutputChars, 9000);
    // Set in a lower layer (the class's deviceOptions), raised in a higher one (the bridge config): still one output.
    assert.equal(
      resolveDeviceAgentOptions({ maxToolOutputChars: 500 }, { maxToolOutputChars: 12_000 }).maxTurnToolOutputChars,
      12_000,
    );
    assert.equal(resolveDeviceAgentOptions({ maxToolOutputChars: 1000 }).maxTurnToolOutputChars, 8000);
  });

  test("a turn's budget set below one output's bound is a config error", () => {
    assert.throws(
      () => resolveDeviceAgentOptions({ maxToolOutputChars: 9000, maxTurnToolOutputChars: 8000 }),
      (err) =>
        err instanceof BridgeError &&
        err.details.field === "maxTurnToolOutputChars" &&
        /at least maxToolOutputChars/.test(err.message),
    );
  });
});

test("tool outputs over several rounds stay within the turn's budget, each cut with a note", async () => {
  const engine = scriptedEngine();
  const h = new DeviceHarness({
    engine,
    agentConfig: { DeviceAgent: { maxToolOutputChars: 1000, maxTurnToolOutputChars: 1500 } },
  });
  harnesses.push(h);
  const dev = await h.open("budget-t1", "cbor");
  // 60 readings: read_telemetry returns 50 rows, some 4000 characters of JSON.
  const readings = Object.fromEntries(Array.from({ length: 60 }, (_v, i) => [`metric${i}`, i + 0.5]));
  await h.send(dev, { channel: "telemetry", frame: { r: readings } });
  await h.send(dev, { channel: "reason", frame: { id: "big", q: "What did the device report?" } });
  for (let round = 0; round < 3; round++) (await engine.call(round)).reply({ tool: "read_telemetry" });
  const last = await engine.call(3);
  const outputs = last.request.messages.flatMap((m) => (m.role === "tool" ? [m.content] : []));
  assert.equal(outputs.length, 3);
  assert.ok(outputs[0].length <= 1000 && outputs[0].length > 900, `first ${outputs[0].length}`);
  assert.match(outputs[0], /\[compacted: the tool output was \d+ characters; \d+ from the middle were cut\]/);
  assert.ok(outputs[0].length + outputs[1].length <= 1500, `first two ${outputs[0].length + outputs[1].length}`);
  assert.match(outputs[1], /\[compacted: the tool output was \d+ characters/);
  assert.match(outputs[2], /^\[left out: the tool output was \d+ characters, .* budget of 1500\]$/);
  last.reply({ text: "Sixty readings." });
  await waitFor(() => dev.frames("reason").find((f) => f.id === "big" && f.fin === true), "final frame");
  const stored = await h.call<ConversationEntry[]>("budget-t1", "getConversation", {});
  const tools = stored.filter((m) => m.role === "tool");
  assert.deepEqual(
    tools.map((m) => m.content),
    outputs,
  );
  assert.ok(
    tools.every((m) => m.compacted),
    "cut outputs are marked compacted",
  );
});
