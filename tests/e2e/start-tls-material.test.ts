/**
 * `agent-bridge start` with TLS files that can be read but hold no usable certificate or key: a configuration error
 * of the operator's, so one `config error:` line naming the setting and where it came from, exit 2, as for a file that
 * cannot be read; not a fatal JSON log line with OpenSSL's stack from the TLS listener's start, exit 1.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { loopbackStartArgs, makeTempDir, ROOT, runCli } from "./support/bridge-process.ts";

const fixtures = path.join(ROOT, "tests/broker/fixtures");
const CERT = path.join(fixtures, "server-cert.pem");
const KEY = path.join(fixtures, "server-key.pem");

const dir = makeTempDir("start-tls-material-");
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A file under the test's directory holding `text`. */
function file(name: string, text: string): string {
  const at = path.join(dir, name);
  fs.writeFileSync(at, text);
  return at;
}

const notPem = file("not-pem.pem", "this is not a PEM file\n");
const otherKey = file(
  "other-key.pem",
  generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
);

/** Runs `start` on loopback, ports 0, with `args` after it; a fresh data directory each time. */
function start(args: string[]): ReturnType<typeof runCli> {
  const dataDir = makeTempDir("start-tls-material-data-");
  try {
    return runCli([...loopbackStartArgs(dataDir), "--tls-port", "0", ...args]);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Exit 2 and exactly `line` on stderr; nothing logged as a fault on stdout. */
function assertConfigError(result: ReturnType<typeof runCli>, line: RegExp): void {
  assert.equal(result.status, 2, `${result.stderr}\n${result.stdout}`);
  assert.match(result.stderr, line);
  assert.equal(result.stderr.split("\n").filter(Boolean).length, 1, result.stderr);
  assert.doesNotMatch(result.stdout, /"level":60/, "no fatal log line");
  assert.doesNotMatch(result.stderr + result.stdout, /\n\s+at /, "no stack trace");
}

describe("start with TLS files that hold no usable certificate or key", () => {
  test("a certificate file that is not PEM names mqtt.tls.certFile and --tls-cert", () => {
    const result = start(["--tls-cert", notPem, "--tls-key", KEY]);
    assertConfigError(
      result,
      /^config error: mqtt\.tls\.certFile names a file that holds no PEM certificate \(.*not-pem\.pem: .+\) \(from --tls-cert\)\n$/,
    );
  });

  test("a key file that is not PEM names mqtt.tls.keyFile and --tls-key", () => {
    const result = start(["--tls-cert", CERT, "--tls-key", notPem]);
    assertConfigError(
      result,
      /^config error: mqtt\.tls\.keyFile names a file that holds no usable PEM private key \(.*not-pem\.pem: .+\) \(from --tls-key\)\n$/,
    );
  });

  test("a key that is not the certificate's names mqtt.tls.keyFile", () => {
    const result = start(["--tls-cert", CERT, "--tls-key", otherKey]);
    assertConfigError(
      result,
      /^config error: mqtt\.tls\.keyFile is not the private key of mqtt\.tls\.certFile \(.*other-key\.pem\) \(from --tls-key\)\n$/,
    );
  });

  test("a CA bundle that holds no PEM certificate names mqtt.tls.caFile and --tls-ca", () => {
    const result = start(["--tls-cert", CERT, "--tls-key", KEY, "--tls-ca", notPem]);
    assertConfigError(
      result,
      /^config error: mqtt\.tls\.caFile names a file that holds no PEM certificate \(.*not-pem\.pem: .+\) \(from --tls-ca\)\n$/,
    );
  });
});
