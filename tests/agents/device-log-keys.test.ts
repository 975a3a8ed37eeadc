/**
 * An agent's logger already names the agent (`agent` binding of its child logger); a line that names it again wrote
 * the key twice in one JSON object (`"agent":"x","agent":"x"`), which JSON.parse hides and stricter log shippers refuse.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { CommandRecord } from "../../agents/device/index.ts";
import { capturingRawLogger } from "../support/capturing-logger.ts";
import { DeviceHarness } from "./device-harness.ts";

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

/** The names of an object's top-level keys as written in the raw JSON line, duplicates kept. */
function rawTopLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let inString = false;
  let start = -1;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') {
        inString = false;
        if (depth === 1 && line[i + 1] === ":" && start >= 0) keys.push(line.slice(start + 1, i));
        start = -1;
      }
      continue;
    }
    if (c === '"') {
      inString = true;
      start = i;
    } else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
  }
  return keys;
}

test("the DeviceAgent's own log lines name the agent once", async () => {
  const { logger, lines } = capturingRawLogger("debug");
  const h = new DeviceHarness({ logger });
  harnesses.push(h);
  const dev = await h.open("door-1", "json");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  const cmd = await h.call<CommandRecord>("door-1", "sendCommand", { name: "unlock" });
  await h.send(dev, { channel: "ack", frame: { id: cmd.id, ok: true } });
  await h.send(dev, { channel: "ack", frame: { id: cmd.id, ok: true } });

  const own = lines.filter((l) => /"msg":"(command finished|ack ignored)"/.test(l));
  assert.equal(own.length, 2, lines.join(""));
  for (const line of own) {
    const keys = rawTopLevelKeys(line.trim());
    assert.deepEqual(
      keys.filter((k, i) => keys.indexOf(k) !== i),
      [],
      `duplicate keys in ${line}`,
    );
  }
});
