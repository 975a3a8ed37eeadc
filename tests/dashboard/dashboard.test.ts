/**
 * The dashboard in headless Chromium against a real bridge (createBridge) with a simulated fleet and the engine
 * simulator: devices appear live, an operator sets desired state, approves a pending tool call and sees the
 * command it released. Screenshots go to test-artifacts/dashboard/.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import type { BrowserContext, Page } from "playwright-core";
import { chromium } from "playwright-core";
import { registerDashboard } from "../../app/dashboard/index.ts";
import type { Bridge } from "../../app/bridge.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { createFleet, type Fleet } from "../../firmware-sim/index.ts";
import { missingDebianPackage } from "../support/debian-package.ts";
import { createLoopbackBridge, provisionDevices } from "../support/in-process-bridge.ts";

const TOKEN = "dashboard-test-token-0123456789";
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SHOTS = path.join(ROOT, "test-artifacts", "dashboard");
const skip = missingDebianPackage("chromium", "chromium");

describe("dashboard in headless Chromium", { skip }, () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "dashboard-"));
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), "dashboard-chromium-"));
  let sim: Awaited<ReturnType<typeof startEngineSimulator>>;
  let bridge: Bridge;
  let fleet: Fleet;
  let browser: BrowserContext;
  let page: Page;
  let base: string;
  let assistant: mqtt.MqttClient | undefined;
  const pageErrors: string[] = [];

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    sim = await startEngineSimulator({ timeScale: 0.01 });
    bridge = await createLoopbackBridge({ dataDir, apiToken: TOKEN, engineUrls: [sim.url] });
    // The bridge registers the dashboard itself once wired; register it here only when it has not.
    if (!bridge.http.app.hasRoute({ method: "GET", url: "/dashboard/app.js" }))
      await registerDashboard(bridge.http.app);
    const addresses = await bridge.start();
    base = `http://127.0.0.1:${addresses.http?.port}`;
    const credentials = await provisionDevices(bridge, ["sensor-1", "sensor-2", "sensor-3"], "json");
    fleet = createFleet({
      url: `mqtt://127.0.0.1:${addresses.mqtt?.port}`,
      credentials,
      profile: "sensor",
      rate: 2,
      codec: "json",
    });
    await fleet.start();
    assert.ok(await fleet.whenOnline(3, 15_000), "the simulated fleet came online");
    // A fresh profile directory per run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(profileDir, {
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
      ],
      viewport: { width: 1280, height: 900 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    // Page errors would otherwise only show up as timeouts.
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    page.on("response", (res) => {
      if (res.status() >= 400) pageErrors.push(`${res.status()} ${new URL(res.url()).pathname}`);
    });
  });

  after(async () => {
    await browser?.close();
    assistant?.end(true);
    await fleet?.stop();
    await bridge?.stop();
    await sim?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(profileDir, { recursive: true, force: true });
  });

  test("without a token the page asks for one, and a wrong token is refused with a message", async () => {
    await page.goto(`${base}/`);
    await page.locator("#login").waitFor({ state: "visible" });
    await page.fill("#login-token", "wrong-token-0123456789");
    await page.click("#login-form button[type=submit]");
    await page.locator("#login-error").waitFor({ state: "visible" });
    assert.match((await page.locator("#login-error").textContent()) ?? "", /refused/);
    assert.equal(await page.locator("#logout").isVisible(), false, "no sign-out button while signed out");
    await page.screenshot({ path: path.join(SHOTS, "01-login-refused.png") });
  });

  test("a one-time link signs in and the simulated devices appear online with their telemetry", async () => {
    await page.goto(`${base}/#token=${TOKEN}`);
    for (const id of ["sensor-1", "sensor-2", "sensor-3"]) {
      const row = page.locator(`#fleet-table tr[data-device="${id}"]`);
      await row.waitFor({ timeout: 15_000 });
      await row.locator(".pill-ok").waitFor({ timeout: 15_000 });
    }
    assert.equal(new URL(page.url()).hash, "#/", "the token left the address bar");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("agent-bridge.token")), TOKEN);
    await page.waitForFunction(() => document.querySelector("#kpi-online")?.textContent === "3 / 3");
    await page.waitForFunction(() => Number(document.querySelector("#chart-rates")?.getAttribute("data-points")) > 0);
    await page.fill("#fleet-filter", "SOR-2");
    await page.waitForFunction(() => document.querySelectorAll("#fleet-table tbody tr").length === 1);
    assert.equal(await page.locator('#fleet-table tr[data-device="sensor-2"]').count(), 1);
    await page.fill("#fleet-filter", "");
    await page.waitForFunction(() => document.querySelectorAll("#fleet-table tbody tr").length === 3);
    const telemetry = (await page.locator('#fleet-table tr[data-device="sensor-1"] td.mono').textContent()) ?? "";
    assert.notEqual(telemetry.trim(), "–", "last telemetry is shown");
    await page.screenshot({ path: path.join(SHOTS, "02-fleet.png"), fullPage: true });
  });

  test("the device view sets desired state and shows the new version", async () => {
    await page.click('#fleet-table a[href="#/device/sensor-2"]');
    await page.locator("#desired-version").waitFor();
    assert.equal((await page.locator("#desired-version").textContent()) ?? "", "v0");
    assert.equal(await page.locator("#view-fleet").isVisible(), false, "the fleet view is hidden in the device view");
    await page.fill("#desired-input", '{"led": "blue", "interval": 5}');
    await page.click("#desired-form button[type=submit]");
    await page.waitForFunction(() => document.querySelector("#desired-version")?.textContent === "v1");
    assert.match((await page.locator("#desired-msg").textContent()) ?? "", /version 1/);
    const shadow = await fetch(`${base}/api/devices/sensor-2/shadow`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const body = (await shadow.json()) as { desired: { state: Record<string, unknown> } };
    assert.deepEqual(body.desired.state, { led: "blue", interval: 5 });
    await page.waitForFunction(
      () => Number(document.querySelector("#chart-telemetry")?.getAttribute("data-points")) > 0,
      null,
      {
        timeout: 15_000,
      },
    );
    await page.screenshot({ path: path.join(SHOTS, "03-device-desired.png"), fullPage: true });
  });

  test("a tool call waiting for approval is approved from the dashboard and its command reaches the device", async () => {
    const r = await bridge.registry.add("assistant-1", { codec: "json" });
    assert.equal(r.status, "created");
    if (r.status !== "created") return;
    const port = bridge.addresses().mqtt?.port;
    assistant = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      clientId: "assistant-1",
      username: "assistant-1",
      password: r.secret,
      reconnectPeriod: 0,
    });
    const client = assistant;
    // The device acknowledges every command it gets, as firmware would.
    client.on("message", (topic, payload) => {
      if (topic !== "devices/assistant-1/down/cmd") return;
      const cmd = JSON.parse(payload.toString()) as { id: string };
      void client.publishAsync(
        "devices/assistant-1/up/ack",
        JSON.stringify({ id: cmd.id, ok: true, res: "rebooted" }),
        { qos: 1 },
      );
    });
    await client.subscribeAsync("devices/assistant-1/down/#", { qos: 1 });
    await client.publishAsync("devices/assistant-1/up/hello", JSON.stringify({ fw: "2.0", codec: "json" }), { qos: 1 });
    await client.publishAsync(
      "devices/assistant-1/up/reason",
      JSON.stringify({ id: "q1", q: 'Please send_command {"name": "reboot"} now' }),
      { qos: 1 },
    );

    await page.goto(`${base}/#/`);
    const item = page.locator('#approvals li.approval[data-device="assistant-1"]');
    await item.waitFor({ timeout: 20_000 });
    assert.match((await item.textContent()) ?? "", /send_command/);
    // The engine round that asked for the tool shows on the engine charts.
    await page.waitForFunction(() => Number(document.querySelector("#chart-ttft")?.getAttribute("data-points")) > 0);
    await page.waitForFunction(() => Number(document.querySelector("#chart-engine")?.getAttribute("data-points")) > 0);
    await page.screenshot({ path: path.join(SHOTS, "04-approval-pending.png"), fullPage: true });
    await item.locator('button[data-action="approve"]').click();
    await page.waitForFunction(
      () => document.querySelector('#approvals li.approval[data-device="assistant-1"]') === null,
      null,
      {
        timeout: 15_000,
      },
    );

    await page.goto(`${base}/#/device/assistant-1`);
    const row = page.locator("#commands tr", { hasText: "rebooted" });
    await row.waitFor({ timeout: 15_000 });
    await page.waitForFunction(
      () => Array.from(document.querySelectorAll("#commands tr")).some((tr) => tr.textContent?.includes("SUCCEEDED")),
      null,
      { timeout: 15_000 },
    );
    assert.match((await row.textContent()) ?? "", /rebooted/);
    await page.locator("#conversation li").first().waitFor();
    await page.screenshot({ path: path.join(SHOTS, "05-approved-command.png"), fullPage: true });
  });

  test("an operator adds a device, sees its secret once, and deletes it again", async () => {
    await page.goto(`${base}/#/`);
    await page.locator("#provision summary").click();
    await page.fill("#provision-id", "added-1");
    await page.selectOption("#provision-codec", "cbor");
    await page.click("#provision-form button[type=submit]");
    const secret = ((await page.locator("#provision-secret").textContent()) ?? "").trim();
    assert.equal((await bridge.registry.verify("added-1", secret)).status, "ok");
    await page.locator('#fleet-table tr[data-device="added-1"]').waitFor();
    await page.screenshot({ path: path.join(SHOTS, "06-provisioned.png"), fullPage: true });

    await page.click('#fleet-table a[href="#/device/added-1"]');
    page.once("dialog", (dialog) => void dialog.accept());
    await page.click("#delete-device");
    await page.waitForFunction(() => location.hash === "#/");
    await page.waitForFunction(() => document.querySelector('#fleet-table tr[data-device="added-1"]') === null);
    assert.equal(bridge.registry.get("added-1"), undefined);
  });

  test("a device whose agent class the bridge does not serve shows the class serving it instead", async () => {
    const added = await bridge.registry.add("legacy-1", { agentClass: "RetiredThermostat" });
    assert.equal(added.status, "created");
    await page.goto(`${base}/#/`);
    const cell = page.locator('#fleet-table tr[data-device="legacy-1"] td.class-fallback');
    await cell.waitFor({ timeout: 15_000 });
    assert.equal(await cell.textContent(), "RetiredThermostat (not served; served by DeviceAgent)");
    await page.goto(`${base}/#/device/legacy-1`);
    await page.waitForFunction(
      () => document.querySelector("#device-agent-class")?.textContent?.includes("served by DeviceAgent") === true,
    );
    assert.equal(await bridge.registry.remove("legacy-1"), true);
  });

  test("the layout fits a tablet without horizontal scrolling", async () => {
    await page.setViewportSize({ width: 768, height: 1024 });
    await page.goto(`${base}/#/`);
    await page.locator("#fleet-table").waitFor();
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the viewport`);
    await page.screenshot({ path: path.join(SHOTS, "07-tablet.png"), fullPage: true });
  });

  test("a decision in flight survives the 2 s refresh, and its failure is shown on the approval", async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    // A pending approval and a slow, failing decision, both served by the test, so only the page's handling is tested.
    const pending = {
      approvals: [
        { deviceId: "sensor-1", approvalId: "apr-slow", tool: "send_command", args: "{}", createdAt: Date.now() },
      ],
      total: 1,
    };
    await page.route("**/api/approvals", (route) => route.fulfill({ json: pending }));
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    await page.route("**/api/approvals/sensor-1/apr-slow", async (route) => {
      await released;
      await route.fulfill({ status: 503, json: { error: { code: "BRIDGE_ERR_TEST", message: "agent unavailable" } } });
    });
    try {
      await page.goto(`${base}/#/`);
      const item = page.locator('#approvals li.approval[data-approval="apr-slow"]');
      await item.locator('button[data-action="approve"]').click();
      // Two fleet refreshes re-render the list while the decision is still on its way.
      await page.waitForTimeout(4500);
      assert.equal(await item.locator('button[data-action="approve"]').isDisabled(), true, "no second decision");
      assert.match((await item.textContent()) ?? "", /approving…/);
      release();
      await item.locator(".error").waitFor({ timeout: 5000 });
      assert.match((await item.textContent()) ?? "", /agent unavailable/);
      assert.equal(await item.locator('button[data-action="approve"]').isDisabled(), false, "it can be tried again");
    } finally {
      release();
      await page.unroute("**/api/approvals/sensor-1/apr-slow");
      await page.unroute("**/api/approvals");
      // The 503 is this test's own.
      pageErrors.splice(0, pageErrors.length, ...pageErrors.filter((e) => !e.startsWith("503 /api/approvals/")));
    }
  });

  test("an assistant message with text and a tool call shows both", async () => {
    // The reasoner stores the model's text alongside its tool calls (a model often says what it is about to do).
    const conversation = {
      messages: [
        {
          id: 1,
          turnId: "t1",
          role: "assistant",
          content: "Rebooting the sensor now.",
          toolCalls: [{ id: "c1", name: "send_command", arguments: '{"name":"reboot"}' }],
          compacted: false,
          createdAt: Date.now(),
        },
      ],
      usage: { requests: 1, promptTokens: 10, cachedTokens: 0, completionTokens: 5 },
    };
    await page.route("**/api/devices/sensor-1/conversation*", (route) => route.fulfill({ json: conversation }));
    try {
      await page.goto(`${base}/#/device/sensor-1`);
      const message = page.locator("#conversation li.msg-assistant");
      await message.waitFor();
      const text = (await message.textContent()) ?? "";
      assert.match(text, /Rebooting the sensor now\./);
      assert.match(text, /send_command\(\{"name":"reboot"\}\)/);
    } finally {
      await page.unroute("**/api/devices/sensor-1/conversation*");
    }
  });

  test("the fleet table shows small readings instead of rounding them to zero", async () => {
    const list = (url: URL) => url.pathname === "/api/devices";
    const device = {
      id: "meter-1",
      online: true,
      codec: "json",
      agentClass: "DeviceAgent",
      agentClassFallback: null,
      firmware: "1.0",
      createdAt: Date.now(),
      lastSeenAt: Date.now(),
      lastTelemetry: { at: Date.now(), readings: { current: 0.00042, temp: 21.4567, big: 123456.789 } },
    };
    await page.route(list, (route) => route.fulfill({ json: { devices: [device], total: 1, matched: 1 } }));
    try {
      await page.goto(`${base}/#/`);
      const cell = page.locator('#fleet-table tr[data-device="meter-1"] td.mono');
      await cell.waitFor();
      assert.equal(await cell.textContent(), "current=0.00042 temp=21.457 big=123456.789");
    } finally {
      await page.unroute(list);
    }
  });

  test("a device's telemetry answer arriving after the operator moved to another device is not drawn there", async () => {
    // sensor-1's answer is held until the operator is on sensor-2 and sensor-2's first telemetry request is out, then
    // lands first. Before, it set its metric (one sensor-2 does not have) as sensor-2's, whose next refresh asked for
    // that metric alone and showed "No telemetry stored" until the view was opened again.
    const gate = () => {
      let open: () => void = () => {};
      const opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      return { open: () => open(), opened };
    };
    const askedA = gate();
    const releaseA = gate();
    const askedB = gate();
    const releaseB = gate();
    const late = { readings: [{ ts: Date.now(), metric: "only_on_sensor_1", value: 1 }], next: null };
    await page.route("**/api/devices/sensor-1/telemetry*", async (route) => {
      askedA.open();
      await releaseA.opened;
      await route.fulfill({ json: late }).catch(() => {});
    });
    let firstB = true;
    await page.route("**/api/devices/sensor-2/telemetry*", async (route) => {
      if (firstB) {
        firstB = false;
        askedB.open();
        await releaseB.opened;
      }
      await route.continue().catch(() => {});
    });
    try {
      await page.goto(`${base}/#/device/sensor-1`);
      await askedA.opened;
      await page.evaluate(() => {
        window.location.hash = "#/device/sensor-2";
      });
      await askedB.opened;
      releaseA.open();
      await page.waitForTimeout(300);
      releaseB.open();
      // Two refreshes of sensor-2 (every 3 s) after the late answer.
      await page.waitForTimeout(6500);
      const metric = await page.locator("#metric").inputValue();
      assert.notEqual(metric, "only_on_sensor_1", "sensor-1's metric is not sensor-2's");
      assert.equal(await page.locator("#readings table").count(), 1, "sensor-2's readings are still shown");
    } finally {
      releaseA.open();
      releaseB.open();
      await page.unroute("**/api/devices/sensor-1/telemetry*");
      await page.unroute("**/api/devices/sensor-2/telemetry*");
    }
  });

  test("the page raised no script errors along the way", () => {
    // The refused token of the first test is the one expected failure (401 on the fleet calls).
    const unexpected = pageErrors.filter((e) => !/^401 \/api\//.test(e));
    assert.deepEqual(unexpected, []);
  });
});
