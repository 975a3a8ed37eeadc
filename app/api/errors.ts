/**
 * The REST API's error shape, `{ error: { code, message, field? } }`, and how agent and validation failures map to
 * HTTP statuses. Codes are stable (docs/errors.md); clients branch on `code`, never on `message`.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { AGENT_ERRORS, isCallerInputCode, isServiceCode, type RefusalKind, refusalKind } from "../../agents/index.ts";
import { DEVICE_ID_PATTERN, DEVICE_ID_RULE } from "../../codecs/device-id.ts";
import { BridgeError } from "../../errors/index.ts";

/** Stable codes the operator API itself returns. */
export const API_ERROR_CODES = {
  unauthorized: "BRIDGE_ERR_API_UNAUTHORIZED",
  validation: "BRIDGE_ERR_API_VALIDATION",
  notFound: "BRIDGE_ERR_API_NOT_FOUND",
  deviceNotFound: "BRIDGE_ERR_API_DEVICE_NOT_FOUND",
  deviceExists: "BRIDGE_ERR_API_DEVICE_EXISTS",
  payloadTooLarge: "BRIDGE_ERR_API_PAYLOAD_TOO_LARGE",
  unavailable: "BRIDGE_ERR_API_UNAVAILABLE",
  notImplemented: "BRIDGE_ERR_API_NOT_IMPLEMENTED",
  internal: "BRIDGE_ERR_API_INTERNAL",
} as const;

/** The JSON body of every API error. */
export interface ApiErrorBody {
  error: { code: string; message: string; field?: string };
}

/**
 * An expected API failure carried to the error handler: a status, a stable code, the field at fault, and for a failure
 * that says when the same request may succeed, that wait (`retryAfterMs`, sent as `Retry-After` on a 503 or 429).
 */
export class ApiError extends BridgeError {
  readonly statusCode: number;
  readonly field: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(
    statusCode: number,
    code: string,
    message: string,
    field?: string,
    options?: { cause?: unknown; retryAfterMs?: number | undefined },
  ) {
    super(code, message, field === undefined ? {} : { field }, options);
    this.name = "ApiError";
    this.statusCode = statusCode;
    this.field = field;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/**
 * The `Retry-After` value for a wait of `ms`: whole seconds ([RFC 9110 10.2.3] delay-seconds), rounded up so a client
 * never comes back before the wait is over (999 ms is 1, not 0, which would ask for a retry at once). Undefined for a
 * status the header means nothing on (it is for 503 and 429, and redirects) or a wait that is no number of ms.
 */
export function retryAfterSeconds(status: number, ms: number | undefined): string | undefined {
  if (status !== 503 && status !== 429) return undefined;
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return undefined;
  return String(Math.ceil(ms / 1000));
}

/**
 * HTTP status for an error code an agent returned from `runtime.call`. A code that refuses the caller's input gets the
 * 4xx of its kind, read by the agents' own classification (agents/caller-input.ts, which also decides what the runtime
 * logs as a caller's mistake); a new agent class with, say, `BRIDGE_ERR_THERMO_NOT_FOUND` maps without a table change.
 * A code that states a refusal the agent met for itself is no 4xx, since the operator has nothing to fix: 502 for a
 * service the agent called (the engine refusing its request, BRIDGE_ERR_ENGINE_BAD_REQUEST), 500 for the agent's own
 * (BRIDGE_ERR_SCHEDULE_INVALID). The engine's unavailability (`_UNAVAILABLE`, `_OVERLOADED`) refuses nothing: 503.
 */
export function statusForAgentCode(code: string): number {
  const runtime = RUNTIME_STATUS.get(code);
  if (runtime !== undefined) return runtime;
  const refusal = refusalKind(code);
  if (refusal !== undefined) {
    if (isCallerInputCode(code)) return REFUSAL_STATUS[refusal];
    return isServiceCode(code) ? 502 : 500;
  }
  if (/_(MAILBOX_FULL|OVERLOADED|UNAVAILABLE|SHUTTING_DOWN|SHUTDOWN)$/.test(code)) return 503;
  if (/_(TOO_LARGE|STORAGE_FULL)$/.test(code)) return 413;
  return 500;
}

/** The 4xx of each kind of refused input. */
const REFUSAL_STATUS: Readonly<Record<RefusalKind, number>> = {
  invalid: 400,
  "not-found": 404,
  conflict: 409,
  forbidden: 403,
};

/** Runtime codes (agents/errors.ts) that refuse no input and whose ending alone would not say the right thing. */
const RUNTIME_STATUS: ReadonlyMap<string, number> = new Map([
  [AGENT_ERRORS.STATE_TOO_LARGE, 413],
  [AGENT_ERRORS.STORAGE_FULL, 507],
  [AGENT_ERRORS.RUNTIME_CLOSED, 503],
  // The device's agent was destroyed (a DELETE of the device) while the request waited for it. 410, not 503: the
  // bridge is fine and a retry cannot reach that agent again; not 404, which says the device never existed as far
  // as the API knows (BRIDGE_ERR_API_DEVICE_NOT_FOUND), where this one existed when the request arrived and went.
  [AGENT_ERRORS.AGENT_DESTROYED, 410],
  // The device's agent is not started: its onStart keeps timing out and its next try waits for a backoff. The bridge
  // is up and the same request may succeed later, as for a shutdown.
  [AGENT_ERRORS.AGENT_START_TIMEOUT, 503],
]);

/**
 * True for a 503 the bridge answers on purpose with a stable code: the runtime is shutting down
 * (BRIDGE_ERR_RUNTIME_CLOSED), an agent waits out a start backoff (BRIDGE_ERR_AGENT_START_TIMEOUT, which the runtime
 * logs once per backoff step), a mailbox is full. The bridge works as designed and the same request may succeed later,
 * so it is logged as a warning, not as a fault with a stack. An ApiError that wraps a thrown `cause` is a fault
 * whatever its status.
 */
export function isExpectedUnavailability(error: ApiError): boolean {
  return error.statusCode === 503 && error.cause === undefined && error.code !== API_ERROR_CODES.internal;
}

/** Sends the standard error body. */
export function sendError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  field?: string,
): FastifyReply {
  const body: ApiErrorBody = { error: field === undefined ? { code, message } : { code, message, field } };
  return reply.code(status).type("application/json; charset=utf-8").send(body);
}

/**
 * Fastify error handler for the API scope: schema failures become 400s naming the field, ApiErrors keep their
 * status, anything else is a 500 whose details stay in the log, never in the response.
 */
export function apiErrorHandler(
  thrown: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  const error = runtimeClosedAsApiError(thrown);
  if (error instanceof ApiError) {
    if (isExpectedUnavailability(error)) {
      // No stack: it says where the answer was built, not what went wrong, and the code says that already.
      request.log.warn(
        {
          code: error.code,
          statusCode: error.statusCode,
          retryAfterMs: error.retryAfterMs,
          method: request.method,
          path: request.url.split("?")[0],
        },
        `operator API request answered ${error.statusCode}: ${error.message}`,
      );
    } else if (error.statusCode >= 500) {
      request.log.error({ err: error }, "operator API request failed");
    }
    const retryAfter = retryAfterSeconds(error.statusCode, error.retryAfterMs);
    if (retryAfter !== undefined) reply.header("retry-after", retryAfter);
    return sendError(reply, error.statusCode, error.code, error.message, error.field);
  }
  const fe = error as FastifyError;
  if (fe.validation !== undefined) {
    const first = fe.validation[0];
    const field = validationField(fe.validationContext, first?.instancePath, first?.params);
    // `data` is there because the body validator is verbose (validation.ts); fastify's type does not list it.
    const data = (first as { data?: unknown } | undefined)?.data;
    const message = `${field} ${validationProblem(first?.keyword, first?.message, first?.params, data)}`;
    return sendError(reply, 400, API_ERROR_CODES.validation, message, field);
  }
  if (fe.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
    return sendError(reply, 413, API_ERROR_CODES.payloadTooLarge, "request body too large");
  }
  if (fe.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" || fe.code === "FST_ERR_CTP_EMPTY_JSON_BODY") {
    return sendError(
      reply,
      415,
      API_ERROR_CODES.validation,
      "send a JSON body with content-type application/json",
      "body",
    );
  }
  if (typeof fe.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500) {
    // JSON syntax errors and other client faults fastify detected before our handlers ran.
    return sendError(reply, fe.statusCode, API_ERROR_CODES.validation, fe.message, "body");
  }
  request.log.error({ err: error }, "operator API request failed");
  return sendError(reply, 500, API_ERROR_CODES.internal, "internal error; see the bridge log");
}

/**
 * A runtime that has shut down refuses what a route asks of it by throwing BRIDGE_ERR_RUNTIME_CLOSED (its directory,
 * `destroyAgent`) where `call` answers it as a value. Either way it is the 503 of a stopping bridge, not a fault: a
 * route that reaches the runtime another way than through `callDeviceAgent` is answered as the others are.
 */
function runtimeClosedAsApiError(error: FastifyError | Error): FastifyError | Error {
  if (!(error instanceof BridgeError) || error instanceof ApiError) return error;
  if (error.code !== AGENT_ERRORS.RUNTIME_CLOSED) return error;
  return new ApiError(503, error.code, error.message);
}

/**
 * The part after the field name. ajv's own text repeats the field (`must have required property 'state'`), so the
 * two keywords an operator meets most get plain sentences: `body.state is required`, `body.ttl is not a known field`.
 * A device id is worded too: its pattern, with the lookahead that refuses `.` and `..`, reads poorly as a message.
 */
function validationProblem(
  keyword: string | undefined,
  message: string | undefined,
  params: unknown,
  data: unknown,
): string {
  if (keyword === "required") return "is required";
  // An integer token beyond ±(2^53-1) is read exactly, as a bigint (json-body.ts); ajv's "must be integer" would
  // say the operator sent no integer at all.
  const wanted = typeof params === "object" && params !== null ? (params as Record<string, unknown>).type : undefined;
  if (keyword === "type" && typeof data === "bigint" && (wanted === "integer" || wanted === "number")) {
    return `is ${data}, beyond the integers this field takes`;
  }
  if (keyword === "additionalProperties") return "is not a known field";
  const pattern =
    typeof params === "object" && params !== null ? (params as Record<string, unknown>).pattern : undefined;
  if (keyword === "pattern" && pattern === DEVICE_ID_PATTERN) return `must be ${DEVICE_ID_RULE}`;
  return message ?? "is invalid";
}

/** Builds a dotted field name (`body.state`, `query.limit`) from an ajv error. */
function validationField(context: string | undefined, instancePath: string | undefined, params: unknown): string {
  const parts: string[] = [context ?? "body"];
  for (const seg of (instancePath ?? "").split("/")) if (seg !== "") parts.push(seg);
  if (typeof params === "object" && params !== null) {
    const p = params as Record<string, unknown>;
    if (typeof p.missingProperty === "string") parts.push(p.missingProperty);
    else if (typeof p.additionalProperty === "string") parts.push(p.additionalProperty);
  }
  return parts.join(".");
}
