/**
 * Where relative file paths of the configuration resolve: a path written in the config file against the file's own
 * directory, a path given in the environment or on the command line against the working directory, as a shell user
 * expects (docs/configuration.md).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { formatConfigIssue, loadConfig } from "../../app/config/index.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "config-paths-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** A directory under the test's root holding empty PEM stand-ins (only their readability is checked). */
function dirWithFiles(name: string, files: readonly string[]): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of files) fs.writeFileSync(path.join(dir, f), "");
  return dir;
}

describe("relative paths in the configuration", () => {
  const confDir = dirWithFiles("conf", ["file-cert.pem", "file-key.pem"]);
  const configFile = path.join(confDir, "bridge.json");
  const shellDir = dirWithFiles("shell", ["cert.pem", "key.pem", "ca.pem"]);
  /** The shell files as a user in the working directory would type them. */
  const typed = (file: string) => path.relative(process.cwd(), path.join(shellDir, file));

  test("a TLS path from a flag or the environment resolves against the working directory, not the config file's", () => {
    fs.writeFileSync(configFile, JSON.stringify({ dataDir: path.join(root, "data") }));
    const loaded = loadConfig({
      file: configFile,
      env: { BRIDGE_TLS_KEY: typed("key.pem"), BRIDGE_TLS_CA: typed("ca.pem") },
      flags: { tlsCert: typed("cert.pem") },
    });
    assert.ok(loaded.ok, loaded.ok ? "" : loaded.issues.map(formatConfigIssue).join("\n"));
    assert.equal(loaded.config.mqtt.tls.certFile, path.join(shellDir, "cert.pem"));
    assert.equal(loaded.config.mqtt.tls.keyFile, path.join(shellDir, "key.pem"));
    assert.equal(loaded.config.mqtt.tls.caFile, path.join(shellDir, "ca.pem"));
  });

  test("a TLS path written in the config file still resolves against the file's directory", () => {
    fs.writeFileSync(
      configFile,
      JSON.stringify({ dataDir: path.join(root, "data"), mqtt: { tls: { certFile: "file-cert.pem" } } }),
    );
    const loaded = loadConfig({ file: configFile, env: { BRIDGE_TLS_KEY: typed("key.pem") } });
    assert.ok(loaded.ok, loaded.ok ? "" : loaded.issues.map(formatConfigIssue).join("\n"));
    assert.equal(loaded.config.mqtt.tls.certFile, path.join(confDir, "file-cert.pem"));
    assert.equal(loaded.config.mqtt.tls.keyFile, path.join(shellDir, "key.pem"));
  });

  test("a file that cannot be read is named as resolved, so the operator sees where it was looked for", () => {
    fs.writeFileSync(configFile, JSON.stringify({ dataDir: path.join(root, "data") }));
    const loaded = loadConfig({ file: configFile, flags: { tlsCert: "missing.pem", tlsKey: typed("key.pem") } });
    assert.equal(loaded.ok, false);
    if (loaded.ok) return;
    assert.deepEqual(loaded.issues.map(formatConfigIssue), [
      `config error: mqtt.tls.certFile names a file that cannot be read (ENOENT: ${path.resolve("missing.pem")}) (from --tls-cert)`,
    ]);
  });
});
