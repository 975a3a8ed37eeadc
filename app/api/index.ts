/**
 * The operator REST API: devices, shadows, commands, telemetry, conversations, approvals and the fleet
 * overview, with its OpenAPI document and token handling. See docs/api.md.
 */
export { unknownAgentClass } from "./agent-class-check.ts";
export { bearerToken, tokensEqual } from "./auth.ts";
export type {
  AgentCallResult,
  EngineActivity,
  FleetRates,
  OperatorActivity,
  OperatorAddResult,
  OperatorBroker,
  OperatorDeps,
  OperatorDeviceRecord,
  OperatorEngine,
  OperatorRegistry,
  OperatorRuntime,
} from "./deps.ts";
export { API_ERROR_CODES, type ApiErrorBody, ApiError, statusForAgentCode } from "./errors.ts";
export { type JsonValue, toJsonValue } from "./json-value.ts";
export { API_BODY_LIMIT_BYTES, API_MAX_PARAM_LENGTH, bearerHook, registerOperatorApi } from "./register.ts";
export {
  API_TOKEN_FILE,
  type ApiTokenSource,
  loadOrCreateApiToken,
  MIN_API_TOKEN_LENGTH,
  removeGeneratedApiToken,
} from "./token.ts";
