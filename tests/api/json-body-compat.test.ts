/**
 * The API's strict body parser (json-body.ts) takes every body fastify's default JSON parser took: a content type with
 * a charset, a leading UTF-8 byte order mark, empty objects, escapes, whitespace, numbers written with a fraction or an
 * exponent in fields that take integers, and large arrays within the body limit. It refuses more only where the docs
 * say so: duplicate keys (json-big-integers.test.ts), lone surrogates and bodies that are not UTF-8
 * (lone-surrogates.test.ts).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { API_BODY_LIMIT_BYTES } from "../../app/api/register.ts";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

describe("bodies the default JSON parser took", () => {
  let f: ApiFixture;
  before(async () => {
    f = await createApiFixture();
    await f.provision("compat-1");
  });
  after(() => f.close());

  const putDesired = (payload: string | Buffer, contentType = "application/json") =>
    f.app.inject({
      method: "PUT",
      url: "/api/devices/compat-1/shadow/desired",
      headers: { ...AUTH, "content-type": contentType },
      payload,
    });

  async function desired(): Promise<{ version: number; state: Record<string, unknown> }> {
    const res = await f.app.inject({ method: "GET", url: "/api/devices/compat-1/shadow", headers: AUTH });
    assert.equal(res.statusCode, 200, res.body);
    return (res.json() as { desired: { version: number; state: Record<string, unknown> } }).desired;
  }

  test("a content type with a charset, in any case", async () => {
    for (const type of ["application/json; charset=utf-8", "Application/JSON; Charset=UTF-8"]) {
      const res = await putDesired('{"state":{"mode":"eco"}}', type);
      assert.equal(res.statusCode, 200, `${type}: ${res.body}`);
    }
  });

  test("a body that starts with a UTF-8 byte order mark (Windows tools write one)", async () => {
    const res = await putDesired(Buffer.concat([UTF8_BOM, Buffer.from('{"state":{"bom":true}}')]));
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await desired()).state.bom, true);
  });

  test("a byte order mark alone is not JSON, as before", async () => {
    const res = await putDesired(UTF8_BOM);
    assert.equal(res.statusCode, 400, res.body);
    assert.match(res.body, /not valid JSON/);
  });

  test("a syntax error is a 400 naming the parser's problem and where it stopped", async () => {
    const cases: Array<[string, string]> = [
      ['{"state":}', 'body is not valid JSON: unexpected "}" at position 9'],
      ['{"state":{}', "body is not valid JSON: unexpected end at position 11"],
      ['{"state":{}} x', "body is not valid JSON: trailing characters at position 13"],
    ];
    for (const [payload, message] of cases) {
      const res = await putDesired(payload);
      assert.equal(res.statusCode, 400, res.body);
      assert.deepEqual(res.json(), { error: { code: "BRIDGE_ERR_API_VALIDATION", message, field: "body" } });
    }
  });

  test("empty objects, escapes and whitespace", async () => {
    const res = await putDesired(
      ' \n\t{ "state" : { "t" : "\\u00e9\\ud83d\\ude00\\n\\"q\\"" , "e" : { } , "a" : [ ] } }\r\n',
    );
    assert.equal(res.statusCode, 200, res.body);
    const { state } = await desired();
    assert.equal(state.t, 'é😀\n"q"');
    assert.deepEqual(state.e, {});
    assert.deepEqual(state.a, []);
    assert.equal((await putDesired('{"state":{}}')).statusCode, 200);
  });

  test("integer fields take integral numbers written as 1.0, 1e2 or -0", async () => {
    const { version } = await desired();
    const res = await putDesired(`{"state":{"v":1},"expectedVersion":${version}.0}`);
    assert.equal(res.statusCode, 200, res.body);
    const created = await f.app.inject({
      method: "POST",
      url: "/api/devices/compat-1/commands",
      headers: { ...AUTH, "content-type": "application/json" },
      payload: '{"name":"reboot","ttlSeconds":1e2,"maxAttempts":3.0}',
    });
    assert.equal(created.statusCode, 201, created.body);
    const command = created.json() as { maxAttempts: number; createdAt: number; expiresAt: number };
    assert.equal(command.maxAttempts, 3);
    assert.equal(command.expiresAt - command.createdAt, 100_000);

    await f.provision("compat-2");
    const fresh = await f.app.inject({
      method: "PUT",
      url: "/api/devices/compat-2/shadow/desired",
      headers: { ...AUTH, "content-type": "application/json" },
      payload: '{"state":{"v":1},"expectedVersion":-0}',
    });
    assert.equal(fresh.statusCode, 200, fresh.body);
  });

  test("a large array just within the body limit", async () => {
    const head = '{"state":{"samples":[';
    const tail = "]}}";
    const items: string[] = [];
    let size = head.length + tail.length;
    for (let i = 0; size + 8 < API_BODY_LIMIT_BYTES; i++) {
      const item = String(i % 100_000);
      items.push(item);
      size += item.length + 1;
    }
    const body = `${head}${items.join(",")}${tail}`;
    assert.ok(body.length <= API_BODY_LIMIT_BYTES && body.length > API_BODY_LIMIT_BYTES - 16);
    const res = await putDesired(body);
    assert.equal(res.statusCode, 200, res.body.slice(0, 300));
    assert.equal(((await desired()).state.samples as unknown[]).length, items.length);
  });
});
