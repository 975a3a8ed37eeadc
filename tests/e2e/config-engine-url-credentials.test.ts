/**
 * An engine URL with a user or password (`http://user:pw@host:8000`) is a config error naming the setting and where it
 * came from, pointing at the API key setting: the engine client sends no credentials from a URL, so such a URL was
 * accepted and the engine answered 401. The error never shows the password (nor the user, which may be a key too).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { formatConfigIssue, loadConfig } from "../../app/config/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { createEngineClient } from "../../engine-client/index.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bridge-engine-url-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SECRET = "pw-s3cret-9f2";

function errorsOf(result: ReturnType<typeof loadConfig>): string[] {
  assert.equal(result.ok, false, "expected the configuration to be refused");
  return result.ok ? [] : result.issues.map(formatConfigIssue);
}

describe("engine URLs with credentials", () => {
  test("from the environment: a config error naming engine.urls[i] and BRIDGE_ENGINE_URL, password redacted", () => {
    const errors = errorsOf(
      loadConfig({ env: { BRIDGE_ENGINE_URL: `http://127.0.0.1:8000,http://user:${SECRET}@gpu-2:8000/v1` } }),
    );
    assert.equal(errors.length, 1, errors.join("\n"));
    const line = errors[0] ?? "";
    assert.match(line, /^config error: engine\.urls\[1\] must not hold a user or password /);
    assert.match(line, /http:\/\/\[redacted\]@gpu-2:8000\/v1/);
    assert.match(line, /engine\.apiKey/);
    assert.match(line, /BRIDGE_ENGINE_API_KEY/);
    assert.match(line, /\(from BRIDGE_ENGINE_URL\)$/);
    assert.ok(!line.includes(SECRET), line);
    assert.ok(!line.includes("user:"), line);
  });

  test("from a flag or the config file: the source is named", () => {
    const fromFlag = errorsOf(loadConfig({ flags: { engineUrl: [`https://:${SECRET}@gpu-1`] } }));
    assert.equal(fromFlag.length, 1);
    assert.match(fromFlag[0] ?? "", /^config error: engine\.urls\[0\] must not hold .*\(from --engine-url\)$/);
    assert.ok(!(fromFlag[0] ?? "").includes(SECRET));

    const file = path.join(tmp, "bridge.json");
    fs.writeFileSync(file, JSON.stringify({ engine: { urls: ["http://operator@gpu-3:8000"] } }));
    const fromFile = errorsOf(loadConfig({ file }));
    assert.equal(fromFile.length, 1);
    assert.match(fromFile[0] ?? "", /^config error: engine\.urls\[0\] must not hold .*\(from config file /);
    assert.ok(!(fromFile[0] ?? "").includes("operator@"));
  });

  test("the config error's whole text: the redacted URL, then the bridge's settings for the key", () => {
    const errors = errorsOf(loadConfig({ env: { BRIDGE_ENGINE_URL: `http://user:${SECRET}@gpu-2:8000/v1` } }));
    assert.deepEqual(errors, [
      "config error: engine.urls[0] must not hold a user or password (http://[redacted]@gpu-2:8000/v1): the bridge " +
        "sends no credentials from an engine URL; set the engine's key as engine.apiKey or BRIDGE_ENGINE_API_KEY " +
        "(sent as a bearer token) (from BRIDGE_ENGINE_URL)",
    ]);
  });

  test("a URL without credentials is still taken", () => {
    const result = loadConfig({ env: { BRIDGE_ENGINE_URL: "http://gpu-1:8000/v1" } });
    assert.ok(result.ok);
  });

  test("the engine client refuses one at construction, naming the field, without the password", () => {
    assert.throws(
      () => createEngineClient({ urls: ["http://x:1", `http://user:${SECRET}@gpu-2:8000`] }),
      (err: unknown) =>
        err instanceof BridgeError &&
        err.code === "BRIDGE_ERR_CONFIG" &&
        err.details.field === "engine.urls[1]" &&
        /engine\.apiKey/.test(err.message) &&
        !err.message.includes(SECRET) &&
        !JSON.stringify(err.details).includes(SECRET),
    );
  });

  test("the engine client's whole text: the redacted URL, then the client's option for the key", () => {
    assert.throws(
      () => createEngineClient({ urls: [`http://:${SECRET}@gpu-2:8000`] }),
      (err: unknown) => {
        assert.ok(err instanceof BridgeError);
        assert.equal(
          err.message,
          "engine.urls[0] must not hold a user or password (http://[redacted]@gpu-2:8000/): the client sends no " +
            "credentials from a URL; give the engine's key as engine.apiKey (sent as a bearer token)",
        );
        return true;
      },
    );
  });
});
