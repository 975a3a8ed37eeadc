/**
 * JSON Schemas of the API's success answers, for the OpenAPI document only (routes name theirs as
 * `config.successSchema`). They are not fastify response schemas: fastify serializes those with fast-json-stringify,
 * which drops every field a schema does not declare and coerces a value of another type instead of failing, and the
 * answers carry agent values (a shadow's state, a command's args and result) whose shape is the agent's. The API
 * keeps answering with `JSON.stringify`, and tests/api/openapi-contract.test.ts checks real answers against these.
 *
 * OpenAPI 3.0 schemas: `nullable` instead of a `null` type (ajv reads it too), `$ref` to `components.schemas`.
 */
import { COMMAND_STATES } from "../../agents/device/index.ts";
import { anyJson, codecSchema } from "./schemas.ts";

type Schema = Readonly<Record<string, unknown>>;

const text = { type: "string" } as const;
const flag = { type: "boolean" } as const;
const count = { type: "integer", minimum: 0 } as const;
const number = { type: "number" } as const;
const msTime = { type: "integer", description: "ms since the Unix epoch" } as const;

/** `schema` or null; a null joins an `enum` too, as OpenAPI 3.0.3 asks. */
function nullable(schema: Schema): Schema {
  const values = schema.enum;
  return Array.isArray(values) ? { ...schema, nullable: true, enum: [...values, null] } : { ...schema, nullable: true };
}

/**
 * An object with exactly these fields (a field the answer adds is drift the contract test reports); `optional` ones
 * may be missing.
 */
function exactObject(properties: Readonly<Record<string, Schema>>, optional: readonly string[] = []): Schema {
  const required = Object.keys(properties).filter((name) => !optional.includes(name));
  return { type: "object", additionalProperties: false, required, properties };
}

function listOf(items: Schema): Schema {
  return { type: "array", items };
}

function ref(name: keyof typeof RESPONSE_COMPONENTS): Schema {
  return { $ref: `#/components/schemas/${name}` };
}

const codec = nullable(codecSchema);

const deviceFields = {
  id: text,
  online: flag,
  codec,
  agentClass: nullable(text),
  agentClassFallback: nullable({
    ...text,
    description: "The class serving the device instead of agentClass, which the bridge does not serve",
  }),
  firmware: nullable(text),
  createdAt: nullable(msTime),
  lastSeenAt: nullable(msTime),
  lastTelemetry: nullable(exactObject({ at: msTime, readings: anyJson })),
};

/** DeviceAgent's `getStatus`. */
const deviceStatus = exactObject({
  online: flag,
  connections: count,
  lastSeen: nullable(msTime),
  lastClose: nullable({ ...text, description: "How the last session ended (disconnect, will, takeover, ...)" }),
  firmware: nullable(text),
  codec,
  caps: exactObject({ sync: flag, stream: flag, maxFrame: nullable(count) }),
});

const shadowDocument = exactObject({ version: count, state: { type: "object" } });

const approvalFields = {
  id: text,
  turnId: text,
  toolCallId: text,
  tool: text,
  args: { ...text, description: "The tool's arguments as the model wrote them (JSON text)" },
  status: { type: "string", enum: ["pending", "approved", "rejected", "expired", "cancelled"] },
  reason: nullable(text),
  createdAt: msTime,
  resolvedAt: nullable(msTime),
};

/** The engine client's `health()`. */
const engineHealthReport = exactObject({
  status: { type: "string", enum: ["ok", "degraded", "down", "not-configured"] },
  replicas: listOf(
    exactObject(
      {
        url: text,
        state: { type: "string", enum: ["healthy", "cooling"] },
        healthy: flag,
        problem: exactObject({ reason: { type: "string", enum: ["timeout", "status", "unreachable"] }, message: text }),
      },
      ["problem"],
    ),
  ),
});

// OpenAPI 3.0 has no null type and `nullable` needs a `type` beside it, so the null is the report's own.
const engineHealth = {
  description: "null without an engine; a probe that failed or did not answer in time is {healthy: false, error}",
  anyOf: [nullable(engineHealthReport), exactObject({ healthy: { type: "boolean", enum: [false] }, error: text })],
};

const engineStats = nullable({
  ...exactObject({
    queued: count,
    inFlight: count,
    requests: count,
    completed: count,
    retries: count,
    errors: { type: "object", additionalProperties: count, description: "Failed requests by error code" },
    promptTokens: count,
    completionTokens: count,
    cachedTokens: count,
    replicas: listOf(
      exactObject(
        {
          url: text,
          state: { type: "string", enum: ["healthy", "cooling"] },
          inFlight: count,
          consecutiveFailures: count,
          attempts: count,
          failures: count,
          cooldownUntil: msTime,
          heldUntil: msTime,
        },
        ["cooldownUntil", "heldUntil"],
      ),
    ),
  }),
  description: "The engine client's counters since the bridge started; null without an engine",
});

/** Named schemas of the document (`components.schemas`), for the types a client generator names. */
export const RESPONSE_COMPONENTS = {
  /** One row of the fleet table. */
  Device: exactObject(deviceFields),
  /** The row plus the agent's status and the bridge's clock. */
  DeviceDetail: exactObject({
    ...deviceFields,
    status: nullable({ ...deviceStatus, description: "The agent's getStatus; null when its class has none" }),
    serverTime: msTime,
  }),
  Shadow: exactObject({ reported: shadowDocument, desired: shadowDocument, delta: { type: "object" } }),
  Command: exactObject({
    id: text,
    seq: count,
    name: text,
    args: anyJson,
    state: { type: "string", enum: [...COMMAND_STATES] },
    attempts: count,
    maxAttempts: count,
    ackTimeoutMs: {
      ...count,
      description: "Delivered again when not acknowledged this long after a delivery; 0: never",
    },
    createdAt: msTime,
    expiresAt: msTime,
    sentAt: nullable(msTime),
    doneAt: nullable(msTime),
    result: anyJson,
    error: nullable(text),
  }),
  TelemetryReading: exactObject({ ts: msTime, metric: text, value: anyJson, unit: text }, ["unit"]),
  ConversationMessage: exactObject(
    {
      id: count,
      turnId: text,
      role: { type: "string", enum: ["system", "user", "assistant", "tool"] },
      content: nullable(text),
      toolCalls: listOf(exactObject({ id: text, name: text, arguments: text })),
      toolCallId: text,
      compacted: { ...flag, description: "The row-size guard shortened it" },
      createdAt: msTime,
    },
    ["toolCalls", "toolCallId"],
  ),
  /** An approval as its agent records it. */
  Approval: exactObject(approvalFields),
  /**
   * A pending approval as the fleet directory lists it: the agent's record and who asked. Open: the listing passes on
   * what the agent wrote, and an approval listed before an upgrade may lack the fields added since (`origin`).
   */
  PendingApproval: {
    type: "object",
    required: ["deviceId", "approvalId", ...Object.keys(approvalFields), "requestId", "question"],
    properties: {
      deviceId: text,
      approvalId: text,
      ...approvalFields,
      requestId: { ...text, description: "The asker's request id" },
      origin: { type: "string", enum: ["device", "viewer"], description: "Who asked" },
      question: { ...text, description: "The head of the question, at most 200 UTF-16 code units" },
    },
  },
} satisfies Record<string, Schema>;

// One answer per route: `config.successSchema` of each.

export const deviceListAnswer = exactObject({
  devices: listOf(ref("Device")),
  total: { ...count, description: "Devices on this page" },
  matched: { ...count, description: "Devices the filters keep, before paging" },
});

export const deviceDetailAnswer = ref("DeviceDetail");

export const deviceCreatedAnswer = exactObject({
  device: ref("Device"),
  secret: { ...text, description: "The device's MQTT secret, shown only here" },
});

export const secretRotatedAnswer = exactObject({
  id: text,
  secret: { ...text, description: "The new MQTT secret, shown only here" },
  endedSessions: count,
});

export const deviceRemovedAnswer = exactObject({
  id: text,
  removed: exactObject({ record: flag, agentData: flag }),
});

export const shadowAnswer = ref("Shadow");

export const desiredSetAnswer = exactObject({ status: { type: "string", enum: ["ok"] }, version: count });

export const commandAnswer = ref("Command");

export const commandListAnswer = exactObject({ commands: listOf(ref("Command")) });

export const telemetryPageAnswer = exactObject({
  from: msTime,
  to: msTime,
  metric: nullable(text),
  limit: count,
  order: { type: "string", enum: ["asc", "desc"] },
  readings: listOf(ref("TelemetryReading")),
  next: nullable({ ...text, description: "The cursor of the next page; null when this page was not full" }),
});

export const conversationAnswer = exactObject({
  messages: listOf(ref("ConversationMessage")),
  usage: exactObject({ requests: count, promptTokens: count, cachedTokens: count, completionTokens: count }),
});

export const approvalListAnswer = exactObject({ approvals: listOf(ref("PendingApproval")), total: count });

export const approvalResolvedAnswer = exactObject({
  deviceId: text,
  approvalId: text,
  approved: flag,
  result: exactObject({
    status: { type: "string", enum: ["ok"] },
    approval: ref("Approval"),
    output: { ...text, description: "What the model is told: the tool's output, or the refusal" },
  }),
});

export const fleetAnswer = exactObject({
  serverTime: msTime,
  devices: exactObject({ registered: count, online: count, offline: count }),
  agents: exactObject({ active: count, hibernated: count, mailboxDepth: count, commits: count }),
  rates: nullable(
    exactObject({
      windowSeconds: count,
      inPerSecond: number,
      outPerSecond: number,
      history: listOf(exactObject({ t: msTime, in: count, out: count, tokens: count, ttftMs: nullable(number) })),
    }),
  ),
  engine: exactObject({
    configured: flag,
    health: engineHealth,
    stats: engineStats,
    activity: nullable(
      exactObject({
        windowSeconds: count,
        tokensPerSecond: number,
        requests: count,
        errors: count,
        ttftMsMean: nullable(number),
        queueWaitMsMean: nullable(number),
      }),
    ),
  }),
  approvalsPending: count,
});

export const backupAnswer = exactObject({
  dir: { type: "string", description: "The snapshot's folder, absolute" },
  agents: count,
  bytes: count,
  durationMs: number,
});
