/**
 * The warnings of refused CONNECTs keyed by device: a flood of made-up client ids fills at most 1024 keys per kind
 * within an interval, and the rest share one line per kind, which names what its keys are (devices, not the source
 * addresses of the PROXY protocol refusals that share the throttling).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BrokerErrorCode } from "../../broker/errors.ts";
import { ConnectRefusalWarnings, OPEN_REFUSED_WARNING } from "../../broker/hooks/connect-refusal-warnings.ts";
import { THROTTLED_WARNING_INTERVAL_MS } from "../../broker/throttled-warning.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { MemoryLogger } from "./helpers.ts";

const START_TIMEOUT = "BRIDGE_ERR_AGENT_START_TIMEOUT";
const UNKNOWN = {
  status: "refused",
  returnCode: 4,
  reason: "unknown-device",
  code: BrokerErrorCode.authUnknownDevice,
  message: "unknown device",
} as const;

test("past 1024 devices within an interval, further devices share one line per kind that says they are devices", () => {
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  const warnings = new ConnectRefusalWarnings(logger, clock);
  for (let i = 0; i < 1500; i++) {
    warnings.openRefused(`made-up-${i}`, START_TIMEOUT);
    warnings.authRefused(UNKNOWN, `made-up-${i}`, "10.0.0.9");
  }
  const byMsg = (msg: string) => logger.lines.filter((l) => l.msg === msg);
  assert.equal(byMsg(OPEN_REFUSED_WARNING).length, 1024);
  assert.equal(byMsg("device refused: unknown device").length, 1024);
  assert.deepEqual(
    byMsg(`${OPEN_REFUSED_WARNING} (from too many devices to log each)`).map((l) => l.obj),
    [{ device: "made-up-1024", code: START_TIMEOUT, count: 1 }],
  );
  assert.equal(byMsg("device refused: unknown device (from too many devices to log each)").length, 1);
  assert.equal(logger.lines.length, 2 * 1024 + 2, "nothing else: no line names addresses");

  // Once the interval passed, the keys held are let go: a device refused then has its own line again.
  clock.advanceSync(THROTTLED_WARNING_INTERVAL_MS);
  warnings.openRefused("made-up-later", START_TIMEOUT);
  assert.deepEqual(logger.lines.at(-1), {
    level: "warn",
    msg: OPEN_REFUSED_WARNING,
    obj: { device: "made-up-later", code: START_TIMEOUT, count: 1 },
  });
});
