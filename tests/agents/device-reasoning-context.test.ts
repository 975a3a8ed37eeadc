/**
 * A device's conversation never outgrows the engine's context window for good: the history in a prompt is bounded by
 * `maxHistoryChars` (whole turns, oldest first), and a round the engine refuses as too long for its context window
 * is asked once more without history. Against the engine simulator with a small `maxModelLen`, over loopback.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ReasonStreamFrame } from "../../codecs/frames.ts";
import { budgetHistory, promptTurnChars } from "../../agents/device/reasoning/history-budget.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import type { EngineClient } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import type { EngineSimulator } from "../../engine-client/sim/index.ts";
import { DeviceHarness, type RecordingDevice, waitFor } from "./device-harness.ts";

/** The context window of the simulated engine, in tokens (the simulator counts 4 characters a token). */
const MAX_MODEL_LEN = 1200;

let sim: EngineSimulator;
let engine: EngineClient;
const harnesses: DeviceHarness[] = [];

before(async () => {
  sim = await startEngineSimulator({ timeScale: 0, maxModelLen: MAX_MODEL_LEN });
  engine = createEngineClient({ urls: [sim.url] });
});

after(async () => {
  for (const h of harnesses) await h.dispose();
  await engine.close();
  await sim.close();
});

function harness(config: Record<string, unknown> = {}): DeviceHarness {
  const h = new DeviceHarness({ engine, agentConfig: { DeviceAgent: config } });
  harnesses.push(h);
  return h;
}

/** A question of about `chars` characters that names no tool (the simulator would call it). */
function longQuestion(n: number, chars: number): string {
  const words = `Question ${n}: how did the room behave over the last hours, and what should happen next? `;
  return words.repeat(Math.ceil(chars / words.length)).slice(0, chars);
}

async function ask(h: DeviceHarness, dev: RecordingDevice, id: string, q: string): Promise<ReasonStreamFrame> {
  await h.send(dev, { channel: "reason", frame: { id, q, max: 24 } });
  return waitFor(() => dev.frames("reason").find((f) => f.id === id && f.fin === true), `final reason frame ${id}`);
}

/** The user messages of a request the simulator received (the last is the current question). */
function userMessages(record: { body: unknown } | undefined): string[] {
  const body = record?.body as { messages: Array<{ role: string; content: string }> };
  return body.messages.filter((m) => m.role === "user").map((m) => m.content);
}

describe("history budget", () => {
  /** What the prompt puts between a question and its context snapshot. */
  const SEPARATOR = "\n\n---\n";
  /** A finished turn of exactly `chars` characters as a prompt renders it (question, separator, answer "a"). */
  const turn = (chars: number, n: number) => ({
    context: "",
    messages: [
      {
        id: 2 * n,
        turnId: `turn-${n}`,
        role: "user" as const,
        content: "q".repeat(chars - SEPARATOR.length - 1),
        compacted: false,
        createdAt: 0,
      },
      { id: 2 * n + 1, turnId: `turn-${n}`, role: "assistant" as const, content: "a", compacted: false, createdAt: 0 },
    ],
  });
  const sizes = (turns: ReturnType<typeof turn>[]) => turns.map((t) => t.messages[0].turnId);

  test("a turn counts its rendered messages, tool calls included", () => {
    const t = turn(10, 1);
    assert.equal(promptTurnChars(t), 10);
    // The question carries its context snapshot after the separator, as the prompt shows it.
    assert.equal(promptTurnChars({ ...t, context: "ctx" }), 13);
    const withTool = {
      context: "",
      messages: [
        ...t.messages,
        {
          id: 9,
          turnId: "turn-1",
          role: "assistant" as const,
          content: null,
          toolCalls: [{ id: "c", name: "read_shadow", arguments: "{}" }],
          compacted: false,
          createdAt: 0,
        },
      ],
    };
    assert.equal(promptTurnChars(withTool), 10 + "read_shadow{}".length);
  });

  test("whole turns within the budget are kept, and over it the oldest go first until a quarter of it is left", () => {
    const turns = [1, 2, 3, 4, 5].map((n) => turn(100, n));
    assert.deepEqual(sizes(budgetHistory(turns.slice(0, 4), 400)), ["turn-1", "turn-2", "turn-3", "turn-4"]);
    // The fifth turn would make 500: the oldest go until the newest ones fit in 100 characters.
    assert.deepEqual(sizes(budgetHistory(turns, 400)), ["turn-5"]);
    assert.deepEqual(sizes(budgetHistory(turns, 1000)), sizes(turns));
    assert.deepEqual(budgetHistory(turns, 0), [], "a budget of 0 carries no history");
    // A newest turn larger than the budget goes too; the next one starts again.
    assert.deepEqual(sizes(budgetHistory([turn(100, 1), turn(500, 2)], 400)), []);
    assert.deepEqual(sizes(budgetHistory([turn(100, 1), turn(500, 2), turn(50, 3)], 400)), ["turn-3"]);
  });

  test("between two jumps the history only grows at its end, so consecutive prompts share their prefix", () => {
    const turns = Array.from({ length: 40 }, (_v, i) => turn(40 + ((i * 37) % 90), i + 1));
    let previous: string[] = [];
    let jumps = 0;
    for (let last = 1; last <= turns.length; last++) {
      const kept = sizes(budgetHistory(turns.slice(0, last), 500));
      const chars = budgetHistory(turns.slice(0, last), 500).reduce((sum, t) => sum + promptTurnChars(t), 0);
      assert.ok(chars <= 500, `${chars} characters kept`);
      assert.equal(kept.at(-1), `turn-${last}`, "the newest turn fits and is kept");
      const appended = kept.length === previous.length + 1 && previous.every((id, i) => id === kept[i]);
      if (!appended) {
        jumps++;
        assert.ok(chars <= 125 || kept.length === 1, "a jump keeps a quarter of the budget");
      }
      previous = kept;
    }
    assert.ok(jumps > 2 && jumps < 15, `${jumps} jumps`);
  });
});

test("with a history budget that fits the engine's window, many long questions are answered and none is refused", async () => {
  const h = harness({ maxHistoryChars: 2000 });
  sim.reset();
  const dev = await h.open("ctx-budget-1", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  for (let i = 0; i < 12; i++) {
    const fin = await ask(h, dev, `q${i}`, longQuestion(i, 900));
    assert.notEqual(fin.fr, "error", `question ${i} answered: ${JSON.stringify(dev.frames("error"))}`);
  }
  const records = sim.requests();
  assert.equal(records.length, 12, "one engine request per question");
  assert.ok(records.every((r) => r.status === 200));
  // The newest finished turns are the ones kept, whole: the last prompt ends with q10 before q11 (and holds q9 when
  // two fit in the budget).
  const users = userMessages(records.at(-1));
  assert.ok(users.length >= 2, `${users.length} user messages`);
  assert.match(users.at(-2) ?? "", /^Question 10: /);
  assert.match(users.at(-1) ?? "", /^Question 11: /);
});

test("a device asking many long questions of an engine with a small context window keeps getting answers", async () => {
  const h = harness();
  sim.reset();
  const dev = await h.open("ctx-long-1", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  for (let i = 0; i < 12; i++) {
    const fin = await ask(h, dev, `q${i}`, longQuestion(i, 900));
    assert.notEqual(fin.fr, "error", `question ${i} answered: ${JSON.stringify(dev.frames("error"))}`);
  }
  assert.deepEqual(dev.frames("error"), []);
  // The default budget is larger than this engine's window: some prompts are refused and asked again without
  // history, and the history of the next questions starts at the one answered so; not every question is refused.
  const records = sim.requests();
  const refused = records.filter((r) => r.status === 400);
  assert.ok(refused.length > 0 && refused.length <= 6, `${refused.length} refusals in ${records.length} requests`);
  assert.equal(records.length, 12 + refused.length, "each refusal was asked once more");
  for (const [i, r] of records.entries()) {
    if (r.status !== 400) continue;
    assert.equal(userMessages(records[i + 1]).length, 1, "the retry carries no history");
  }
});

test("a question too long even without history is asked twice, then fails with BAD_REQUEST and fr error", async () => {
  const h = harness();
  const dev = await h.open("ctx-twice-2", "cbor");
  assert.notEqual((await ask(h, dev, "short", "How warm is it?")).fr, "error");
  sim.reset();
  const fin = await ask(h, dev, "huge", longQuestion(1, 4000));
  assert.equal(fin.fr, "error");
  const records = sim.requests();
  assert.deepEqual(
    records.map((r) => [r.status, userMessages(r).length]),
    [
      [400, 2],
      [400, 1],
    ],
    "once with history, once without, and no more",
  );
  const [error] = dev.frames("error");
  assert.equal(error.code, "BRIDGE_ERR_ENGINE_BAD_REQUEST");
  assert.equal(error.id, "huge");
  assert.match(error.msg, /even without history: .*maximum context length is 1200 tokens/);
  // The device can ask again, and the failed turn is in nobody's history.
  assert.notEqual((await ask(h, dev, "after", "And now?")).fr, "error");
  assert.equal(userMessages(sim.requests().at(-1)).length, 2);
});

test("a prompt refused without any history in it is not asked again", async () => {
  const h = harness();
  const dev = await h.open("ctx-first-3", "cbor");
  sim.reset();
  const fin = await ask(h, dev, "huge", longQuestion(1, 4000));
  assert.equal(fin.fr, "error");
  assert.equal(sim.requests().length, 1);
  const [error] = dev.frames("error");
  assert.equal(error.code, "BRIDGE_ERR_ENGINE_BAD_REQUEST");
  assert.doesNotMatch(error.msg, /without history/);
});

test("another 400 of the engine fails the turn at once, with no retry", async () => {
  const h = harness();
  const dev = await h.open("ctx-other-4", "cbor");
  assert.notEqual((await ask(h, dev, "short", "How warm is it?")).fr, "error");
  sim.reset();
  sim.setFaults({ failRequests: { status: 400, count: 1 } });
  try {
    const fin = await ask(h, dev, "bad", "Is the window open?");
    assert.equal(fin.fr, "error");
    assert.equal(sim.requests().length, 1, "refused once, not asked again");
    assert.deepEqual(
      dev.frames("error").map((e) => e.code),
      ["BRIDGE_ERR_ENGINE_BAD_REQUEST"],
    );
  } finally {
    sim.clearFaults();
  }
});

test("after a retry without history, the turn's tool rounds stay without it, across an approval and a restart", async () => {
  const h = harness();
  let dev = await h.open("ctx-tool-5", "cbor");
  // Fits alone; with the first question and its answer in front of it, it does not.
  assert.notEqual((await ask(h, dev, "first", longQuestion(0, 2000))).fr, "error");
  sim.reset();
  await h.send(dev, {
    channel: "reason",
    frame: { id: "act", q: `${longQuestion(1, 1000)} Please send_command.`, max: 24 },
  });
  const [approval] = await waitFor(() => {
    const list = h.runtime.directory.list("approval").filter((a) => a.agentId === "ctx-tool-5");
    return list.length > 0 ? list : undefined;
  }, "a pending approval");
  assert.deepEqual(
    sim.requests().map((r) => [r.status, userMessages(r).length]),
    [
      [400, 2],
      [200, 1],
    ],
  );
  await h.restart();
  dev = await h.open("ctx-tool-5", "cbor");
  await h.call("ctx-tool-5", "resolveApproval", approval.key, true, "ok");
  const fin = await waitFor(() => dev.frames("reason").find((f) => f.id === "act" && f.fin === true), "final act");
  assert.notEqual(fin.fr, "error");
  const resumed = sim.requests().at(-1);
  assert.equal(resumed?.status, 200);
  assert.equal(userMessages(resumed).length, 1, "the round after the approval carries no history either");
  // The next question's history starts at the turn answered without history.
  const before = sim.requests().length;
  assert.notEqual((await ask(h, dev, "next", "Done?")).fr, "error");
  assert.deepEqual(
    sim
      .requests()
      .slice(before)
      .map((r) => r.status),
    [200],
  );
  const users = userMessages(sim.requests().at(-1));
  assert.equal(users.length, 2);
  assert.match(users[0], /^Question 1: /);
});
