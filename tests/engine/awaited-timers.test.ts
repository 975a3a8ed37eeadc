/**
 * The timers a caller awaits keep the process alive; only the client's background timers (cooldowns, holds) do not.
 * A script that awaits a request while the engine refuses connections must get its error after the retries, not see
 * the process exit in the middle of a backoff because nothing but an unref'd timer was left on the event loop.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const client = pathToFileURL(join(root, "engine-client/index.ts")).href;

/** Runs `body` (top-level await allowed) in a fresh Node process with nothing else on its event loop. */
function runScript(body: string): { status: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), "engine-timers-"));
  try {
    const file = join(dir, "script.mts");
    writeFileSync(file, `import { createEngineClient } from ${JSON.stringify(client)};\n${body}\n`);
    const result = spawnSync(process.execPath, ["--import", "tsx", file], {
      cwd: root,
      encoding: "utf8",
      timeout: 30_000,
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("timers a caller awaits", () => {
  test("a request backing off between retries keeps the process alive until its error", () => {
    // Nothing listens on port 1: every attempt is refused at once, and the retries wait between them.
    const result = runScript(`
      const engine = createEngineClient({
        urls: ["http://127.0.0.1:1"],
        model: "m",
        retry: { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 200 },
        random: () => 0.99,
      });
      try {
        await engine.complete({ messages: [{ role: "user", content: "hi" }] }, { agentId: "script" });
        console.log("answered");
      } catch (err) {
        console.log(err.code);
      }
      await engine.close();
    `);
    assert.equal(result.stdout.trim(), "BRIDGE_ERR_ENGINE_UNAVAILABLE", result.stderr);
    assert.equal(result.status, 0, result.stderr);
  });
});
