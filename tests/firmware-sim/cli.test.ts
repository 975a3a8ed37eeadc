import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { runSimCli } from "../../firmware-sim/cli.ts";
import { startAedes, type TestBroker } from "./helpers/aedes-broker.ts";

function captureIo() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      stdout: { write: (s: string) => out.push(s) },
      stderr: { write: (s: string) => err.push(s), isTTY: false },
      onInterrupt: () => () => {},
    },
  };
}

describe("sim CLI", () => {
  let broker: TestBroker;
  let dir: string;
  const logins: string[] = [];
  before(async () => {
    broker = await startAedes({
      authenticate: (client, username, password, done) => {
        logins.push(`${client.id}:${username ?? ""}:${password?.toString() ?? ""}`);
        done(null, true);
      },
    });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-sim-cli-"));
  });
  after(async () => {
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("prints one JSON report last on stdout with a violations count and exits 0 on a clean run", async () => {
    const { out, err, io } = captureIo();
    const code = await runSimCli(
      [
        "--url",
        broker.url,
        "--devices",
        "3",
        "--rate",
        "10",
        "--duration",
        "0.5",
        "--settle-ms",
        "50",
        "--json",
        "--quiet",
        "--id-prefix",
        "cli-",
      ],
      io,
    );
    assert.equal(code, 0, err.join(""));
    assert.equal(out.length, 1, "stdout holds only the JSON object");
    const report = JSON.parse(out[0]) as { violations: number; ok: boolean; stats: { counters: { acked: number } } };
    assert.equal(report.violations, 0);
    assert.equal(report.ok, true);
    assert.ok(report.stats.counters.acked > 0);
    assert.match(err.join(""), /publish->PUBACK ms p50/, "the summary table goes to stderr with --json");
  });

  it("reports the seed of a run, its own when none was given, so that it can be replayed", async () => {
    const argv = ["--url", broker.url, "--devices", "2", "--duration", "0.3", "--settle-ms", "50", "--json", "--quiet"];
    const drawn = captureIo();
    assert.equal(await runSimCli([...argv, "--id-prefix", "seed-a-"], { ...drawn.io, newSeed: () => 123456 }), 0);
    assert.equal((JSON.parse(drawn.out[0]) as { seed: number }).seed, 123456);
    assert.match(drawn.err.join(""), /seed 123456 \(the same run again: --seed 123456\)/);
    const given = captureIo();
    const code = await runSimCli([...argv, "--id-prefix", "seed-b-", "--seed", "42"], {
      ...given.io,
      newSeed: () => assert.fail("a run given --seed draws no seed"),
    });
    assert.equal(code, 0);
    assert.equal((JSON.parse(given.out[0]) as { seed: number }).seed, 42);
  });

  it("takes --broker-without-dup for a broker that resends without DUP, as this plain aedes does", async () => {
    const { err, io } = captureIo();
    const argv = ["--url", broker.url, "--devices", "2", "--duration", "0.3", "--settle-ms", "50", "--quiet"];
    const code = await runSimCli([...argv, "--id-prefix", "no-dup-", "--persistent", "--broker-without-dup"], io);
    assert.equal(code, 0, err.join(""));
  });

  it("uses the ids and secrets of a JSON-lines credentials file", async () => {
    const file = path.join(dir, "creds.jsonl");
    fs.writeFileSync(file, '{"id":"cred-a","secret":"s1"}\n{"id":"cred-b","secret":"s2"}\n');
    const seen: string[] = [];
    const listener = (client: { id: string }) => seen.push(client.id);
    broker.broker.on("client", listener);
    try {
      const { out, io } = captureIo();
      const code = await runSimCli(
        ["--url", broker.url, "--credentials", file, "--duration", "0.3", "--settle-ms", "0", "--quiet"],
        io,
      );
      assert.equal(code, 0);
      assert.match(out.join(""), /devices \(powered \/ total\)\s+2 \/ 2/);
    } finally {
      broker.broker.off("client", listener);
    }
    assert.deepEqual(seen.sort(), ["cred-a", "cred-b"]);
    assert.ok(
      logins.includes("cred-a:cred-a:s1") && logins.includes("cred-b:cred-b:s2"),
      "client id = username = device id, password = secret",
    );
  });

  it("exits 1 with the violations listed when devices never connect", async () => {
    const { out, err, io } = captureIo();
    const code = await runSimCli(
      [
        "--url",
        "mqtt://127.0.0.1:1",
        "--devices",
        "2",
        "--duration",
        "0.3",
        "--settle-ms",
        "0",
        "--drain-timeout-ms",
        "50",
        "--json",
        "--quiet",
      ],
      io,
    );
    assert.equal(code, 1);
    const report = JSON.parse(out.at(-1) ?? "{}") as { violations: number; violationCounts: Record<string, number> };
    assert.equal(report.violations, 2);
    assert.equal(report.violationCounts["device-never-connected"], 2);
    assert.match(err.join(""), /device-never-connected/);
  });

  it("exits 1 naming the reason when the run ends before any device came online", async () => {
    const { out, err, io } = captureIo();
    // Ctrl-C at once: the fleet stops before its first device powers on, with no violation to report.
    const interruptAtOnce = (handler: () => void) => {
      handler();
      return () => {};
    };
    const argv = ["--url", broker.url, "--devices", "2", "--duration", "5", "--json", "--quiet"];
    const code = await runSimCli(argv, { ...io, onInterrupt: interruptAtOnce });
    assert.equal(code, 1);
    const report = JSON.parse(out.at(-1) ?? "{}") as { ok: boolean; violations: number; reasons: string[] };
    assert.equal(report.violations, 0);
    assert.equal(report.ok, false);
    assert.match(report.reasons.join(), /no device was powered on/);
    assert.match(err.join(""), /verdict\s+FAILED: no device was powered on/);
  });

  it("exits 2 naming the flag for bad usage", async () => {
    const bad = [
      [["--devices", "3"], /--url/],
      [["--url", broker.url, "--profile", "toaster"], /profiles are/],
      [["--url", broker.url, "--codec", "xml"], /codec/],
      [["--url", "http://x", "--duration", "1"], /url must be mqtt/],
      [["--url", broker.url, "--duplicates", "2"], /^sim: --duplicates must be a number from 0 to 1, got 2 /],
      [["--url", broker.url, "--commands-per-min", "6"], /--commands-per-min needs --verify-api/],
      [["--url", broker.url, "--desired-per-min", "x"], /--desired-per-min must be a number/],
      [["--url", broker.url, "--duration", "-5"], /--duration must be a positive number/],
      [["--url", broker.url, "--duration", "0"], /--duration must be a positive number/],
    ] as const;
    for (const [argv, message] of bad) {
      const { err, io } = captureIo();
      assert.equal(await runSimCli(argv, io), 2, argv.join(" "));
      assert.match(err.join(""), message);
    }
  });

  it("reports an unreadable --ca file as bad usage naming the flag, not as a crash", async () => {
    const { err, io } = captureIo();
    const code = await runSimCli(["--url", broker.url, "--ca", path.join(dir, "missing-ca.pem")], io);
    assert.equal(code, 2);
    assert.match(err.join(""), /--ca .*missing-ca\.pem.*BRIDGE_ERR_SIM_OPTIONS/);
  });

  it("takes the operator token from --api-token-file or BRIDGE_API_TOKEN, off the command line", async () => {
    const seen: string[] = [];
    const api = http.createServer((req, res) => {
      seen.push(req.headers.authorization ?? "");
      res.writeHead(401).end();
    });
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
    const apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    const tokenFile = path.join(dir, "api-token");
    // As the bridge writes its generated token: one line.
    fs.writeFileSync(tokenFile, "token-from-file-0123456789\n", { mode: 0o600 });
    const run = (extra: string[], env: NodeJS.ProcessEnv) => {
      const { io } = captureIo();
      const argv = [
        "--url",
        broker.url,
        "--devices",
        "1",
        "--rate",
        "20",
        "--duration",
        "0.5",
        "--settle-ms",
        "50",
        "--quiet",
      ];
      return runSimCli([...argv, "--verify-api", apiUrl, ...extra], { ...io, env });
    };
    try {
      await run(["--api-token-file", tokenFile], { BRIDGE_API_TOKEN: "token-from-env-0123456789" });
      assert.ok(seen.length > 0, "the API was asked");
      assert.deepEqual(new Set(seen), new Set(["Bearer token-from-file-0123456789"]));
      seen.length = 0;
      await run([], { BRIDGE_API_TOKEN: "token-from-env-0123456789" });
      assert.deepEqual(new Set(seen), new Set(["Bearer token-from-env-0123456789"]));
    } finally {
      await new Promise((resolve) => api.close(resolve));
    }
  });

  it("refuses an unreadable or empty --api-token-file, and one given with --api-token, as bad usage", async () => {
    const empty = path.join(dir, "empty-token");
    fs.writeFileSync(empty, " \n");
    const bad = [
      [["--api-token-file", path.join(dir, "missing-token")], /^sim: --api-token-file cannot read .*missing-token/],
      [["--api-token-file", empty], /^sim: --api-token-file .*empty-token holds no token/],
      [["--api-token-file", empty, "--api-token", "t"], /--api-token-file.* cannot be used with .*--api-token/],
    ] as const;
    for (const [extra, message] of bad) {
      const { err, io } = captureIo();
      assert.equal(await runSimCli(["--url", broker.url, ...extra], io), 2, extra.join(" "));
      assert.match(err.join(""), message);
    }
  });

  it("refuses an operator token the bridge could never accept as bad usage, naming where it came from", async () => {
    const short = path.join(dir, "short-token");
    fs.writeFileSync(short, "too-short\n");
    const twoLines = path.join(dir, "two-line-token");
    fs.writeFileSync(twoLines, "token-from-file-0123456789\nsecond-line-0123456789\n");
    const spaced = path.join(dir, "spaced-token");
    fs.writeFileSync(spaced, "token with spaces 0123456789\n");
    const rule = "at least 16 visible ASCII characters \\(no spaces\\)";
    const verify = ["--verify-api", "http://127.0.0.1:9"];
    const bad: ReadonlyArray<readonly [string[], NodeJS.ProcessEnv, RegExp]> = [
      [["--api-token-file", short], {}, new RegExp(`^sim: --api-token-file .*short-token must hold ${rule}`)],
      [["--api-token-file", twoLines], {}, new RegExp(`^sim: --api-token-file .*two-line-token must hold ${rule}`)],
      [["--api-token-file", spaced], {}, new RegExp(`^sim: --api-token-file .*spaced-token must hold ${rule}`)],
      [verify, { BRIDGE_API_TOKEN: "too-short" }, new RegExp(`^sim: BRIDGE_API_TOKEN must be ${rule}`)],
      [verify, { AGENT_BRIDGE_API_TOKEN: "tok\u00e9n-0123456789" }, /^sim: AGENT_BRIDGE_API_TOKEN must be /],
      [[...verify, "--api-token", "too-short"], {}, new RegExp(`^sim: --api-token must be ${rule}`)],
    ];
    for (const [extra, env, message] of bad) {
      const { err, io } = captureIo();
      assert.equal(await runSimCli(["--url", broker.url, ...extra], { ...io, env }), 2, extra.join(" "));
      assert.match(err.join(""), message);
      assert.match(err.join(""), /\(BRIDGE_ERR_SIM_OPTIONS\)/);
    }
    // A token in the environment of a run that sends none is none of its business.
    const { io } = captureIo();
    const argv = ["--url", broker.url, "--devices", "1", "--duration", "0.2", "--settle-ms", "10", "--quiet"];
    assert.equal(await runSimCli(argv, { ...io, env: { BRIDGE_API_TOKEN: "too-short" } }), 0);
  });

  it("reports a missing credentials file as bad usage", async () => {
    const { err, io } = captureIo();
    const code = await runSimCli(["--url", broker.url, "--credentials", path.join(dir, "missing.json")], io);
    assert.equal(code, 2);
    assert.match(err.join(""), /BRIDGE_ERR_SIM_CREDENTIALS/);
  });
});
