import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { statusForAgentCode } from "../../app/api/index.ts";

describe("agent error statuses", () => {
  test("runtime and agent codes map to fitting HTTP statuses", () => {
    const cases: Array<[string, number]> = [
      ["BRIDGE_ERR_INVALID_ARGUMENT", 400],
      ["BRIDGE_ERR_STATE_INVALID", 400],
      ["BRIDGE_ERR_CALL_UNKNOWN_METHOD", 404],
      ["BRIDGE_ERR_THERMO_NOT_FOUND", 404],
      ["BRIDGE_ERR_STALE_VERSION", 409],
      ["BRIDGE_ERR_READONLY", 403],
      ["BRIDGE_ERR_STATE_TOO_LARGE", 413],
      ["BRIDGE_ERR_STORAGE_FULL", 507],
      ["BRIDGE_ERR_RUNTIME_CLOSED", 503],
      ["BRIDGE_ERR_AGENT_DESTROYED", 410],
      ["BRIDGE_ERR_AGENT_START_TIMEOUT", 503],
      ["BRIDGE_ERR_HANDLER_FAILED", 500],
    ];
    for (const [code, status] of cases) assert.equal(statusForAgentCode(code), status, code);
  });
});
