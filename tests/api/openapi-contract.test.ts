/**
 * The OpenAPI document (/openapi.json) against what a real bridge answers over loopback: every status a route
 * answers is one its operation documents, every error body is the document's Error schema with a code docs/errors.md
 * lists, every 2xx body is valid against the schema the document gives for it (components resolved as a client
 * generator would) and has the fields docs/api.md names. A route that starts answering a status or a field its
 * document does not list, or a document that drops one, fails here. The bridge has a real engine (the simulator) and a
 * device over MQTT with telemetry, an acknowledged command and a tool call waiting for approval, so the answers checked
 * hold filled lists, statuses and results, not only empty ones.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Ajv, type ValidateFunction } from "ajv";
import mqtt, { type MqttClient } from "mqtt";
import type { Bridge } from "../../app/bridge.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { createLoopbackBridge } from "../support/in-process-bridge.ts";

const TOKEN = "openapi-contract-token-0123456789";
const ERRORS_MD = fs.readFileSync(path.join(import.meta.dirname, "../../docs/errors.md"), "utf8");

interface Operation {
  responses: Record<string, { description: string; content?: Record<string, { schema: object }> }>;
  parameters?: Array<{ name: string; in: string }>;
  requestBody?: unknown;
}
interface OpenApiDoc {
  components: { schemas: { Error: object } };
  paths: Record<string, Record<string, Operation>>;
}

/** One request of the table: the operation it belongs to (OpenAPI path and method) and what to send. */
interface Exchange {
  op: string;
  url: string;
  body?: string;
  contentType?: string;
  /** The status this request must get, so the table exercises the statuses it means to. */
  status: number;
  /** Fields docs/api.md names for this 2xx answer. */
  fields?: readonly string[];
}

const DEVICE_ROW = [
  "id",
  "online",
  "codec",
  "agentClass",
  "agentClassFallback",
  "firmware",
  "createdAt",
  "lastSeenAt",
  "lastTelemetry",
];
const COMMAND = [
  "id",
  "seq",
  "name",
  "args",
  "state",
  "attempts",
  "maxAttempts",
  "ackTimeoutMs",
  "createdAt",
  "expiresAt",
  "sentAt",
  "doneAt",
  "result",
  "error",
];
const json = (value: unknown) => JSON.stringify(value);

/** The JSON pointer (as a URI fragment) of an operation's answer schema in the document. */
function answerPointer(opPath: string, method: string, status: number, mediaType: string): string {
  const escapeKey = (key: string) => encodeURIComponent(key.replaceAll("~", "~0").replaceAll("/", "~1"));
  return ["paths", opPath, method, "responses", String(status), "content", mediaType, "schema"]
    .map(escapeKey)
    .join("/");
}

/** Polls `read` (real time: the device and the engine simulator run on their own) until it returns a value. */
async function eventually<T>(what: string, read: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("the OpenAPI document matches the bridge's real answers", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "openapi-contract-"));
  let sim: Awaited<ReturnType<typeof startEngineSimulator>> | undefined;
  let bridge: Bridge;
  let device: MqttClient | undefined;
  let base = "";
  let doc: OpenApiDoc;
  let errorSchema: ValidateFunction;
  /** Validates against the served document itself, so its `$ref`s resolve to its own components. */
  const documentAjv = new Ajv({ strict: true });
  /** The device's acknowledged command and its pending approval, made in `before`. */
  let commandId = "";
  let approvalId = "";

  const api = async (method: string, url: string, body?: unknown): Promise<unknown> => {
    const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${base}${url}`, { method, headers, body: body === undefined ? undefined : json(body) });
    assert.ok(res.ok, `${method} ${url}: ${res.status}`);
    return res.json();
  };

  before(async () => {
    sim = await startEngineSimulator({ timeScale: 0.01 });
    bridge = await createLoopbackBridge({ dataDir, apiToken: TOKEN, engineUrls: [sim.url] });
    const addresses = await bridge.start();
    base = `http://127.0.0.1:${addresses.http?.port}`;
    const res = await fetch(`${base}/openapi.json`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    doc = (await res.json()) as OpenApiDoc;
    errorSchema = new Ajv({ strict: false }).compile(doc.components.schemas.Error);
    // Strict, so a misspelt keyword in an answer's schema fails here instead of checking nothing; the document's own
    // members are not schemas, only the parts of it the answers' pointers and `$ref`s reach are compiled.
    documentAjv.addVocabulary(Object.keys(doc));
    documentAjv.addSchema({ ...doc, $id: "openapi.json" });

    // A device with something in every answer: a status from its hello, readings with a unit, a command it acknowledged
    // with a result, and a reasoning turn waiting for an operator to approve its tool call (send_command by default).
    const added = await bridge.registry.add("a1", { codec: "json" });
    assert.equal(added.status, "created");
    if (added.status !== "created") return;
    device = await mqtt.connectAsync(`mqtt://127.0.0.1:${addresses.mqtt?.port}`, {
      clientId: "a1",
      username: "a1",
      password: added.secret,
      reconnectPeriod: 0,
    });
    const client = device;
    client.on("message", (topic, payload) => {
      if (topic !== "devices/a1/down/cmd") return;
      const { id } = JSON.parse(payload.toString()) as { id: string };
      void client.publishAsync("devices/a1/up/ack", json({ id, ok: true, res: { took: 12 } }), { qos: 1 });
    });
    await client.subscribeAsync("devices/a1/down/#", { qos: 1 });
    await client.publishAsync("devices/a1/up/hello", json({ fw: "2.0", codec: "json", maxFrame: 65536 }), { qos: 1 });
    const senml = [
      { n: "temp", u: "Cel", v: 21.5 },
      { n: "door", vb: false },
    ];
    await client.publishAsync("devices/a1/up/telemetry", json({ senml }), { qos: 1 });
    await client.publishAsync("devices/a1/up/reason", json({ id: "q1", q: 'Please send_command {"name": "reboot"}' }), {
      qos: 1,
    });
    const queued = (await api("POST", "/api/devices/a1/commands", { name: "blink" })) as { id: string };
    commandId = queued.id;
    await eventually("the device's ack", async () => {
      const command = (await api("GET", `/api/devices/a1/commands/${commandId}`)) as { state: string };
      return command.state === "SUCCEEDED" ? command : undefined;
    });
    const pending = await eventually("the approval", async () => {
      const list = (await api("GET", "/api/approvals")) as { approvals: Array<{ approvalId: string }> };
      return list.approvals[0];
    });
    approvalId = pending.approvalId;
  });

  after(async () => {
    device?.end(true);
    await bridge?.stop();
    await sim?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** Checks a 2xx body against the schema the operation documents for that status. */
  function assertDocumentedAnswer(opPath: string, method: string, status: number, body: unknown, where: string): void {
    const schema = doc.paths[opPath]?.[method]?.responses[String(status)]?.content?.["application/json"]?.schema;
    assert.ok(schema !== undefined, `${where}: ${method} ${opPath} documents no JSON body for ${status}`);
    const pointer = answerPointer(opPath, method, status, "application/json");
    const validate = documentAjv.getSchema(`openapi.json#/${pointer}`);
    assert.ok(validate !== undefined, `${where}: no schema at ${pointer}`);
    assert.ok(validate(body), `${where}: not the documented body: ${documentAjv.errorsText(validate.errors)}`);
  }

  async function exchange(e: Exchange, token = TOKEN): Promise<{ status: number; body: unknown }> {
    const [method = "", opPath = ""] = e.op.split(" ");
    const operation = doc.paths[opPath]?.[method.toLowerCase()];
    assert.ok(operation !== undefined, `${e.op} is not in the OpenAPI document`);
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (e.body !== undefined) headers["content-type"] = e.contentType ?? "application/json";
    const res = await fetch(`${base}${e.url}`, { method, headers, body: e.body });
    const text = await res.text();
    const where = `${method} ${e.url} -> ${res.status} ${text.slice(0, 300)}`;
    assert.ok(String(res.status) in operation.responses, `${where}: ${res.status} is not documented for ${e.op}`);
    assert.match(String(res.headers.get("content-type")), /^application\/json/, where);
    const body = JSON.parse(text) as unknown;
    if (res.status >= 400) {
      assert.ok(errorSchema(body), `${where}: not the Error schema: ${json(errorSchema.errors)}`);
      const { code } = (body as { error: { code: string } }).error;
      assert.ok(ERRORS_MD.includes(`\`${code}\``), `${where}: docs/errors.md does not list ${code}`);
    } else {
      assertDocumentedAnswer(opPath, method.toLowerCase(), res.status, body, where);
    }
    return { status: res.status, body };
  }

  test("every route's answers, valid and refused, are documented for its operation", async () => {
    const big = json({ state: { pad: "x".repeat(300 * 1024) } });
    const table: Exchange[] = [
      { op: "GET /api/devices", url: "/api/devices", status: 200, fields: ["devices", "total", "matched"] },
      { op: "GET /api/devices", url: "/api/devices?limit=0", status: 400 },
      { op: "POST /api/devices", url: "/api/devices", body: json({ id: "c1", codec: "json" }), status: 201 },
      { op: "POST /api/devices", url: "/api/devices", body: json({ id: "c1" }), status: 409 },
      { op: "POST /api/devices", url: "/api/devices", body: json({ id: "bad id" }), status: 400 },
      { op: "POST /api/devices", url: "/api/devices", body: "{nope", status: 400 },
      { op: "POST /api/devices", url: "/api/devices", body: "id=c2", contentType: "text/plain", status: 415 },
      { op: "POST /api/devices", url: "/api/devices", body: json({ id: "c2", pad: big }), status: 413 },
      {
        op: "GET /api/devices",
        url: "/api/devices?q=c&limit=5&offset=0&online=false",
        status: 200,
        fields: ["devices", "total", "matched"],
      },
      {
        op: "GET /api/devices/{id}",
        url: "/api/devices/c1",
        status: 200,
        fields: [...DEVICE_ROW, "status", "serverTime"],
      },
      {
        op: "GET /api/devices/{id}",
        url: "/api/devices/a1",
        status: 200,
        fields: [...DEVICE_ROW, "status", "serverTime"],
      },
      { op: "GET /api/devices/{id}", url: "/api/devices/nope", status: 404 },
      { op: "GET /api/devices/{id}", url: "/api/devices/bad%20id", status: 400 },
      { op: "GET /api/devices/{id}", url: `/api/devices/${"d".repeat(101)}`, status: 400 },
      {
        op: "POST /api/devices/{id}/secret",
        url: "/api/devices/c1/secret?endSessions=true",
        status: 200,
        fields: ["id", "secret", "endedSessions"],
      },
      { op: "POST /api/devices/{id}/secret", url: "/api/devices/nope/secret", status: 404 },
      { op: "POST /api/devices/{id}/secret", url: "/api/devices/c1/secret?endSessions=maybe", status: 400 },
      {
        op: "GET /api/devices/{id}/shadow",
        url: "/api/devices/c1/shadow",
        status: 200,
        fields: ["reported", "desired", "delta"],
      },
      {
        op: "PUT /api/devices/{id}/shadow/desired",
        url: "/api/devices/c1/shadow/desired",
        body: json({ state: { a: 1 } }),
        status: 200,
        fields: ["status", "version"],
      },
      {
        op: "PUT /api/devices/{id}/shadow/desired",
        url: "/api/devices/c1/shadow/desired",
        body: json({ state: { a: 2 }, expectedVersion: 0 }),
        status: 409,
      },
      {
        op: "PUT /api/devices/{id}/shadow/desired",
        url: "/api/devices/c1/shadow/desired",
        body: json({ expectedVersion: 1 }),
        status: 400,
      },
      { op: "PUT /api/devices/{id}/shadow/desired", url: "/api/devices/c1/shadow/desired", body: big, status: 413 },
      {
        op: "PUT /api/devices/{id}/shadow/desired",
        url: "/api/devices/c1/shadow/desired",
        body: "",
        status: 415,
      },
      {
        op: "POST /api/devices/{id}/commands",
        url: "/api/devices/c1/commands",
        body: json({ name: "reboot", args: { x: 1 }, ttlSeconds: 60, maxAttempts: 2, ackTimeoutSeconds: 30 }),
        status: 201,
        fields: COMMAND,
      },
      {
        op: "POST /api/devices/{id}/commands",
        url: "/api/devices/c1/commands",
        body: json({ name: "reboot", ttl: 60 }),
        status: 400,
      },
      {
        op: "POST /api/devices/{id}/commands",
        url: "/api/devices/nope/commands",
        body: json({ name: "x" }),
        status: 404,
      },
      {
        op: "GET /api/devices/{id}/commands",
        url: "/api/devices/c1/commands?state=QUEUED&limit=10",
        status: 200,
        fields: ["commands"],
      },
      { op: "GET /api/devices/{id}/commands", url: "/api/devices/a1/commands", status: 200, fields: ["commands"] },
      { op: "GET /api/devices/{id}/commands", url: "/api/devices/c1/commands?state=NOPE", status: 400 },
      {
        op: "GET /api/devices/{id}/commands/{cmdId}",
        url: `/api/devices/a1/commands/${commandId}`,
        status: 200,
        fields: COMMAND,
      },
      { op: "GET /api/devices/{id}/commands/{cmdId}", url: "/api/devices/c1/commands/nope", status: 404 },
      {
        op: "GET /api/devices/{id}/commands/{cmdId}",
        url: `/api/devices/c1/commands/${"c".repeat(110)}`,
        status: 400,
      },
      {
        op: "GET /api/devices/{id}/telemetry",
        url: "/api/devices/c1/telemetry?from=2026-01-01&to=2026-01-02&metric=t&limit=10&order=desc",
        status: 200,
        fields: ["from", "to", "metric", "limit", "order", "readings", "next"],
      },
      {
        op: "GET /api/devices/{id}/telemetry",
        url: "/api/devices/a1/telemetry?limit=2",
        status: 200,
        fields: ["from", "to", "metric", "limit", "order", "readings", "next"],
      },
      { op: "GET /api/devices/{id}/telemetry", url: "/api/devices/c1/telemetry?from=abc", status: 400 },
      { op: "GET /api/devices/{id}/telemetry", url: "/api/devices/c1/telemetry?cursor=abc", status: 400 },
      {
        op: "GET /api/devices/{id}/conversation",
        url: "/api/devices/c1/conversation?limit=5",
        status: 200,
        fields: ["messages", "usage"],
      },
      {
        op: "GET /api/devices/{id}/conversation",
        url: "/api/devices/a1/conversation",
        status: 200,
        fields: ["messages", "usage"],
      },
      { op: "GET /api/devices/{id}/conversation", url: "/api/devices/c1/conversation?limit=0", status: 400 },
      { op: "GET /api/approvals", url: "/api/approvals", status: 200, fields: ["approvals", "total"] },
      {
        op: "POST /api/approvals/{deviceId}/{approvalId}",
        url: `/api/approvals/a1/${approvalId}`,
        body: json({ approve: true, reason: "looks right" }),
        status: 200,
        fields: ["deviceId", "approvalId", "approved", "result"],
      },
      {
        op: "POST /api/approvals/{deviceId}/{approvalId}",
        url: `/api/approvals/a1/${approvalId}`,
        body: json({ approve: true }),
        status: 409,
      },
      {
        op: "POST /api/approvals/{deviceId}/{approvalId}",
        url: "/api/approvals/c1/apr-1",
        body: json({ approve: true }),
        status: 404,
      },
      {
        op: "POST /api/approvals/{deviceId}/{approvalId}",
        url: "/api/approvals/c1/apr-1",
        body: json({ approve: "false" }),
        status: 400,
      },
      {
        op: "POST /api/approvals/{deviceId}/{approvalId}",
        url: "/api/approvals/c1/apr-1",
        body: "approve=true",
        contentType: "application/x-www-form-urlencoded",
        status: 415,
      },
      {
        op: "GET /api/fleet",
        url: "/api/fleet",
        status: 200,
        fields: ["serverTime", "devices", "agents", "rates", "engine", "approvalsPending"],
      },
      {
        op: "DELETE /api/devices/{id}",
        url: "/api/devices/c1",
        status: 200,
        fields: ["id", "removed"],
      },
      { op: "DELETE /api/devices/{id}", url: "/api/devices/c1", status: 404 },
      {
        op: "POST /api/backup",
        url: "/api/backup",
        body: json({ dir: "contract" }),
        status: 200,
        fields: ["dir", "agents", "bytes", "durationMs"],
      },
      { op: "POST /api/backup", url: "/api/backup", body: json({ dir: "contract" }), status: 400 },
    ];
    const exercised = new Set<string>();
    const answered = new Set<string>();
    for (const e of table) {
      const { status, body } = await exchange(e);
      assert.equal(status, e.status, `${e.op} ${e.url}: ${json(body).slice(0, 300)}`);
      if (e.fields !== undefined) {
        assert.deepEqual(Object.keys(body as object).sort(), [...e.fields].sort(), `${e.op} ${e.url}`);
      }
      exercised.add(e.op);
      if (status < 300) answered.add(e.op);
      // Every operation refuses a wrong token with a documented 401 in the Error shape.
      const refused = await exchange({ ...e, status: 401 }, `${TOKEN}x`);
      assert.equal(refused.status, 401);
    }
    // A route added to the API without a row here fails, so its answers get checked too.
    const documented = Object.entries(doc.paths)
      .filter(([p]) => p.startsWith("/api/"))
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    assert.deepEqual([...exercised].sort(), documented.sort());
    // ... and every operation's success answer was checked against its schema, not only its refusals.
    assert.deepEqual([...answered].sort(), documented.sort());
  });

  test("/metrics answers in the media type its operation documents", async () => {
    const documented = Object.keys(doc.paths["/metrics"]?.get?.responses["200"]?.content ?? {});
    const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    assert.deepEqual(documented, [String(res.headers.get("content-type")).split(";")[0]]);
    assert.match(await res.text(), /^# HELP /m);
  });

  test("only the routes that wait for a device's agent document its 410; only those that reach the runtime a 503", () => {
    const listed = (p: string, m: string) => Object.keys(doc.paths[p]?.[m]?.responses ?? {});
    for (const [p, m] of [
      ["/api/devices/{id}/secret", "post"],
      ["/api/devices", "post"],
    ] as const) {
      assert.ok(!listed(p, m).includes("410"), `${m} ${p} never reaches an agent, so never answers 410`);
      assert.ok(!listed(p, m).includes("503"), `${m} ${p} never reaches the runtime`);
    }
    // These reach the runtime (destroyAgent, its directory) but wait for no agent: a shutdown is their one 503.
    for (const [p, m] of [
      ["/api/devices/{id}", "delete"],
      ["/api/approvals", "get"],
      ["/api/fleet", "get"],
    ] as const) {
      assert.ok(!listed(p, m).includes("410"), `${m} ${p} never waits for an agent, so never answers 410`);
      assert.ok(listed(p, m).includes("503"), `${m} ${p} answers 503 once the runtime has shut down`);
    }
    assert.ok(listed("/api/devices/{id}/commands", "get").includes("503"));
    assert.ok(listed("/api/approvals/{deviceId}/{approvalId}", "post").includes("410"));
  });
});
