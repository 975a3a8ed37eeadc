/**
 * The `sim` command names a refused option by the flag typed. Its table lists only the fleet fields named otherwise
 * than their flag; a renamed flag would silently bring the field's name back, so each entry must name a flag.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BridgeError, namedByFlag } from "../../errors/index.ts";
import { createSimCommand } from "../../firmware-sim/cli.ts";
import { SimErrorCode } from "../../firmware-sim/errors.ts";
import { SIM_FLAGS } from "../../firmware-sim/option-flags.ts";

describe("the sim command's flag names", () => {
  it("maps every listed fleet field to an option the command has", () => {
    const attributes = new Set(createSimCommand().options.map((o) => o.attributeName()));
    for (const [field, attribute] of Object.entries(SIM_FLAGS.attributeOf ?? {})) {
      assert.ok(attributes.has(attribute), `${field} -> ${attribute}`);
    }
  });

  it("names the flag and keeps the rule and the cause; a field with no flag is left as it is", () => {
    const command = createSimCommand();
    const refused = new BridgeError(SimErrorCode.options, "maxInflight must be an integer from 1 to 65000, got 0", {
      field: "maxInflight",
    });
    const named = namedByFlag(refused, command, SIM_FLAGS);
    assert.ok(named instanceof BridgeError);
    assert.equal(named.message, "--inflight must be an integer from 1 to 65000, got 0");
    assert.equal(named.code, SimErrorCode.options);
    assert.deepEqual(named.details, { field: "--inflight" });
    assert.equal(named.cause, refused);
    const noFlag = new BridgeError(SimErrorCode.options, "connectTimeoutMs must be ...", { field: "connectTimeoutMs" });
    assert.equal(namedByFlag(noFlag, command, SIM_FLAGS), noFlag);
  });
});
