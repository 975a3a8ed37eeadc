import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { API_TOKEN_FILE, loadOrCreateApiToken, removeGeneratedApiToken, tokensEqual } from "../../app/api/index.ts";
import { type BridgeError, hasErrorCode } from "../../errors/index.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "api-token-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test("a configured token wins and is checked for length", () => {
  assert.deepEqual(loadOrCreateApiToken(dir, "configured-token-0123456789"), {
    token: "configured-token-0123456789",
    source: "configured",
  });
  assert.throws(
    () => loadOrCreateApiToken(dir, "short"),
    (err: unknown) => (err as { code: string }).code === "BRIDGE_ERR_API_TOKEN",
  );
  assert.equal(fs.existsSync(path.join(dir, API_TOKEN_FILE)), false);
});

test("a configured token that breaks the rule is refused under its setting's name, http.apiToken", () => {
  assert.throws(
    () => loadOrCreateApiToken(dir, "has white space in it"),
    (err: unknown) =>
      hasErrorCode(err, "BRIDGE_ERR_API_TOKEN") &&
      (err as BridgeError).details.field === "http.apiToken" &&
      (err as Error).message === "http.apiToken must be at least 16 visible ASCII characters (no spaces)",
  );
});

test("without one, a token is generated once into the data dir with owner-only permissions and reused", () => {
  const sub = path.join(dir, "fresh");
  const first = loadOrCreateApiToken(sub, undefined, (n) => Buffer.alloc(n, 7));
  assert.equal(first.source, "generated");
  assert.equal(first.token, Buffer.alloc(32, 7).toString("base64url"));
  const mode = fs.statSync(path.join(sub, API_TOKEN_FILE)).mode & 0o777;
  assert.equal(mode, 0o600);
  const second = loadOrCreateApiToken(sub, "");
  assert.deepEqual(second, { token: first.token, source: "file" });
});

test("a generated token is removed only while its file still holds it, and an absent file is no fault", () => {
  const sub = path.join(dir, "undo");
  const { token } = loadOrCreateApiToken(sub);
  const file = path.join(sub, API_TOKEN_FILE);
  fs.writeFileSync(file, "someone-elses-token-0123456789\n");
  removeGeneratedApiToken(sub, token);
  assert.equal(fs.readFileSync(file, "utf8"), "someone-elses-token-0123456789\n", "another token is kept");
  fs.writeFileSync(file, `${token}\n`);
  removeGeneratedApiToken(sub, token);
  assert.equal(fs.existsSync(file), false);
  removeGeneratedApiToken(sub, token);
});

test("a stored token that is too short is refused rather than trusted", () => {
  const sub = path.join(dir, "bad");
  fs.mkdirSync(sub);
  fs.writeFileSync(path.join(sub, API_TOKEN_FILE), "abc\n");
  assert.throws(
    () => loadOrCreateApiToken(sub),
    (err: unknown) => (err as { code: string }).code === "BRIDGE_ERR_API_TOKEN",
  );
});

test("token comparison is exact", () => {
  assert.equal(tokensEqual("abcdefghijklmnop", "abcdefghijklmnop"), true);
  assert.equal(tokensEqual("abcdefghijklmnop", "abcdefghijklmnoq"), false);
  assert.equal(tokensEqual("abcdefghijklmnop", "abcdefghijklmno"), false);
  assert.equal(tokensEqual("", "x"), false);
});

test("an empty or blank token file is refused naming the file, not read as absent (and left as it is)", () => {
  for (const [name, text] of [
    ["empty", ""],
    ["blank", " \n"],
  ]) {
    const sub = path.join(dir, name);
    fs.mkdirSync(sub);
    const file = path.join(sub, API_TOKEN_FILE);
    fs.writeFileSync(file, text);
    assert.throws(
      () => loadOrCreateApiToken(sub),
      (err: unknown) =>
        hasErrorCode(err, "BRIDGE_ERR_API_TOKEN") &&
        (err as BridgeError).details.file === file &&
        (err as Error).message === `the token file ${file} must hold at least 16 visible ASCII characters (no spaces)`,
    );
    assert.equal(fs.readFileSync(file, "utf8"), text);
  }
});
