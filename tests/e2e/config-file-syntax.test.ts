/**
 * A config file that is not valid JSON: the line the CLI prints (to the terminal and the service journal) says where
 * the file is broken, but never quotes the file, which holds the API token and the engine key.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { formatConfigIssue, loadConfig } from "../../app/config/index.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "config-syntax-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function problemsOf(name: string, text: string): string[] {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  const loaded = loadConfig({ file });
  assert.equal(loaded.ok, false);
  return loaded.ok ? [] : loaded.issues.map(formatConfigIssue);
}

describe("config file syntax errors", () => {
  test("a secret written without quotes is not quoted back in the error", () => {
    const secret = "Zq7xWv3kTn9pLm2RbC8d";
    for (const [name, text] of [
      ["token.json", `{\n  "http": { "apiToken": ${secret} }\n}\n`],
      ["key.json", `{"engine": {"apiKey": ${secret}, "urls": []}}`],
      ["key-late.json", `{"engine": {"urls": [], "apiKey": "${secret}" "model": "m"}}`],
    ] as const) {
      const problems = problemsOf(name, text);
      assert.equal(problems.length, 1, name);
      const line = problems[0] as string;
      assert.match(line, /^config error: config file is not valid JSON/, name);
      // Not the secret, nor any run of 4 of its characters (V8 quotes about 10 characters around the fault).
      for (let i = 0; i + 4 <= secret.length; i++) {
        assert.ok(!line.includes(secret.slice(i, i + 4)), `${name}: ${line}`);
      }
    }
  });

  test("the error still says where the file is broken, as line and column, when the parser says", () => {
    const problems = problemsOf("comma.json", '{\n  "mqtt": { "port": 1883, }\n}\n');
    assert.equal(problems.length, 1);
    assert.match(problems[0] as string, /is not valid JSON \(.*line 2, column 27\)/);
  });
});
