/**
 * The OpenAPI document (/openapi.json) against what a real bridge answers over loopback: every status a route
 * answers is one its operation documents, every error body is the document's Error schema with a code docs/errors.md
 * lists, and every 2xx has the fields docs/api.md names. A route that starts answering a status its document does not
 * list, or a document that drops one, fails here.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Ajv, type ValidateFunction } from "ajv";
import type { Bridge } from "../../app/bridge.ts";
import { createLoopbackBridge } from "../support/in-process-bridge.ts";

const TOKEN = "openapi-contract-token-0123456789";
const ERRORS_MD = fs.readFileSync(path.join(import.meta.dirname, "../../docs/errors.md"), "utf8");

interface Operation {
  responses: Record<string, { description: string; content?: unknown }>;
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
  "createdAt",
  "expiresAt",
  "sentAt",
  "doneAt",
  "result",
  "error",
];
const json = (value: unknown) => JSON.stringify(value);

describe("the OpenAPI document matches the bridge's real answers", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "openapi-contract-"));
  let bridge: Bridge;
  let base = "";
  let doc: OpenApiDoc;
  let errorSchema: ValidateFunction;

  before(async () => {
    bridge = await createLoopbackBridge({ dataDir, apiToken: TOKEN });
    const addresses = await bridge.start();
    base = `http://127.0.0.1:${addresses.http?.port}`;
    const res = await fetch(`${base}/openapi.json`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    doc = (await res.json()) as OpenApiDoc;
    errorSchema = new Ajv({ strict: false }).compile(doc.components.schemas.Error);
  });

  after(async () => {
    await bridge?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

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
        body: json({ name: "reboot", args: { x: 1 }, ttlSeconds: 60, maxAttempts: 2 }),
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
      { op: "GET /api/devices/{id}/commands", url: "/api/devices/c1/commands?state=NOPE", status: 400 },
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
      { op: "GET /api/devices/{id}/telemetry", url: "/api/devices/c1/telemetry?from=abc", status: 400 },
      { op: "GET /api/devices/{id}/telemetry", url: "/api/devices/c1/telemetry?cursor=abc", status: 400 },
      {
        op: "GET /api/devices/{id}/conversation",
        url: "/api/devices/c1/conversation?limit=5",
        status: 200,
        fields: ["messages", "usage"],
      },
      { op: "GET /api/devices/{id}/conversation", url: "/api/devices/c1/conversation?limit=0", status: 400 },
      { op: "GET /api/approvals", url: "/api/approvals", status: 200, fields: ["approvals", "total"] },
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
    ];
    const exercised = new Set<string>();
    for (const e of table) {
      const { status, body } = await exchange(e);
      assert.equal(status, e.status, `${e.op} ${e.url}: ${json(body).slice(0, 300)}`);
      if (e.fields !== undefined) {
        assert.deepEqual(Object.keys(body as object).sort(), [...e.fields].sort(), `${e.op} ${e.url}`);
      }
      exercised.add(e.op);
      // Every operation refuses a wrong token with a documented 401 in the Error shape.
      const refused = await exchange({ ...e, status: 401 }, `${TOKEN}x`);
      assert.equal(refused.status, 401);
    }
    // A route added to the API without a row here fails, so its answers get checked too.
    const documented = Object.entries(doc.paths)
      .filter(([p]) => p.startsWith("/api/"))
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    assert.deepEqual([...exercised].sort(), documented.sort());
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
