import assert from "node:assert/strict";
import { after, test } from "node:test";
import Fastify from "fastify";
import { isValidDeviceId } from "../../codecs/index.ts";
import { DASHBOARD_CSP, dashboardLink, registerDashboard } from "../../app/dashboard/index.ts";

const app = Fastify();
after(() => app.close());

test("the page and its modules are served with their types and a strict content security policy", async () => {
  await registerDashboard(app);
  const page = await app.inject({ method: "GET", url: "/" });
  assert.equal(page.statusCode, 200);
  assert.match(String(page.headers["content-type"]), /^text\/html/);
  assert.equal(page.headers["content-security-policy"], DASHBOARD_CSP);
  assert.equal(page.headers["x-content-type-options"], "nosniff");
  assert.match(page.body, /<script type="module" src="\/dashboard\/app.js"><\/script>/);
  for (const file of [
    "app.js",
    "api.js",
    "charts.js",
    "dom.js",
    "views/fleet.js",
    "views/device.js",
    "views/approvals.js",
  ]) {
    const res = await app.inject({ method: "GET", url: `/dashboard/${file}` });
    assert.equal(res.statusCode, 200, file);
    assert.match(String(res.headers["content-type"]), /^text\/javascript/, file);
  }
  const css = await app.inject({ method: "GET", url: "/dashboard/style.css" });
  assert.match(String(css.headers["content-type"]), /^text\/css/);
});

test("no request path reaches the file system outside the served set", async () => {
  for (const url of ["/dashboard/../index.ts", "/dashboard/%2e%2e/index.ts", "/dashboard/nope.js", "/dashboard/"]) {
    const res = await app.inject({ method: "GET", url });
    assert.equal(res.statusCode, 404, url);
  }
});

test("the page references no outside origin", async () => {
  const page = await app.inject({ method: "GET", url: "/" });
  assert.doesNotMatch(page.body, /https?:\/\//);
});

test("the sign-in prompt says where the token is kept, for an operator who missed the first start's lines", async () => {
  const page = await app.inject({ method: "GET", url: "/" });
  const prompt = /<dialog id="login">([\s\S]*?)<\/dialog>/.exec(page.body)?.[1] ?? "";
  assert.match(prompt, /<code>api-token<\/code>/);
  assert.match(prompt, /cat data\/api-token/);
});

test("the sign-in link carries the token in the fragment, never the query", () => {
  assert.equal(dashboardLink("http://127.0.0.1:8080/", "a b"), "http://127.0.0.1:8080/#token=a%20b");
});

test("the add-a-device field's pattern is the device id rule, as a browser reads it", async () => {
  const page = await app.inject({ method: "GET", url: "/" });
  const input = /<input id="provision-id"[^>]*>/.exec(page.body)?.[0] ?? "";
  const pattern = /pattern="([^"]*)"/.exec(input)?.[1];
  assert.ok(pattern !== undefined, input);
  // HTML compiles `pattern` anchored and with the v flag.
  const field = new RegExp(`^(?:${pattern})$`, "v");
  assert.equal(field.test(".."), false);
  for (const id of ["a", "T-1", "dev_01.kitchen", "...", "x".repeat(64), "", ".", "..", "a b", "x".repeat(65)]) {
    assert.equal(field.test(id), isValidDeviceId(id), JSON.stringify(id));
  }
});
