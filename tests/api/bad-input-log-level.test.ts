/**
 * An operator's input that the agent refuses as invalid is the client's mistake, answered with a 4xx: it is logged at
 * debug without a stack, not as a server error. A real fault inside the agent stays an error with its stack.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Value } from "../../codecs/frames.ts";
import type { ReasoningEngine } from "../../agents/engine.ts";
import { DeviceAgent } from "../../agents/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";

/** A device agent with a bug: queuing a command throws a plain Error. */
class FaultyDevice extends DeviceAgent {
  override sendCommand(_input: Value): never {
    throw new Error("bug in sendCommand");
  }
}

/** A device agent whose own method asks the engine, as a class that summarises its telemetry would. */
class SummarizingDevice extends DeviceAgent {
  async summarize(): Promise<string> {
    const engine = this.env.engine;
    if (engine === undefined) throw new Error("no engine");
    let text = "";
    for await (const event of engine.stream({ messages: [{ role: "user", content: "summarize" }] }, { agentId: "x" })) {
      if (event.type === "text") text += event.text;
    }
    return text;
  }
}

/** An engine that refuses every request as a wrong API key does (the engine client's BRIDGE_ERR_ENGINE_BAD_REQUEST). */
const refusingEngine: ReasoningEngine = {
  stream() {
    throw new BridgeError("BRIDGE_ERR_ENGINE_BAD_REQUEST", "the engine answered 401: invalid API key", { status: 401 });
  },
};

type LogLine = { level: number; msg: string; err?: { stack?: string }; code?: string; event?: string };

describe("log level of refused operator input", () => {
  let f: ApiFixture;
  const { logger, lines } = capturingLogger<LogLine>("trace");
  before(async () => {
    f = await createApiFixture({
      logger,
      engine: refusingEngine,
      agentClasses: [
        { pattern: "faulty-*", agentClass: FaultyDevice },
        { pattern: "summ-*", agentClass: SummarizingDevice },
      ],
    });
    await f.provision("dev-1");
    await f.provision("faulty-1");
    await f.provision("summ-1");
  });
  after(() => f.close());

  const ERROR = 50;
  const DEBUG = 20;

  async function refusedLines(request: () => Promise<{ statusCode: number; body: string }>): Promise<LogLine[]> {
    lines.length = 0;
    const res = await request();
    assert.equal(res.statusCode, 400, res.body);
    return [...lines];
  }

  test("an invalid command name is a debug line without a stack, not an error", async () => {
    const logged = await refusedLines(() =>
      f.app.inject({
        method: "POST",
        url: "/api/devices/dev-1/commands",
        headers: AUTH,
        payload: { name: "re boot!" },
      }),
    );
    assert.deepEqual(
      logged.filter((l) => l.level >= ERROR),
      [],
    );
    const refused = logged.filter((l) => l.code === "BRIDGE_ERR_INVALID_ARGUMENT");
    assert.equal(refused.length, 1);
    assert.equal(refused[0]?.level, DEBUG);
    assert.equal(refused[0]?.err, undefined, "no error object, so no stack");
    assert.match(JSON.stringify(refused[0]), /name must be/);
  });

  test("an expectedVersion no version can be (1e300) is refused by the API's schema: the agent logs nothing", async () => {
    const logged = await refusedLines(() =>
      f.app.inject({
        method: "PUT",
        url: "/api/devices/dev-1/shadow/desired",
        headers: { ...AUTH, "content-type": "application/json" },
        payload: '{"state":{"led":"on"},"expectedVersion":1e300}',
      }),
    );
    assert.deepEqual(logged, [], "the agent never ran (integer-bounds.test.ts)");
  });

  test("a fault inside the agent is still an error with its stack", async () => {
    lines.length = 0;
    const res = await f.app.inject({
      method: "POST",
      url: "/api/devices/faulty-1/commands",
      headers: AUTH,
      payload: { name: "reboot" },
    });
    assert.equal(res.statusCode, 500, res.body);
    const errors = lines.filter((l) => l.level === ERROR);
    assert.equal(errors.length, 1);
    assert.match(errors[0]?.err?.stack ?? "", /bug in sendCommand/);
  });

  test("the engine refusing an agent's own request (a wrong API key) is a fault: an error line with its stack", async () => {
    lines.length = 0;
    const result = await f.runtime.call("summ-1", "summarize", []);
    assert.equal(result.ok, false);
    const refused = lines.filter((l) => JSON.stringify(l).includes("invalid API key"));
    assert.equal(refused.length, 1, JSON.stringify(lines));
    assert.equal(refused[0]?.level, ERROR);
    assert.match(refused[0]?.err?.stack ?? "", /invalid API key/);
  });
});
