import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import {
  type BridgeProcess,
  loopbackStartArgs,
  makeTempDir,
  runCli,
  startBridgeProcess,
} from "./support/bridge-process.ts";

/** The plain (non-JSON) stdout lines a bridge printed: its log lines are JSON, the token lines of a first start are not. */
function plainLines(bridge: BridgeProcess): string[] {
  return bridge.logs.filter((l) => l.level === 0).map((l) => l.msg);
}

async function waitForPlainLines(bridge: BridgeProcess, count: number): Promise<string[]> {
  for (let i = 0; i < 100 && plainLines(bridge).length < count; i++) await new Promise((r) => setTimeout(r, 20));
  return plainLines(bridge);
}

describe("a generated operator API token", () => {
  const dataDir = makeTempDir("e2e-api-token-");
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  test("is printed once on stdout with the dashboard link that signs in, never in a log line, and not again on the next start, whose start line names its file", async () => {
    const first = await startBridgeProcess({ dataDir, env: { BRIDGE_API_TOKEN: "" } });
    let token: string;
    try {
      const lines = await waitForPlainLines(first, 2);
      const tokenLine = lines.find((l) => l.startsWith("operator API token"));
      const linkLine = lines.find((l) => l.startsWith("dashboard (signs in with the token): "));
      assert.ok(tokenLine !== undefined, `no token line in ${JSON.stringify(lines)}`);
      assert.ok(linkLine !== undefined, `no dashboard link in ${JSON.stringify(lines)}`);
      token = tokenLine.slice(tokenLine.lastIndexOf(" ") + 1);
      assert.equal(token, fs.readFileSync(`${dataDir}/api-token`, "utf8").trim());
      assert.equal(
        linkLine,
        `dashboard (signs in with the token): http://127.0.0.1:${first.httpPort}/#token=${encodeURIComponent(token)}`,
      );
      const json = first.logs.filter((l) => l.level !== 0);
      assert.ok(!JSON.stringify(json).includes(token), "the token reached a log line");
      const ok = await fetch(`http://127.0.0.1:${first.httpPort}/api/devices`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(ok.status, 200, "the printed token opens the API");
      await ok.arrayBuffer();
    } finally {
      assert.equal(await first.stop(), 0);
    }

    const second = await startBridgeProcess({ dataDir, env: { BRIDGE_API_TOKEN: "" } });
    try {
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(plainLines(second), []);
      assert.ok(!JSON.stringify(second.logs).includes(token));
      // An operator who missed the first start's lines learns where the token is from every later start.
      const started = second.logs.find((l) => l.msg === "bridge started");
      assert.equal(started?.apiTokenFile, path.join(path.resolve(dataDir), "api-token"));
    } finally {
      assert.equal(await second.stop(), 0);
    }
  });

  test("on an IPv6 address the start line and the sign-in link carry a usable URL with the host in brackets", async () => {
    const v6Dir = makeTempDir("e2e-api-token-v6-");
    const bridge = await startBridgeProcess({
      dataDir: v6Dir,
      args: ["--http-host", "::1"],
      env: { BRIDGE_API_TOKEN: "" },
    });
    try {
      const origin = `http://[::1]:${bridge.httpPort}`;
      assert.equal(bridge.logs.find((l) => l.msg === "bridge started")?.dashboard, `${origin}/`);
      const lines = await waitForPlainLines(bridge, 2);
      const link = lines.find((l) => l.startsWith("dashboard (signs in with the token): "))?.split(": ")[1] ?? "";
      assert.ok(link.startsWith(`${origin}/#token=`), link);
      const page = await fetch(new URL(link));
      assert.equal(page.status, 200, "the printed link opens the dashboard");
      await page.arrayBuffer();
    } finally {
      assert.equal(await bridge.stop(), 0);
      fs.rmSync(v6Dir, { recursive: true, force: true });
    }
  });
});

describe("an api-token file the bridge cannot use", () => {
  /** Runs `start` on `dataDir` with no configured token, so the bridge reads `<dataDir>/api-token`. */
  function startOn(dataDir: string): ReturnType<typeof runCli> {
    return runCli(loopbackStartArgs(dataDir), { BRIDGE_API_TOKEN: "" });
  }

  /** Exit 2 and exactly one `config error:` line on stderr; nothing logged as a fault on stdout. */
  function assertTokenFileRefused(result: ReturnType<typeof runCli>, line: RegExp): void {
    const output = `${result.stderr}\n${result.stdout}`;
    assert.equal(result.status, 2, output);
    assert.equal(result.stderr.split("\n").filter(Boolean).length, 1, output);
    assert.match(result.stderr, line);
    assert.doesNotMatch(result.stdout, /"level":60|bridge could not be built|\n\s+at /, output);
  }

  test("one too short stops start with one line naming the file and the rule, exit 2", () => {
    const dataDir = makeTempDir("e2e-api-token-short-");
    try {
      const file = path.join(dataDir, "api-token");
      fs.writeFileSync(file, "short\n", { mode: 0o600 });
      const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      assertTokenFileRefused(
        startOn(dataDir),
        new RegExp(`^config error: the token file ${escaped} must hold at least 16 visible ASCII characters \\(no spaces\\)`),
      );
      assert.equal(fs.readFileSync(file, "utf8"), "short\n", "the file is left as it was");
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("one that cannot be read (a folder in its place) stops start with one line naming the file, exit 2", () => {
    const dataDir = makeTempDir("e2e-api-token-unreadable-");
    try {
      const file = path.join(dataDir, "api-token");
      fs.mkdirSync(file);
      const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      assertTokenFileRefused(startOn(dataDir), new RegExp(`^config error: cannot read the token file ${escaped}: `));
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
