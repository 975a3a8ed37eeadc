import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AGENT_ERRORS, isCallerInputCode } from "../../agents/index.ts";
import { statusForAgentCode } from "../../app/api/index.ts";
import { ENGINE_ERROR_CODES } from "../../engine-client/errors.ts";

/**
 * The operator API's status for every code the agent runtime exports. Keyed by AGENT_ERRORS' own keys, so a new runtime
 * code does not typecheck until it is given a status here.
 */
const RUNTIME_CODE_STATUS: Record<keyof typeof AGENT_ERRORS, number> = {
  INVALID_OPTION: 500,
  INVALID_AGENT_ID: 400,
  STORAGE_FULL: 507,
  STORAGE: 500,
  STATE_TOO_LARGE: 413,
  STATE_INVALID: 400,
  READONLY: 403,
  // Never met by the API (its calls come from no connection); a refusal of the caller as READONLY is.
  READONLY_CONNECTION: 403,
  RPC_UNKNOWN_METHOD: 404,
  RPC_FAILED: 500,
  CALL_UNKNOWN_METHOD: 404,
  CONNECTION_UNKNOWN: 500,
  HANDLER_FAILED: 500,
  // States a refusal by its ending, though of the agent's own schedule() call, not of the caller's input: a fault of
  // the agent, not the operator's to fix.
  SCHEDULE_INVALID: 500,
  TASK_CANCELLED: 500,
  TASK_FAILED: 500,
  AGENT_HIBERNATED: 500,
  RUNTIME_CLOSED: 503,
  AGENT_DESTROYED: 410,
  VALUE_ENCODE: 500,
  CALLBACK_TIMEOUT: 500,
  AGENT_RETIRED: 500,
  AGENT_START_TIMEOUT: 503,
};

/**
 * The operator API's status for every code the engine client raises, met by an agent that calls the engine for itself.
 * Keyed by ENGINE_ERROR_CODES' own keys, so a new engine code does not typecheck until it is given a status here.
 */
const ENGINE_CODE_STATUS: Record<keyof typeof ENGINE_ERROR_CODES, number> = {
  overloaded: 503,
  unavailable: 503,
  timeout: 500,
  // The engine refused a request the agent built (a wrong API key, an unknown model): a fault of the service the
  // bridge calls, not of the operator's input.
  badRequest: 502,
  streamBroken: 500,
  cancelled: 500,
  notConfigured: 500,
};

/** Codes of an agent class of its own, read by their ending. */
const CLASS_CODE_STATUS: Array<[string, number]> = [
  ["BRIDGE_ERR_INVALID_ARGUMENT", 400],
  ["BRIDGE_ERR_THERMO_INVALID", 400],
  ["BRIDGE_ERR_THERMO_VALIDATION", 400],
  ["BRIDGE_ERR_THERMO_BAD_REQUEST", 400],
  ["BRIDGE_ERR_THERMO_ARGS", 400],
  ["BRIDGE_ERR_THERMO_NOT_FOUND", 404],
  ["BRIDGE_ERR_STALE_VERSION", 409],
  ["BRIDGE_ERR_THERMO_CONFLICT", 409],
  ["BRIDGE_ERR_THERMO_VERSION_CONFLICT", 409],
  ["BRIDGE_ERR_THERMO_STALE", 409],
  ["BRIDGE_ERR_THERMO_EXISTS", 409],
  ["BRIDGE_ERR_THERMO_READONLY", 403],
  ["BRIDGE_ERR_THERMO_FORBIDDEN", 403],
  ["BRIDGE_ERR_THERMO_NOT_CALLABLE", 403],
];

const REFUSAL_STATUSES = new Set([400, 403, 404, 409]);

describe("agent error statuses", () => {
  test("every code the agent runtime exports maps to its pinned HTTP status", () => {
    assert.deepEqual(Object.keys(RUNTIME_CODE_STATUS).sort(), Object.keys(AGENT_ERRORS).sort());
    for (const [key, code] of Object.entries(AGENT_ERRORS)) {
      assert.equal(statusForAgentCode(code), RUNTIME_CODE_STATUS[key as keyof typeof AGENT_ERRORS], code);
    }
  });

  test("an agent class's own codes map by their ending", () => {
    for (const [code, status] of CLASS_CODE_STATUS) assert.equal(statusForAgentCode(code), status, code);
    assert.equal(statusForAgentCode("BRIDGE_ERR_THERMO_UNAVAILABLE"), 503);
    assert.equal(statusForAgentCode("BRIDGE_ERR_THERMO_TOO_LARGE"), 413);
    assert.equal(statusForAgentCode("BRIDGE_ERR_THERMO_FAILED"), 500);
  });

  test("every code the agents count as a caller's input is answered with a refusal's 4xx", () => {
    const codes = [...Object.values(AGENT_ERRORS), ...CLASS_CODE_STATUS.map(([code]) => code)];
    const callerInput = codes.filter((code) => isCallerInputCode(code));
    assert.deepEqual(
      callerInput.filter((code) => !REFUSAL_STATUSES.has(statusForAgentCode(code))),
      [],
      "a caller's input answered with no 4xx",
    );
    // Every class code above is a caller's input, and so are the runtime's own refusals.
    const runtimeCodes: ReadonlySet<string> = new Set(Object.values(AGENT_ERRORS));
    assert.deepEqual(
      callerInput.filter((code) => runtimeCodes.has(code)),
      [
        AGENT_ERRORS.INVALID_AGENT_ID,
        AGENT_ERRORS.STATE_INVALID,
        AGENT_ERRORS.READONLY,
        AGENT_ERRORS.READONLY_CONNECTION,
        AGENT_ERRORS.RPC_UNKNOWN_METHOD,
        AGENT_ERRORS.CALL_UNKNOWN_METHOD,
      ],
    );
    assert.equal(callerInput.length, 6 + CLASS_CODE_STATUS.length);
  });

  test("every code the engine client raises maps to its pinned HTTP status", () => {
    assert.deepEqual(Object.keys(ENGINE_CODE_STATUS).sort(), Object.keys(ENGINE_ERROR_CODES).sort());
    for (const [key, code] of Object.entries(ENGINE_ERROR_CODES)) {
      assert.equal(statusForAgentCode(code), ENGINE_CODE_STATUS[key as keyof typeof ENGINE_ERROR_CODES], code);
    }
  });

  test("a refusal the agent met for itself is a server-side status, not the caller's 4xx", () => {
    assert.equal(statusForAgentCode(AGENT_ERRORS.SCHEDULE_INVALID), 500);
    // Any engine code that reads as a refusal is the upstream service's answer to the agent: 502, whatever its ending.
    for (const code of ["BRIDGE_ERR_ENGINE_BAD_REQUEST", "BRIDGE_ERR_ENGINE_NOT_FOUND", "BRIDGE_ERR_ENGINE_CONFLICT"]) {
      assert.equal(statusForAgentCode(code), 502, code);
    }
    for (const code of [
      AGENT_ERRORS.SCHEDULE_INVALID,
      "BRIDGE_ERR_ENGINE_BAD_REQUEST",
      "BRIDGE_ERR_ENGINE_FORBIDDEN",
    ]) {
      assert.equal(isCallerInputCode(code), false, code);
    }
  });

  test("only a caller's input is answered with a refusal's 4xx", () => {
    const codes = [
      ...Object.values(AGENT_ERRORS),
      ...Object.values(ENGINE_ERROR_CODES),
      ...CLASS_CODE_STATUS.map(([code]) => code),
      "BRIDGE_ERR_ENGINE_NOT_FOUND",
      "BRIDGE_ERR_ENGINE_FORBIDDEN",
    ];
    assert.deepEqual(
      codes.filter((code) => REFUSAL_STATUSES.has(statusForAgentCode(code)) && !isCallerInputCode(code)),
      [],
      "a refusal's 4xx for a code that is not a caller's input",
    );
  });

  test("a code that only looks like an object's own key refuses nothing", () => {
    for (const code of ["constructor", "__proto__", "toString"]) {
      assert.equal(statusForAgentCode(code), 500, code);
      assert.equal(isCallerInputCode(code), false, code);
    }
  });
});
