/**
 * The dashboard in headless Chromium against an API stubbed in the browser (page.route): the page's own handling of
 * answers that come late, fail, are malformed or were timed by another clock, which a real bridge does not produce on
 * cue. The page is served by registerDashboard on a bare Fastify; the browser formats dates as en-US in UTC, and its
 * clock runs two hours ahead of the stubbed server's.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Fastify from "fastify";
import type { Browser, Page, Route } from "playwright-core";
import { chromium } from "playwright-core";
import { registerDashboard } from "../../app/dashboard/index.ts";
import { missingDebianPackage } from "../support/debian-package.ts";

const TOKEN = "stubbed-api-token-0123456789";
/** The stubbed server's time: noon UTC, so an hour before is today and 26 hours before is yesterday. */
const SERVER_NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const HOUR_MS = 3_600_000;
/** How far the browser's clock runs ahead of the server's. */
const CLIENT_SKEW_MS = 2 * HOUR_MS;
const skip = missingDebianPackage("chromium", "chromium");

function deviceRow(id: string) {
  return {
    id,
    online: true,
    codec: "json",
    agentClass: "DeviceAgent",
    agentClassFallback: null,
    firmware: "1.0",
    createdAt: SERVER_NOW - 72 * HOUR_MS,
    lastSeenAt: SERVER_NOW - 30_000,
    lastTelemetry: null,
  };
}

/** The stubbed API's answer for a path; a test overrides one with a route of its own (the newest route runs first). */
function stubAnswer(pathname: string): unknown {
  if (pathname === "/api/fleet") {
    return {
      serverTime: SERVER_NOW,
      devices: { registered: 2, online: 2, offline: 0 },
      agents: { active: 2, hibernated: 0 },
      rates: null,
      engine: { configured: false, health: null, stats: null, activity: null },
      approvalsPending: 0,
    };
  }
  if (pathname === "/api/devices")
    return { devices: [deviceRow("sensor-1"), deviceRow("sensor-2")], total: 2, matched: 2 };
  if (pathname === "/api/approvals") return { approvals: [], total: 0 };
  const [, id, part] = /^\/api\/devices\/([^/]+)(?:\/(\w+))?$/.exec(pathname) ?? [];
  if (id === undefined) return undefined;
  if (part === undefined) return { ...deviceRow(id), status: null, serverTime: SERVER_NOW };
  if (part === "shadow") return { reported: { version: 0, state: {} }, desired: { version: 0, state: {} }, delta: {} };
  if (part === "commands") return { commands: [] };
  if (part === "conversation") return { messages: [], usage: {} };
  if (part === "telemetry") return { readings: [], next: null };
  return undefined;
}

function fulfillStub(route: Route): Promise<void> {
  const answer = stubAnswer(new URL(route.request().url()).pathname);
  if (answer === undefined) {
    return route.fulfill({ status: 404, json: { error: { code: "BRIDGE_ERR_API_NOT_FOUND", message: "no stub" } } });
  }
  return route.fulfill({ json: answer });
}

const isApi = (url: URL) => url.pathname.startsWith("/api/");

describe("dashboard in headless Chromium against a stubbed API", { skip }, () => {
  const app = Fastify();
  let browser: Browser;
  let page: Page;
  let base: string;
  const pageErrors: string[] = [];

  before(async () => {
    await registerDashboard(app);
    base = (await app.listen({ host: "127.0.0.1", port: 0 })).replace(/\/$/, "");
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
    });
    const context = await browser.newContext({ locale: "en-US", timezoneId: "UTC" });
    // A fixed wall clock (timers keep running): ages and days the page works out with it are off by the skew.
    await context.clock.setFixedTime(SERVER_NOW + CLIENT_SKEW_MS);
    page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    await page.route(isApi, fulfillStub);
  });

  after(async () => {
    await browser?.close();
    await app.close();
  });

  test("a sign-in link whose token has a bad % sequence asks for the token, says why, and leaves the address bar", async () => {
    await page.goto(`${base}/#token=%E0%A4%A`);
    await page.locator("#login-error").waitFor({ state: "visible", timeout: 5000 });
    assert.match((await page.locator("#login-error").textContent()) ?? "", /sign-in link/);
    assert.equal(new URL(page.url()).hash, "#/", "the token left the address bar");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("agent-bridge.token")), null);
    assert.deepEqual(pageErrors.splice(0), []);
  });

  test("a device view's refresh failing after the operator opened another device shows no error there", async () => {
    await page.goto(`${base}/#token=${TOKEN}`);
    await page.locator('#fleet-table tr[data-device="sensor-2"]').waitFor({ timeout: 5000 });
    let asked: () => void = () => {};
    const askedFirst = new Promise<void>((resolve) => {
      asked = resolve;
    });
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let answered: () => void = () => {};
    const answeredLate = new Promise<void>((resolve) => {
      answered = resolve;
    });
    const first = (url: URL) => url.pathname === "/api/devices/sensor-1";
    await page.route(first, async (route) => {
      asked();
      await released;
      await route.fulfill({ status: 503, json: { error: { code: "BRIDGE_ERR_TEST", message: "late failure" } } });
      answered();
    });
    try {
      await page.evaluate(() => {
        window.location.hash = "#/device/sensor-1";
      });
      await askedFirst;
      await page.evaluate(() => {
        window.location.hash = "#/device/sensor-2";
      });
      // sensor-2's refresh has run to its end (its readings are the last thing it draws).
      await page.locator("#readings .empty").waitFor({ timeout: 5000 });
      assert.match((await page.locator("#view-device h1").textContent()) ?? "", /sensor-2/);
      release();
      await answeredLate;
      await page.waitForTimeout(300);
      assert.equal(await page.locator("#view-device .error").count(), 0, "sensor-1's failure is not on sensor-2");
      assert.equal(await page.locator("#conn-status").textContent(), "live");
      assert.match((await page.locator("#view-device h1").textContent()) ?? "", /sensor-2/);
    } finally {
      release();
      await page.unroute(first);
    }
  });

  test("commands and readings from a day other than the server's today show their date", async () => {
    const yesterday = SERVER_NOW - 26 * HOUR_MS;
    const today = SERVER_NOW - HOUR_MS;
    const command = (id: string, createdAt: number) => ({
      id,
      name: "reboot",
      state: "SUCCEEDED",
      attempts: 1,
      maxAttempts: 3,
      createdAt,
      result: "ok",
      error: null,
    });
    const commands = (url: URL) => url.pathname === "/api/devices/sensor-1/commands";
    const telemetry = (url: URL) => url.pathname === "/api/devices/sensor-1/telemetry";
    await page.route(commands, (route) =>
      route.fulfill({ json: { commands: [command("cmd-today", today), command("cmd-yesterday", yesterday)] } }),
    );
    await page.route(telemetry, (route) =>
      route.fulfill({
        json: {
          readings: [
            { ts: today, metric: "temp", value: 21 },
            { ts: yesterday, metric: "temp", value: 20 },
          ],
          next: null,
        },
      }),
    );
    try {
      await page.goto(`${base}/#/device/sensor-1`);
      const created = (id: string) => page.locator(`#commands tr[data-command="${id}"] td:nth-child(5)`);
      await created("cmd-yesterday").waitFor({ timeout: 5000 });
      assert.match((await created("cmd-yesterday").textContent()) ?? "", /1\/14\/2026.*10:00:00/);
      assert.match((await created("cmd-today").textContent()) ?? "", /^11:00:00/);
      const readTimes = page.locator("#readings tbody tr td:first-child");
      await readTimes.first().waitFor({ timeout: 5000 });
      assert.match((await readTimes.nth(0).textContent()) ?? "", /^11:00:00/);
      assert.match((await readTimes.nth(1).textContent()) ?? "", /1\/14\/2026.*10:00:00/);
    } finally {
      await page.unroute(commands);
      await page.unroute(telemetry);
    }
  });

  test("ages in the device view are measured against the server's time, as in the fleet table", async () => {
    const approvals = (url: URL) => url.pathname === "/api/approvals";
    const pending = {
      approvals: [
        { deviceId: "sensor-1", approvalId: "apr-1", tool: "send_command", args: "{}", createdAt: SERVER_NOW - 30_000 },
      ],
      total: 1,
    };
    await page.route(approvals, (route) => route.fulfill({ json: pending }));
    try {
      await page.goto(`${base}/#/`);
      const lastSeen = page.locator('#fleet-table tr[data-device="sensor-1"] td:nth-child(3)');
      await lastSeen.waitFor({ timeout: 5000 });
      assert.equal(await lastSeen.textContent(), "30 s ago");
      assert.match((await page.locator("#approvals li.approval").textContent()) ?? "", /requested 30 s ago/);

      await page.goto(`${base}/#/device/sensor-1`);
      const facts = page.locator("#view-device .facts");
      await facts.waitFor({ timeout: 5000 });
      assert.equal(await facts.locator("dt:text-is('Last seen') + dd").textContent(), "30 s ago");
      const approval = page.locator("#device-approvals li.approval");
      await approval.waitFor({ timeout: 5000 });
      assert.match((await approval.textContent()) ?? "", /requested 30 s ago/);
    } finally {
      await page.unroute(approvals);
    }
  });

  test("a device address with a bad % sequence shows the fleet and keeps polling, without a script error", async () => {
    await page.goto(`${base}/#token=${TOKEN}`);
    await page.locator('#fleet-table tr[data-device="sensor-2"]').waitFor({ timeout: 5000 });
    await page.goto(`${base}/#/device/%E0`);
    await page.locator("#view-fleet").waitFor({ state: "visible", timeout: 5000 });
    const isFleet = (url: URL) => url.pathname === "/api/fleet";
    await page.waitForRequest((request) => isFleet(new URL(request.url())), { timeout: 5000 });
    await page.waitForRequest((request) => isFleet(new URL(request.url())), { timeout: 5000 });
    assert.deepEqual(pageErrors.splice(0), []);
  });

  test("the page raised no script errors along the way", () => {
    assert.deepEqual(pageErrors, []);
  });
});
