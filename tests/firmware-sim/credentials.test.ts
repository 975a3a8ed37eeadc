import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseCredentials } from "../../firmware-sim/index.ts";

describe("credentials file", () => {
  it("accepts a JSON array of id and secret objects, ignoring extra fields", () => {
    assert.deepEqual(parseCredentials('[{"id":"a-1","secret":"x","codec":"cbor"},{"id":"a-2","secret":"y"}]'), [
      { id: "a-1", secret: "x" },
      { id: "a-2", secret: "y" },
    ]);
  });

  it("accepts one JSON object per line with blank lines", () => {
    assert.deepEqual(parseCredentials('{"id":"b-1","secret":"x"}\n\n{"id":"b-2","secret":"y"}\r\n'), [
      { id: "b-1", secret: "x" },
      { id: "b-2", secret: "y" },
    ]);
  });

  it("names the bad entry for an invalid id, a missing secret, a duplicate or broken JSON", () => {
    const cases: [string, RegExp][] = [
      ['[{"id":"bad id","secret":"x"}]', /entry 1: "id"/],
      ['{"id":"ok","secret":"x"}\n{"id":"..","secret":"y"}', /entry 2: "id"/],
      ['{"id":"ok","secret":"x"}\n{"id":"ok2"}', /entry 2 \(ok2\): "secret"/],
      ['{"id":"d","secret":"x"}\n{"id":"d","secret":"y"}', /duplicate id d/],
      ['{"id":"ok","secret":"x"}\n{oops', /line 2 is not valid JSON/],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => parseCredentials(text),
        (err: unknown) =>
          err instanceof Error &&
          "code" in err &&
          err.code === "BRIDGE_ERR_SIM_CREDENTIALS" &&
          message.test(err.message),
        text,
      );
    }
  });

  it("reads an empty file as no devices", () => {
    assert.deepEqual(parseCredentials("  \n"), []);
  });
});
