import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import { after, describe, test } from "node:test";
import { BIN, makeTempDir, ROOT, runCli } from "./support/bridge-process.ts";

const dataDir = makeTempDir("bridge-cli-");
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe("agent-bridge CLI", () => {
  test("devices add prints the secret once, list shows the device without it, rm removes it", () => {
    const added = runCli(["devices", "add", "sensor-1", "--codec", "pb", "--data-dir", dataDir, "--json"]);
    assert.equal(added.status, 0, added.stderr);
    const { id, secret } = JSON.parse(added.stdout) as { id: string; secret: string };
    assert.equal(id, "sensor-1");
    assert.ok(secret.length >= 24);

    const listed = runCli(["devices", "list", "--data-dir", dataDir, "--json"]);
    assert.equal(listed.status, 0, listed.stderr);
    const devices = JSON.parse(listed.stdout) as Array<{ id: string; codec: string }>;
    assert.deepEqual(
      devices.map((d) => [d.id, d.codec]),
      [["sensor-1", "pb"]],
    );
    assert.ok(!listed.stdout.includes(secret), "list must never show a secret");

    const human = runCli(["devices", "list", "--data-dir", dataDir]);
    assert.match(human.stdout, /sensor-1\tpb/);

    const removed = runCli(["devices", "rm", "sensor-1", "--data-dir", dataDir]);
    assert.equal(removed.status, 0, removed.stderr);
    const empty = runCli(["devices", "list", "--data-dir", dataDir, "--json"]);
    assert.deepEqual(JSON.parse(empty.stdout), []);
  });

  test("adding an existing device is refused and does not issue a new secret", () => {
    assert.equal(runCli(["devices", "add", "dup-1", "--data-dir", dataDir]).status, 0);
    const again = runCli(["devices", "add", "dup-1", "--data-dir", dataDir, "--json"]);
    assert.equal(again.status, 1);
    assert.equal(again.stdout, "");
    assert.match(again.stderr, /already exists/);
  });

  test("an invalid device id or codec is a usage error with exit code 2", () => {
    const badId = runCli(["devices", "add", "bad/id", "--data-dir", dataDir]);
    assert.equal(badId.status, 2);
    assert.match(badId.stderr, /device id must be/);
    const badCodec = runCli(["devices", "add", "ok-id", "--codec", "xml", "--data-dir", dataDir]);
    assert.equal(badCodec.status, 2);
    assert.match(badCodec.stderr, /--codec must be one of json, cbor, pb/);
  });

  test("removing an unknown device fails with exit code 1", () => {
    const result = runCli(["devices", "rm", "nobody", "--data-dir", dataDir]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /no device nobody/);
  });

  test("unknown commands and flags give a clear message and exit code 2", () => {
    const command = runCli(["frobnicate"]);
    assert.equal(command.status, 2);
    assert.match(command.stderr, /unknown command 'frobnicate'/);
    const flag = runCli(["start", "--no-such-flag"]);
    assert.equal(flag.status, 2);
    assert.match(flag.stderr, /unknown option '--no-such-flag'/);
  });

  test("a usage error in a subcommand points at that subcommand's help, which lists its arguments and flags", () => {
    const missing = runCli(["devices", "rm"]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /missing required argument 'id'\n\(run agent-bridge devices rm --help for usage\)/);
    const unknown = runCli(["devices", "ad", "x"]);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /\(run agent-bridge devices --help for usage\)/);
    const flag = runCli(["start", "--no-such-flag"]);
    assert.match(flag.stderr, /\(run agent-bridge start --help for usage\)/);
  });

  test("a bad setting stops start with exit code 2 and a line naming the field and its source", () => {
    const fromEnv = runCli(["start", "--data-dir", dataDir], { BRIDGE_MQTT_PORT: "99999" });
    assert.equal(fromEnv.status, 2);
    assert.equal(
      fromEnv.stderr.trim(),
      "config error: mqtt.port must be an integer from 0 to 65535 (from BRIDGE_MQTT_PORT)",
    );
    const fromFlag = runCli(["start", "--data-dir", dataDir, "--log-level", "loud"]);
    assert.equal(fromFlag.status, 2);
    assert.match(fromFlag.stderr, /^config error: log\.level must be one of .* \(from --log-level\)/);
    const file = `${dataDir}/bad.json`;
    fs.writeFileSync(file, JSON.stringify({ http: { port: "eighty" } }));
    const fromFile = runCli(["start", "--config", file]);
    assert.equal(fromFile.status, 2);
    assert.equal(
      fromFile.stderr.trim(),
      `config error: http.port must be an integer from 0 to 65535 (from config file ${file})`,
    );
  });

  test("a data directory path that is a file stops start with a config error naming dataDir, not a stack", () => {
    const file = `${dataDir}/not-a-dir`;
    fs.writeFileSync(file, "");
    const args = ["start", "--host", "127.0.0.1", "--mqtt-port", "0", "--http-port", "0"];
    const onFile = runCli([...args, "--data-dir", file]);
    assert.equal(onFile.status, 2, onFile.stdout);
    assert.equal(onFile.stdout, "", "no log line: nothing started");
    assert.equal(onFile.stderr.trim(), `config error: dataDir ${file} is a file, not a directory (from --data-dir)`);
    const under = runCli(args, { BRIDGE_DATA_DIR: `${file}/data` });
    assert.equal(under.status, 2, under.stdout);
    assert.equal(
      under.stderr.trim(),
      `config error: dataDir ${file}/data cannot be created: part of its path is a file (from BRIDGE_DATA_DIR)`,
    );
    // The CLI's own commands that create the data directory say the same.
    const add = runCli(["devices", "add", "dev-1", "--data-dir", file]);
    assert.equal(add.status, 2, add.stdout);
    assert.equal(add.stderr.trim(), `config error: dataDir ${file} is a file, not a directory (from --data-dir)`);
  });
});

describe("agent-bridge simulator commands", () => {
  test("engine-sim serves until SIGTERM and then exits 0", async () => {
    const child = spawn(process.execPath, [BIN, "engine-sim", "--port", "0", "--host", "127.0.0.1"], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (chunk: Buffer) => {
          out += chunk.toString();
          const match = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
          if (match) resolve(match[1]);
        });
        child.on("exit", (code) => reject(new Error(`engine-sim exited ${code}: ${out}`)));
      });
      const models = await fetch(`${url}/v1/models`);
      assert.equal(models.status, 200);
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("sim and engine-sim pass their flags through and report usage errors with exit code 2", () => {
    const help = runCli(["sim", "--help"]);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--devices/);
    // Their usage line is the command line a user types, not the name the tool has inside.
    assert.match(help.stdout, /^Usage: agent-bridge sim \[options\]/m);
    const engineHelp = runCli(["engine-sim", "--help"]);
    assert.equal(engineHelp.status, 0);
    assert.match(engineHelp.stdout, /^Usage: agent-bridge engine-sim \[options\]/m);
    assert.equal(runCli(["sim", "--no-such-flag"]).status, 2);
    assert.equal(runCli(["engine-sim", "--no-such-flag"]).status, 2);
  });

  test("engine-sim refuses a flag value out of its range as bad usage (exit 2), naming the flag typed", () => {
    const port = runCli(["engine-sim", "--port", "99999"]);
    assert.equal(port.status, 2, port.stderr);
    assert.match(port.stderr, /^error: --port must be an integer from 0 to 65535 \(got 99999\)$/m);
    const seqs = runCli(["engine-sim", "--port", "0", "--max-num-seqs", "-5"]);
    assert.equal(seqs.status, 2, seqs.stderr);
    assert.match(seqs.stderr, /^error: --max-num-seqs must be an integer from 1 to \d+ \(got -5\)$/m);
    const scale = runCli(["engine-sim", "--port", "0", "--time-scale", "-1"]);
    assert.equal(scale.status, 2, scale.stderr);
    assert.match(scale.stderr, /^error: --time-scale must be a finite number >= 0 \(got -1\)$/m);
    assert.doesNotMatch(port.stderr + seqs.stderr + scale.stderr, /engineSim\./);
  });

  test("sim refuses a flag value its fleet options refuse as bad usage (exit 2), naming the flag typed", () => {
    // Nothing listens on port 1: the options are refused before any connection is tried.
    const url = ["--url", "mqtt://127.0.0.1:1", "--quiet"];
    const devices = runCli(["sim", ...url, "--devices", "-5"]);
    assert.equal(devices.status, 2, devices.stderr);
    assert.match(
      devices.stderr,
      /^sim: --devices must be an integer from 1 to 1000000, got -5 \(BRIDGE_ERR_SIM_OPTIONS\)$/m,
    );
    // Flags whose option has another name in the fleet's options (offlineBufferSize, duplicateRatio, backoff.*).
    const buffer = runCli(["sim", ...url, "--buffer", "-1"]);
    assert.equal(buffer.status, 2, buffer.stderr);
    assert.match(buffer.stderr, /^sim: --buffer must be an integer from 0 to 10000000, got -1 /m);
    const duplicates = runCli(["sim", ...url, "--duplicates", "2"]);
    assert.equal(duplicates.status, 2, duplicates.stderr);
    assert.match(duplicates.stderr, /^sim: --duplicates must be a number from 0 to 1, got 2 /m);
    const backoff = runCli(["sim", ...url, "--backoff-base-ms", "-1"]);
    assert.equal(backoff.status, 2, backoff.stderr);
    assert.match(backoff.stderr, /^sim: --backoff-base-ms must be a number from 0 to 3600000, got -1 /m);
    // A --no- flag: commander stores its value under the name without "no" (it was read from nowhere, so ignored).
    const noClock = runCli(["sim", ...url, "--no-clock-ratio", "2"]);
    assert.equal(noClock.status, 2, noClock.stderr);
    assert.match(noClock.stderr, /^sim: --no-clock-ratio must be a number from 0 to 1, got 2 /m);
    assert.doesNotMatch(
      devices.stderr + buffer.stderr + duplicates.stderr + backoff.stderr,
      /offlineBufferSize|duplicateRatio|backoff\.|sim: devices/,
    );
  });

  test("demo refuses a bad --duration-s or --reason-interval-ms with a message and exit code 2", () => {
    const duration = runCli(["demo", "--duration-s", "soon"]);
    assert.equal(duration.status, 2);
    assert.match(duration.stderr, /--duration-s must be a number from 0 to \d+/);
    const interval = runCli(["demo", "--reason-interval-ms", "-1"]);
    assert.equal(interval.status, 2);
    assert.match(interval.stderr, /--reason-interval-ms must be a number from 0 to \d+/);
  });

  test("demo --help states the demo's own defaults, not start's (docs/cli.md, agent-bridge demo)", () => {
    // The demo runs on a temporary data directory and free loopback ports with warn logs (app/demo.ts), so a help
    // that showed start's ./data, 0.0.0.0, 1883, 8080 and info would send an operator looking in the wrong place.
    const help = runCli(["demo", "--help"]);
    assert.equal(help.status, 0, help.stderr);
    const text = help.stdout.replace(/\s+/g, " ");
    assert.match(text, /--data-dir <dir> data directory \(default: a temporary one, removed at the end\)/);
    assert.match(text, /--host <address> MQTT bind address \(default 127\.0\.0\.1\)/);
    assert.match(text, /--mqtt-port <port> MQTT TCP port, 0 picks a free one \(default 0\)/);
    assert.match(text, /--http-port <port> operator HTTP port, 0 picks a free one \(default 0\)/);
    assert.match(text, /--log-level <level> fatal, error, warn, info, debug, trace, silent \(default warn\)/);
    const start = runCli(["start", "--help"]).stdout.replace(/\s+/g, " ");
    assert.match(start, /--data-dir <dir> data directory \(default \.\/data\)/);
    assert.match(start, /--mqtt-port <port> MQTT TCP port, 0 picks a free one \(default 1883\)/);
  });
});
