/**
 * A 503 the bridge answers on purpose (the runtime is shutting down, a device's agent is waiting out a start backoff)
 * is no server fault: the API logs it as one warn line with its code and no stack. A real fault (a 500) stays an error
 * line with its stack.
 */
import assert from "node:assert/strict";
import { after, afterEach, describe, test } from "node:test";
import type { Value } from "../../codecs/frames.ts";
import { DeviceAgent } from "../../agents/index.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";
import { START_TIMEOUT_MS, stuckStartAgent } from "./stuck-start-agent.ts";

type LogLine = { level: number; msg: string; code?: string; err?: { stack?: string }; retryAfterMs?: number };

const WARN = 40;
const ERROR = 50;
const { agentClass: StuckDevice, stuck } = stuckStartAgent();

/** A device agent with a bug: queuing a command throws a plain Error. */
class FaultyDevice extends DeviceAgent {
  override sendCommand(_input: Value): never {
    throw new Error("bug in sendCommand");
  }
}

/** The API's own lines about a failed request (the runtime logs elsewhere: the fixture keeps it silent). */
function apiLines(lines: LogLine[]): LogLine[] {
  return lines.filter((l) => l.level >= WARN);
}

describe("log level of the API's 5xx answers", () => {
  let f: ApiFixture | undefined;
  afterEach(async () => {
    stuck.hanging = false;
    const closing = f?.close();
    await f?.clock.advance(START_TIMEOUT_MS);
    await closing;
    f = undefined;
  });
  after(() => {
    stuck.hanging = true;
  });

  test("a 503 BRIDGE_ERR_RUNTIME_CLOSED during shutdown is one warn line without a stack", async () => {
    const { logger, lines } = capturingLogger<LogLine>("trace");
    f = await createApiFixture({ apiLogger: logger });
    await f.provision("dev-1");
    await f.runtime.shutdown();
    const res = await f.app.inject({ method: "GET", url: "/api/devices/dev-1/shadow", headers: AUTH });
    assert.equal(res.statusCode, 503, res.body);
    const logged = apiLines(lines);
    assert.equal(logged.length, 1, JSON.stringify(logged));
    assert.equal(logged[0]?.level, WARN);
    assert.equal(logged[0]?.code, "BRIDGE_ERR_RUNTIME_CLOSED");
    assert.equal(logged[0]?.err, undefined, "no error object, so no stack");
  });

  test("a 503 BRIDGE_ERR_AGENT_START_TIMEOUT is one warn line with the wait, without a stack", async () => {
    stuck.hanging = true;
    const { logger, lines } = capturingLogger<LogLine>("trace");
    f = await createApiFixture({
      apiLogger: logger,
      agentClasses: [{ pattern: "stuck-*", agentClass: StuckDevice }],
    });
    await f.provision("stuck-1");
    const shadow = { method: "GET" as const, url: "/api/devices/stuck-1/shadow", headers: AUTH };
    const waiting = f.app.inject(shadow);
    await f.clock.advance(START_TIMEOUT_MS);
    await f.clock.advance(START_TIMEOUT_MS);
    const res = await waiting;
    assert.equal(res.statusCode, 503, res.body);
    const logged = apiLines(lines);
    assert.equal(logged.length, 1, JSON.stringify(logged));
    assert.equal(logged[0]?.level, WARN);
    assert.equal(logged[0]?.code, "BRIDGE_ERR_AGENT_START_TIMEOUT");
    assert.equal(logged[0]?.err, undefined, "no error object, so no stack");
    assert.equal(typeof logged[0]?.retryAfterMs, "number");
  });

  test("a fault inside the agent (500) is still an error line with its stack", async () => {
    const { logger, lines } = capturingLogger<LogLine>("trace");
    f = await createApiFixture({
      apiLogger: logger,
      agentClasses: [{ pattern: "faulty-*", agentClass: FaultyDevice }],
    });
    await f.provision("faulty-1");
    const res = await f.app.inject({
      method: "POST",
      url: "/api/devices/faulty-1/commands",
      headers: AUTH,
      payload: { name: "reboot" },
    });
    assert.equal(res.statusCode, 500, res.body);
    const logged = apiLines(lines);
    assert.equal(logged.length, 1, JSON.stringify(logged));
    assert.equal(logged[0]?.level, ERROR);
    assert.ok((logged[0]?.err?.stack ?? "").length > 0, "the stack is logged");
  });
});
