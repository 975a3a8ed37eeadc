/**
 * Integers beyond ±(2^53-1) in API bodies reach the agent exactly (as the device protocol carries them), instead of
 * JSON.parse rounding them to a float; the API's own fields refuse them by name. The body parser that does this keeps
 * every refusal the default one made (syntax, empty body, prototype poisoning, depth).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";

type ErrorBody = { error: { code: string; message: string; field?: string } };

const JSON_HEADERS = { ...AUTH, "content-type": "application/json" };

describe("big integers in API bodies", () => {
  let f: ApiFixture;
  before(async () => {
    f = await createApiFixture();
    await f.provision("big-1");
  });
  after(() => f.close());

  /** Sends `payload` as written: JSON.stringify could not write the integers these tests are about. */
  const send = (method: "POST" | "PUT", url: string, payload: string) =>
    f.app.inject({ method, url, headers: JSON_HEADERS, payload });

  function assertRefused(
    res: { statusCode: number; body: string; json(): unknown },
    status: number,
    field: string,
    message: RegExp,
  ) {
    assert.equal(res.statusCode, status, res.body);
    const body = res.json() as ErrorBody;
    assert.equal(body.error.code, "BRIDGE_ERR_API_VALIDATION");
    assert.equal(body.error.field, field);
    assert.match(body.error.message, message);
  }

  test("command args carry an integer beyond 2^53 exactly to the agent", async () => {
    const res = await send(
      "POST",
      "/api/devices/big-1/commands",
      '{"name":"flash","args":{"serial":12345678901234567890123,"neg":-98765432109876543210,"safe":9007199254740991,"f":1e300}}',
    );
    assert.equal(res.statusCode, 201, res.body);
    const created = res.json() as { id: string; args: Record<string, unknown> };
    // The answer follows the API's output mapping: a bigint beyond a double's range is a decimal string.
    assert.deepEqual(created.args, {
      serial: "12345678901234567890123",
      neg: "-98765432109876543210",
      safe: 9007199254740991,
      f: 1e300,
    });
    const stored = await f.runtime.call("big-1", "getCommand", [created.id]);
    assert.ok(stored.ok);
    const args = (stored.value as { args: Record<string, unknown> }).args;
    assert.equal(args.serial, 12345678901234567890123n);
    assert.equal(args.neg, -98765432109876543210n);
    assert.equal(args.safe, 9007199254740991);
    assert.equal(args.f, 1e300);
  });

  test("a desired-state patch keeps a 64-bit counter exactly", async () => {
    const res = await send("PUT", "/api/devices/big-1/shadow/desired", '{"state":{"counter":18446744073709551621}}');
    assert.equal(res.statusCode, 200, res.body);
    const shadow = await f.runtime.call("big-1", "getShadow", []);
    assert.ok(shadow.ok);
    assert.equal(
      (shadow.value as { desired: { state: { counter: unknown } } }).desired.state.counter,
      18446744073709551621n,
    );
  });

  test("an API field that takes a number refuses a big integer by name, never rounding it", async () => {
    assertRefused(
      await send("PUT", "/api/devices/big-1/shadow/desired", '{"state":{},"expectedVersion":12345678901234567890123}'),
      400,
      "body.expectedVersion",
      /^body\.expectedVersion is 12345678901234567890123, beyond the integers this field takes$/,
    );
    assertRefused(
      await send("POST", "/api/devices/big-1/commands", '{"name":"x","ttlSeconds":99999999999999999999}'),
      400,
      "body.ttlSeconds",
      /^body\.ttlSeconds is 99999999999999999999, beyond/,
    );
  });

  test("duplicate keys are refused naming the key, as device JSON refuses them", async () => {
    assertRefused(
      await send("PUT", "/api/devices/big-1/shadow/desired", '{"state":{"a":1,"a":2}}'),
      400,
      "body.state.a",
      /^body\.state\.a: duplicate map key$/,
    );
  });

  test("the parser's other refusals are the ones the default parser made", async () => {
    assertRefused(await send("PUT", "/api/devices/big-1/shadow/desired", '{"state":'), 400, "body", /not valid JSON/);
    assertRefused(await send("PUT", "/api/devices/big-1/shadow/desired", ""), 415, "body", /send a JSON body/);
    assertRefused(
      await send("PUT", "/api/devices/big-1/shadow/desired", '{"state":{"__proto__":{"x":1}}}'),
      400,
      "body.state.__proto__",
      /__proto__/,
    );
    assertRefused(
      await send("PUT", "/api/devices/big-1/shadow/desired", '{"state":{"constructor":{"prototype":{"x":1}}}}'),
      400,
      "body.state.constructor",
      /prototype/,
    );
    const deep = `{"state":${'{"a":'.repeat(30)}1${"}".repeat(30)}}`;
    assertRefused(
      await send("PUT", "/api/devices/big-1/shadow/desired", deep),
      400,
      "body",
      /^body nests deeper than 18$/,
    );
  });
});
