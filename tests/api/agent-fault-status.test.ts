/**
 * A code that reads as a refusal but refuses nothing the operator sent is answered with a server-side status, its code
 * and message kept: the agent's own bad schedule is a 500, the engine refusing a request the agent built is a 502 (a
 * fault of the upstream service), and both are logged as faults. The operator's own bad input stays a 400.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Value } from "../../codecs/frames.ts";
import { AGENT_ERRORS, DeviceAgent } from "../../agents/index.ts";
import type { CommandRecord } from "../../agents/device/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";

/** Fails a command named after a fault the agent met for itself; queues any other. */
class SelfFaultingDevice extends DeviceAgent {
  override sendCommand(input: Value): CommandRecord {
    const name = (input as { name?: unknown }).name;
    if (name === "ask-engine") {
      throw new BridgeError("BRIDGE_ERR_ENGINE_BAD_REQUEST", "the engine answered 401: invalid API key");
    }
    if (name === "plan") throw new BridgeError(AGENT_ERRORS.SCHEDULE_INVALID, "schedule delay must be >= 0");
    return super.sendCommand(input);
  }
}

type LogLine = { level: number; msg: string };
type ErrorBody = { error: { code: string; message: string; field?: string } };

const ERROR = 50;

describe("statuses of refusals that are not the operator's input", () => {
  let f: ApiFixture;
  const { logger, lines } = capturingLogger<LogLine>("trace");
  before(async () => {
    f = await createApiFixture({
      apiLogger: logger,
      agentClasses: [{ pattern: "self-*", agentClass: SelfFaultingDevice }],
    });
    await f.provision("self-1");
  });
  after(() => f.close());

  async function command(name: string): Promise<{ status: number; body: ErrorBody; errors: number }> {
    lines.length = 0;
    const res = await f.app.inject({
      method: "POST",
      url: "/api/devices/self-1/commands",
      headers: AUTH,
      payload: { name },
    });
    return {
      status: res.statusCode,
      body: res.json() as ErrorBody,
      errors: lines.filter((l) => l.level >= ERROR).length,
    };
  }

  test("the engine refusing the agent's own request is a 502 with the engine's code and message", async () => {
    assert.deepEqual(await command("ask-engine"), {
      status: 502,
      body: {
        error: { code: "BRIDGE_ERR_ENGINE_BAD_REQUEST", message: "the engine answered 401: invalid API key" },
      },
      errors: 1,
    });
  });

  test("the agent's own invalid schedule is a 500 with its code and message", async () => {
    assert.deepEqual(await command("plan"), {
      status: 500,
      body: { error: { code: AGENT_ERRORS.SCHEDULE_INVALID, message: "schedule delay must be >= 0" } },
      errors: 1,
    });
  });

  test("the operator's own invalid input is still a 400", async () => {
    const answer = await command("not a name");
    assert.equal(answer.status, 400, JSON.stringify(answer.body));
    assert.equal(answer.errors, 0);
  });
});
