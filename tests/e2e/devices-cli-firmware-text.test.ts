/**
 * `agent-bridge devices list` prints each device's firmware, which is the device's own text (its hello's `fw`). Printed
 * as it came, a device could write terminal escape sequences to the operator's terminal (colours, the window title,
 * worse on some terminals) and, with a newline and tabs, rows of devices that do not exist. Control characters are
 * shown escaped (`\u001b`), in `--json` too.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { createDeviceRegistry } from "../../broker/registry/index.ts";
import { makeTempDir, runCli } from "./support/bridge-process.ts";

const dir = makeTempDir("bridge-devices-cli-firmware-");
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const FIRMWARE = "1.0\u001b[31m\u001b]0;title\u0007\nghost-1\tjson\tdefault\t-\u009b2J";

/** The control characters in `text` but a table's tabs and line breaks. */
function controlsIn(text: string): string[] {
  return [...text].filter((c) => {
    const code = c.charCodeAt(0);
    return (code < 0x20 && c !== "\t" && c !== "\n") || (code >= 0x7f && code <= 0x9f);
  });
}

describe("devices list and the firmware text a device sent", () => {
  test("prints its control characters escaped, so it can neither drive the terminal nor add rows", () => {
    const dataDir = path.join(dir, "data");
    assert.equal(runCli(["devices", "add", "fw-1", "--data-dir", dataDir]).status, 0);
    const registry = createDeviceRegistry({ path: path.join(dataDir, "registry.db") });
    try {
      registry.setFirmware("fw-1", FIRMWARE);
      registry.flush();
    } finally {
      registry.close();
    }
    const listed = runCli(["devices", "list", "--data-dir", dataDir]);
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(controlsIn(listed.stdout), [], "no control characters but the table's own tabs and newlines");
    const rows = listed.stdout.trimEnd().split("\n");
    assert.equal(rows.length, 2, "the header and fw-1's row");
    const cells = rows[1].split("\t");
    assert.equal(cells.length, 6);
    assert.equal(
      cells[3],
      "1.0\\u001b[31m\\u001b]0;title\\u0007\\u000aghost-1\\u0009json\\u0009default\\u0009-\\u009b2J",
    );
    const json = runCli(["devices", "list", "--data-dir", dataDir, "--json"]);
    // JSON itself escapes only C0: DEL and C1 (the one-byte CSI, \u009b) are written as \u escapes too.
    assert.deepEqual(controlsIn(json.stdout), [], "no control characters in --json either");
    assert.equal((JSON.parse(json.stdout) as Array<{ firmware: string }>)[0].firmware, FIRMWARE);
  });
});
