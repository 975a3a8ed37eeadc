/**
 * Ids in a path follow the agent id rule (codecs/device-id.ts: 1 to 64 characters), as the same ids do in a body:
 * every valid id reaches its route, and an over-long one, whatever its length, is the 400 that names the parameter
 * and states the rule. Before, the router refused any parameter over 100 characters first (414, naming only the
 * url), and the schemas let command and approval ids run to 128 characters, so a valid one could never be asked for.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Bridge } from "../../app/bridge.ts";
import { DEVICE_ID_RULE } from "../../codecs/device-id.ts";
import { createLoopbackBridge } from "../support/in-process-bridge.ts";

const TOKEN = "path-id-length-token-0123456789";
/** Over the rule, over the router's old limit, over the schemas' old limit, and far beyond. */
const OVER_LONG = [65, 101, 129, 8000];

interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

describe("ids in a path follow the agent id rule", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "path-id-length-"));
  let bridge: Bridge;
  let base = "";

  before(async () => {
    bridge = await createLoopbackBridge({ dataDir, apiToken: TOKEN });
    const addresses = await bridge.start();
    base = `http://127.0.0.1:${addresses.http?.port}`;
    const added = await bridge.registry.add("d1", { codec: "json" });
    assert.equal(added.status, "created");
  });

  after(async () => {
    await bridge?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function call(method: string, url: string, body?: object): Promise<{ status: number; body: ErrorBody }> {
    const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${base}${url}`, { method, headers, body: body && JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as ErrorBody };
  }

  test("a device id of 64 characters reaches the route; a longer one is a 400 stating the rule", async () => {
    assert.equal((await call("GET", `/api/devices/${"d".repeat(64)}`)).status, 404);
    for (const length of OVER_LONG) {
      for (const url of [`/api/devices/${"d".repeat(length)}`, `/api/devices/${"d".repeat(length)}/shadow`]) {
        const res = await call("GET", url);
        assert.equal(res.status, 400, `${length}: ${JSON.stringify(res.body).slice(0, 200)}`);
        assert.equal(res.body.error.code, "BRIDGE_ERR_API_VALIDATION");
        assert.equal(res.body.error.field, "params.id");
        assert.equal(res.body.error.message, `params.id must be ${DEVICE_ID_RULE}`);
      }
    }
  });

  test("command and approval ids take the same length: 64 characters reach the agent, longer ones are a 400", async () => {
    const cmd = await call("GET", `/api/devices/d1/commands/${"c".repeat(64)}`);
    assert.equal(cmd.status, 404, JSON.stringify(cmd.body));
    assert.equal(cmd.body.error.code, "BRIDGE_ERR_API_COMMAND_NOT_FOUND");
    const approval = await call("POST", `/api/approvals/d1/${"a".repeat(64)}`, { approve: true });
    assert.equal(approval.status, 404, JSON.stringify(approval.body));
    assert.equal(approval.body.error.code, "BRIDGE_ERR_API_APPROVAL_NOT_FOUND");
    for (const length of OVER_LONG) {
      const overCmd = await call("GET", `/api/devices/d1/commands/${"c".repeat(length)}`);
      assert.equal(overCmd.status, 400, `${length}: ${JSON.stringify(overCmd.body).slice(0, 200)}`);
      assert.equal(overCmd.body.error.field, "params.cmdId");
      assert.match(overCmd.body.error.message, /^params\.cmdId must NOT have more than 64 characters/);
      const overApproval = await call("POST", `/api/approvals/d1/${"a".repeat(length)}`, { approve: true });
      assert.equal(overApproval.status, 400, `${length}: ${JSON.stringify(overApproval.body).slice(0, 200)}`);
      assert.equal(overApproval.body.error.field, "params.approvalId");
      const overDevice = await call("POST", `/api/approvals/${"d".repeat(length)}/ap-1`, { approve: true });
      assert.equal(overDevice.status, 400);
      assert.equal(overDevice.body.error.message, `params.deviceId must be ${DEVICE_ID_RULE}`);
    }
  });

  test("the OpenAPI document states the same limit and no 414", async () => {
    const res = await fetch(`${base}/openapi.json`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const doc = (await res.json()) as {
      paths: Record<
        string,
        Record<
          string,
          { parameters?: Array<{ name: string; schema: { maxLength?: number } }>; responses: Record<string, unknown> }
        >
      >;
    };
    const param = (p: string, m: string, name: string) =>
      doc.paths[p]?.[m]?.parameters?.find((x) => x.name === name)?.schema;
    assert.equal(param("/api/devices/{id}/commands/{cmdId}", "get", "cmdId")?.maxLength, 64);
    assert.equal(param("/api/approvals/{deviceId}/{approvalId}", "post", "approvalId")?.maxLength, 64);
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(ops)) assert.ok(!("414" in op.responses), `${m} ${p} documents a 414`);
    }
  });
});
