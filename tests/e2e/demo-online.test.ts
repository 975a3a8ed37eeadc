/** The demo's online line counts devices online now, not online events: a reconnect must not read "5/4". */
import assert from "node:assert/strict";
import { test } from "node:test";
import { demoOnlineLines } from "../../app/demo-online.ts";

test("a device that reconnects is counted once, and a device offline is not counted", () => {
  const lines = demoOnlineLines(2);
  assert.equal(lines.online("a"), "device online (1/2): a");
  assert.equal(lines.online("b"), "device online (2/2): b");
  lines.offline("a");
  assert.equal(lines.online("a"), "device back online (2/2): a");
  // An online event without an offline in between (a takeover twin, an event missed) still counts the device once.
  assert.equal(lines.online("a"), "device back online (2/2): a");
  lines.offline("b");
  lines.offline("b");
  assert.equal(lines.online("b"), "device back online (2/2): b");
});
