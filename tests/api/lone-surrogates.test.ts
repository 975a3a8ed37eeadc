/**
 * Text that no device frame can carry is refused at the API's door: a lone surrogate (`"\ud800"`, which `JSON.parse`
 * takes and UTF-8 cannot hold) anywhere in a body, in a value or a key, is a 400 naming the field, and nothing is
 * stored; so is a body that is not valid UTF-8 (a surrogate written as bytes), which would otherwise be stored as
 * U+FFFD. A surrogate pair (an emoji), escaped or not, passes byte for byte.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";

type ErrorBody = { error: { code: string; message: string; field?: string } };

/** U+1F600 as UTF-8. */
const EMOJI_UTF8 = Buffer.from([0xf0, 0x9f, 0x98, 0x80]);

describe("lone surrogates in request bodies", () => {
  let f: ApiFixture;
  before(async () => {
    f = await createApiFixture();
    await f.provision("lone-1");
  });
  after(() => f.close());

  const send = (method: "POST" | "PUT", url: string, payload: string | Buffer) =>
    f.app.inject({ method, url, headers: { ...AUTH, "content-type": "application/json" }, payload });
  const get = (url: string) => f.app.inject({ method: "GET", url, headers: AUTH });

  function assertRefused(res: { statusCode: number; body: string }, field: string, problem: RegExp): void {
    assert.equal(res.statusCode, 400, res.body);
    const body = JSON.parse(res.body) as ErrorBody;
    assert.equal(body.error.code, "BRIDGE_ERR_API_VALIDATION", res.body);
    assert.equal(body.error.field, field, res.body);
    assert.ok(body.error.message.startsWith(`${field}: `), res.body);
    assert.match(body.error.message.slice(field.length + 2), problem, res.body);
    // The answer itself is well-formed text: the key at fault is named by its escape.
    assert.ok((res.body as string & { isWellFormed(): boolean }).isWellFormed());
  }

  async function desired(): Promise<{ version: number; state: Record<string, unknown> }> {
    const res = await get("/api/devices/lone-1/shadow");
    assert.equal(res.statusCode, 200, res.body);
    return (res.json() as { desired: { version: number; state: Record<string, unknown> } }).desired;
  }

  test("a desired-state patch with a lone surrogate in a value or a key is refused naming it, and not stored", async () => {
    assertRefused(
      await send("PUT", "/api/devices/lone-1/shadow/desired", '{"state":{"label":"x\\ud800"}}'),
      "body.state.label",
      /^text holds a lone surrogate \\ud800/,
    );
    assertRefused(
      await send("PUT", "/api/devices/lone-1/shadow/desired", '{"state":{"nested":{"k\\udc00":1}}}'),
      "body.state.nested.k\\udc00",
      /^a key holds a lone surrogate \\udc00/,
    );
    assert.deepEqual(await desired(), { version: 0, state: {} });
  });

  test("a command whose name or args hold a lone surrogate is refused naming the field, and not queued", async () => {
    assertRefused(
      await send("POST", "/api/devices/lone-1/commands", '{"name":"blink\\udbff"}'),
      "body.name",
      /^text holds a lone surrogate/,
    );
    assertRefused(
      await send("POST", "/api/devices/lone-1/commands", '{"name":"blink","args":{"colors":["red","\\ude00"]}}'),
      "body.args.colors[1]",
      /^text holds a lone surrogate/,
    );
    const list = (await get("/api/devices/lone-1/commands")).json() as { commands: unknown[] };
    assert.deepEqual(list.commands, []);
  });

  test("provisioning and approvals refuse one too, before any registry or agent sees it", async () => {
    assertRefused(
      await send("POST", "/api/devices", '{"id":"lone-2","agentClass":"Thermo\\ud800"}'),
      "body.agentClass",
      /^text holds a lone surrogate/,
    );
    assert.equal((await get("/api/devices/lone-2")).statusCode, 404, "the device was not provisioned");
    assertRefused(
      await send("POST", "/api/approvals/lone-1/apr-1", '{"approve":false,"reason":"\\udfff"}'),
      "body.reason",
      /^text holds a lone surrogate/,
    );
  });

  test("a body that is itself a string with a lone surrogate is refused naming the body", async () => {
    const res = await send("PUT", "/api/devices/lone-1/shadow/desired", '"\\ud800"');
    assert.equal(res.statusCode, 400, res.body);
    assert.deepEqual(res.json(), {
      error: {
        code: "BRIDGE_ERR_API_VALIDATION",
        message: "body: text holds a lone surrogate \\ud800, which UTF-8 cannot carry",
        field: "body",
      },
    });
  });

  test("a body that is not valid UTF-8 (a surrogate written as bytes) is refused, not stored as U+FFFD", async () => {
    const cesu = Buffer.concat([
      Buffer.from('{"state":{"label":"'),
      Buffer.from([0xed, 0xa0, 0x80]),
      Buffer.from('"}}'),
    ]);
    const res = await send("PUT", "/api/devices/lone-1/shadow/desired", cesu);
    assert.equal(res.statusCode, 400, res.body);
    assert.deepEqual(res.json(), {
      error: { code: "BRIDGE_ERR_API_VALIDATION", message: "body is not valid UTF-8", field: "body" },
    });
    const latin1 = await send(
      "PUT",
      "/api/devices/lone-1/shadow/desired",
      Buffer.from('{"state":{"c":"caf\xe9"}}', "latin1"),
    );
    assert.equal(latin1.statusCode, 400, latin1.body);
    assert.deepEqual(await desired(), { version: 0, state: {} });
  });

  test("a surrogate pair, escaped or as UTF-8, is stored and answered byte for byte", async () => {
    const raw = Buffer.concat([Buffer.from('{"state":{"raw":"'), EMOJI_UTF8, Buffer.from('"}}')]);
    assert.equal((await send("PUT", "/api/devices/lone-1/shadow/desired", raw)).statusCode, 200);
    const escaped = '{"state":{"escaped":"\\ud83d\\ude00","\\ud83d\\ude00":1}}';
    assert.equal((await send("PUT", "/api/devices/lone-1/shadow/desired", escaped)).statusCode, 200);
    const res = await get("/api/devices/lone-1/shadow");
    const state = (res.json() as { desired: { state: Record<string, unknown> } }).desired.state;
    assert.deepEqual(state, { raw: "😀", escaped: "😀", "😀": 1 });
    // Three times in `desired` and three in `delta` of the answer's bytes, as the four UTF-8 bytes of U+1F600.
    const bytes = res.rawPayload;
    let count = 0;
    for (let at = bytes.indexOf(EMOJI_UTF8); at !== -1; at = bytes.indexOf(EMOJI_UTF8, at + 1)) count++;
    assert.equal(count, 6);
    assert.equal(bytes.indexOf(Buffer.from([0xef, 0xbf, 0xbd])), -1, "no U+FFFD");
    const created = await send(
      "POST",
      "/api/devices/lone-1/commands",
      Buffer.concat([Buffer.from('{"name":"show","args":"'), EMOJI_UTF8, Buffer.from('"}')]),
    );
    assert.equal(created.statusCode, 201, created.body);
    assert.equal((created.json() as { args: unknown }).args, "😀");
  });
});
