/**
 * The one check of an engine URL holding a user or password, which the engine client and the bridge's config schema
 * both report (tests/e2e/config-engine-url-credentials.test.ts pins each caller's whole message).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { urlCredentialsProblem } from "../../engine-client/index.ts";

const ADVICE = "give the key as apiKey";

describe("urlCredentialsProblem", () => {
  test("a URL without a user or password has no problem", () => {
    for (const url of ["http://gpu-1:8000", "https://gpu-1/v1", "http://@gpu-1:8000"]) {
      assert.equal(urlCredentialsProblem(new URL(url), ADVICE), undefined, url);
    }
  });

  test("a user, a password or both: the URL redacted, then the caller's advice", () => {
    const cases: Array<[string, string]> = [
      ["http://user:pw-9f2@gpu-1:8000/v1", "http://[redacted]@gpu-1:8000/v1"],
      ["http://sk-key-9f2@gpu-1:8000", "http://[redacted]@gpu-1:8000/"],
      ["https://:pw-9f2@gpu-1", "https://[redacted]@gpu-1/"],
    ];
    for (const [url, shown] of cases) {
      const problem = urlCredentialsProblem(new URL(url), ADVICE);
      assert.equal(problem, `must not hold a user or password (${shown}): ${ADVICE}`, url);
      assert.ok(!problem?.includes("9f2"), problem);
    }
  });
});
