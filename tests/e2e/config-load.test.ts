import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { formatConfigIssue, loadConfig, redactConfig, SETTING_SOURCES } from "../../app/config/index.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bridge-config-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function writeConfig(name: string, body: unknown): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, typeof body === "string" ? body : JSON.stringify(body));
  return file;
}

function errorsOf(result: ReturnType<typeof loadConfig>): string[] {
  assert.equal(result.ok, false, "expected the configuration to be refused");
  return result.ok ? [] : result.issues.map(formatConfigIssue);
}

describe("bridge configuration", () => {
  test("defaults give devices MQTT on every interface and keep the operator API on loopback", () => {
    const result = loadConfig({});
    assert.ok(result.ok);
    const c = result.config;
    assert.equal(c.mqtt.host, "0.0.0.0");
    assert.equal(c.mqtt.port, 1883);
    assert.equal(c.mqtt.allowAnonymous, false);
    assert.equal(c.http.host, "127.0.0.1");
    assert.equal(c.http.port, 8080);
    assert.equal(c.dataDir, path.resolve("data"));
    assert.deepEqual(c.engine.urls, []);
    assert.equal(c.agents.idleTimeoutMs, 60_000);
  });

  test("flags override the environment, which overrides the file, which overrides defaults", () => {
    const file = writeConfig("layers.json", { mqtt: { port: 1000, host: "10.0.0.1" }, http: { port: 2000 } });
    const result = loadConfig({
      file,
      env: { BRIDGE_MQTT_PORT: "1001", BRIDGE_HTTP_PORT: "2001" },
      flags: { mqttPort: "1002" },
    });
    assert.ok(result.ok);
    assert.equal(result.config.mqtt.port, 1002);
    assert.equal(result.config.http.port, 2001);
    assert.equal(result.config.mqtt.host, "10.0.0.1");
    assert.equal(result.sources.get("mqtt.port"), "--mqtt-port");
    assert.equal(result.sources.get("http.port"), "BRIDGE_HTTP_PORT");
  });

  test("a bad port from the environment names the field, the rule and the variable", () => {
    const errors = errorsOf(loadConfig({ env: { BRIDGE_MQTT_PORT: "70000" } }));
    assert.deepEqual(errors, ["config error: mqtt.port must be an integer from 0 to 65535 (from BRIDGE_MQTT_PORT)"]);
  });

  test("text that is not a number or a boolean is refused rather than guessed", () => {
    const errors = errorsOf(loadConfig({ env: { BRIDGE_HTTP_PORT: "80a", BRIDGE_ALLOW_ANONYMOUS: "maybe" } }));
    assert.ok(errors.includes("config error: http.port must be an integer from 0 to 65535 (from BRIDGE_HTTP_PORT)"));
    assert.ok(errors.includes("config error: mqtt.allowAnonymous must be true or false (from BRIDGE_ALLOW_ANONYMOUS)"));
  });

  test("an unknown key in the config file is reported with the file it came from", () => {
    const file = writeConfig("typo.json", { mqtt: { prot: 1883 } });
    const errors = errorsOf(loadConfig({ file }));
    assert.deepEqual(errors, [`config error: mqtt.prot is not a known setting (from config file ${file})`]);
  });

  test("a top-level __proto__ key in the file is an unknown setting, not a section whose settings apply", () => {
    const file = writeConfig("proto.json", '{"__proto__": {"http": {"port": 9999}}}');
    const errors = errorsOf(loadConfig({ file, env: { BRIDGE_MQTT_PORT: "1884" } }));
    assert.deepEqual(errors, [`config error: __proto__ is not a known setting (from config file ${file})`]);
  });

  test("a section of the file that is not an object is reported even when the environment sets a field in it", () => {
    const file = writeConfig("scalar-section.json", { mqtt: 1883 });
    const errors = errorsOf(loadConfig({ file, env: { BRIDGE_MQTT_PORT: "1884" }, flags: { mqttPort: "1885" } }));
    assert.equal(errors.length, 1);
    assert.match(errors[0] as string, new RegExp(`^config error: mqtt .* \\(from config file ${file}\\)$`));
  });

  test("a config file that is not JSON is refused with its parse error", () => {
    const file = writeConfig("broken.json", "{ mqtt: ");
    const [error] = errorsOf(loadConfig({ file }));
    assert.match(error, /^config error: config file is not valid JSON/);
  });

  test("a key given twice in the file is refused naming its path, not resolved silently to the last one", () => {
    // JSON.parse keeps the last `http`: the first one's token would be dropped and another generated without a word.
    const token = "a-token-of-twenty-chars";
    const file = writeConfig("twice.json", `{"http": {"apiToken": "${token}"}, "http": {"port": 9090}}`);
    const errors = errorsOf(loadConfig({ file }));
    assert.deepEqual(errors, [
      `config error: http is given twice in the file (only one may stand) (from config file ${file})`,
    ]);
    const nested = writeConfig("nested-twice.json", '{"mqtt": {"port": 1884, "port": 1885}}');
    assert.deepEqual(errorsOf(loadConfig({ file: nested })), [
      `config error: mqtt.port is given twice in the file (only one may stand) (from config file ${nested})`,
    ]);
  });

  test("a config file that starts with a byte order mark (as Windows editors write it) is read", () => {
    const file = writeConfig("bom.json", `\ufeff${JSON.stringify({ mqtt: { port: 1885 } })}`);
    const result = loadConfig({ file });
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.config.mqtt.port, 1885);
  });

  test("a missing config file is refused naming the file", () => {
    const file = path.join(tmp, "absent.json");
    assert.deepEqual(errorsOf(loadConfig({ file })), [
      `config error: config file cannot be read (ENOENT) (from config file ${file})`,
    ]);
  });

  test("engine URLs come comma-separated from the environment and repeated from flags", () => {
    const fromEnv = loadConfig({ env: { BRIDGE_ENGINE_URL: "http://a:1, http://b:2" } });
    assert.ok(fromEnv.ok);
    assert.deepEqual(fromEnv.config.engine.urls, ["http://a:1", "http://b:2"]);
    const fromFlags = loadConfig({ flags: { engineUrl: ["http://c:3", "http://d:4"] } });
    assert.ok(fromFlags.ok);
    assert.deepEqual(fromFlags.config.engine.urls, ["http://c:3", "http://d:4"]);
    const bad = errorsOf(loadConfig({ env: { BRIDGE_ENGINE_URL: "ftp://x" } }));
    assert.deepEqual(bad, ["config error: engine.urls[0] must be a list of http(s) URLs (from BRIDGE_ENGINE_URL)"]);
  });

  test("a list from the environment or a flag that names nothing is refused, not taken as an empty list", () => {
    // Left as [], `--engine-url "$UNSET"` would replace the file's replicas, and an empty PROXY-protocol list turn the
    // header requirement off, without a word.
    const file = writeConfig("lists.json", {
      engine: { urls: ["http://a:1"] },
      mqtt: { proxyProtocol: { trustedSources: ["10.0.0.1"] } },
    });
    assert.deepEqual(errorsOf(loadConfig({ file, env: { BRIDGE_ENGINE_URL: " , " } })), [
      "config error: engine.urls must be a list of http(s) URLs (from BRIDGE_ENGINE_URL)",
    ]);
    assert.deepEqual(errorsOf(loadConfig({ file, flags: { engineUrl: [""] } })), [
      "config error: engine.urls[0] must be a list of http(s) URLs (from --engine-url)",
    ]);
    const proxies = errorsOf(loadConfig({ file, flags: { mqttProxyProtocol: "," } }));
    assert.equal(proxies.length, 1);
    assert.match(proxies[0], /^config error: mqtt\.proxyProtocol\.trustedSources must be a list of IP addresses/);
    assert.match(proxies[0], /\(from --mqtt-proxy-protocol\)$/);
  });

  test("trusted proxies in front of /mqtt come comma-separated from the environment; anything but addresses is refused", () => {
    const none = loadConfig({});
    assert.ok(none.ok);
    assert.deepEqual(none.config.mqtt.trustedProxies, [], "the header is ignored unless proxies are listed");
    const fromEnv = loadConfig({ env: { BRIDGE_MQTT_TRUSTED_PROXIES: "10.0.0.0/8, 2001:db8::1" } });
    assert.ok(fromEnv.ok);
    assert.deepEqual(fromEnv.config.mqtt.trustedProxies, ["10.0.0.0/8", "2001:db8::1"]);
    const bad = errorsOf(
      loadConfig({ file: writeConfig("proxies.json", { mqtt: { trustedProxies: ["proxy.lan"] } }) }),
    );
    assert.equal(bad.length, 1);
    assert.match(bad[0], /^config error: mqtt\.trustedProxies\[0\] must be a list of IP addresses or CIDR ranges/);
  });

  test("dropping the rows of missing agents at start is off unless the environment or a flag turns it on", () => {
    const none = loadConfig({});
    assert.ok(none.ok);
    assert.equal(none.config.agents.dropMissingAgentRows, false);
    const env = loadConfig({ env: { BRIDGE_DROP_MISSING_AGENT_ROWS: "true" } });
    assert.ok(env.ok);
    assert.equal(env.config.agents.dropMissingAgentRows, true);
    const flag = loadConfig({ flags: { dropMissingAgentRows: true } });
    assert.ok(flag.ok);
    assert.equal(flag.config.agents.dropMissingAgentRows, true);
    assert.deepEqual(errorsOf(loadConfig({ env: { BRIDGE_DROP_MISSING_AGENT_ROWS: "maybe" } })), [
      "config error: agents.dropMissingAgentRows must be true or false (from BRIDGE_DROP_MISSING_AGENT_ROWS)",
    ]);
  });

  test("PROXY protocol balancers of the TCP and TLS listeners come from the environment and flags; off by default", () => {
    const none = loadConfig({});
    assert.ok(none.ok);
    assert.deepEqual(none.config.mqtt.proxyProtocol, { trustedSources: [], headerTimeoutMs: 5000 });
    assert.deepEqual(none.config.mqtt.tls.proxyProtocol, { trustedSources: [], headerTimeoutMs: 5000 });
    const tcp = loadConfig({
      env: { BRIDGE_MQTT_PROXY_PROTOCOL: "10.0.0.0/8, 2001:db8::1", BRIDGE_MQTT_PROXY_HEADER_TIMEOUT_MS: "2000" },
    });
    assert.ok(tcp.ok);
    assert.deepEqual(tcp.config.mqtt.proxyProtocol, {
      trustedSources: ["10.0.0.0/8", "2001:db8::1"],
      headerTimeoutMs: 2000,
    });
    const flags = loadConfig({ flags: { mqttProxyProtocol: "192.0.2.10,192.0.2.11" } });
    assert.ok(flags.ok);
    assert.deepEqual(flags.config.mqtt.proxyProtocol.trustedSources, ["192.0.2.10", "192.0.2.11"]);
    const bad = errorsOf(loadConfig({ env: { BRIDGE_MQTT_PROXY_PROTOCOL: "lb.lan" } }));
    assert.equal(bad.length, 1);
    assert.match(
      bad[0],
      /^config error: mqtt\.proxyProtocol\.trustedSources\[0\] must be a list of IP addresses or CIDR ranges.*\(from BRIDGE_MQTT_PROXY_PROTOCOL\)$/,
    );
    // The TLS listener's balancers without a TLS listener: a mistake, not a silent no-op.
    assert.deepEqual(errorsOf(loadConfig({ flags: { tlsProxyProtocol: "10.0.0.1" } })), [
      "config error: mqtt.tls.proxyProtocol.trustedSources needs MQTT over TLS (mqtt.tls.certFile and keyFile) (from --tls-proxy-protocol)",
    ]);
  });

  test("a TLS listener's port, CA or PROXY timeout given without its certificate and key is refused, naming it", () => {
    // A readable file as the CA: only the missing listener is wrong.
    assert.deepEqual(
      errorsOf(loadConfig({ flags: { tlsPort: "8884" }, env: { BRIDGE_TLS_CA: import.meta.filename } })),
      [
        "config error: mqtt.tls.port needs MQTT over TLS (mqtt.tls.certFile and keyFile) (from --tls-port)",
        "config error: mqtt.tls.caFile needs MQTT over TLS (mqtt.tls.certFile and keyFile) (from BRIDGE_TLS_CA)",
      ],
    );
    assert.deepEqual(errorsOf(loadConfig({ env: { BRIDGE_TLS_PROXY_HEADER_TIMEOUT_MS: "2000" } })), [
      "config error: mqtt.tls.proxyProtocol.headerTimeoutMs needs MQTT over TLS (mqtt.tls.certFile and keyFile) (from BRIDGE_TLS_PROXY_HEADER_TIMEOUT_MS)",
    ]);
    // The defaults alone (port 8883 and the rest) stand for nothing and are never refused.
    assert.ok(loadConfig({}).ok);
  });

  test("engine priority aging defaults to 5000 ms, comes from the environment, and 0 (strict priority) is allowed", () => {
    const defaults = loadConfig({});
    assert.ok(defaults.ok);
    assert.equal(defaults.config.engine.priorityAgingMs, 5000);
    const strict = loadConfig({ env: { BRIDGE_ENGINE_PRIORITY_AGING_MS: "0" } });
    assert.ok(strict.ok);
    assert.equal(strict.config.engine.priorityAgingMs, 0);
    const bad = errorsOf(loadConfig({ env: { BRIDGE_ENGINE_PRIORITY_AGING_MS: "-5" } }));
    assert.equal(bad.length, 1);
    assert.match(bad[0], /^config error: engine\.priorityAgingMs .*\(from BRIDGE_ENGINE_PRIORITY_AGING_MS\)$/);
  });

  test("a short API token is refused without echoing it", () => {
    const errors = errorsOf(loadConfig({ env: { BRIDGE_API_TOKEN: "short-secret" } }));
    assert.deepEqual(errors, [
      "config error: http.apiToken must be at least 16 visible ASCII characters (no spaces) (from BRIDGE_API_TOKEN)",
    ]);
    assert.ok(!errors.join("").includes("short-secret"));
  });

  test("an API token no HTTP header can carry as typed (a control or non-ASCII character) is refused", () => {
    for (const token of ["sixteen-chars-ok\u0001", "sixteen-chars-é-ok", "sixteen chars ok!"]) {
      const errors = errorsOf(loadConfig({ overrides: { http: { apiToken: token } } }));
      assert.deepEqual(errors, [
        "config error: http.apiToken must be at least 16 visible ASCII characters (no spaces) (from overrides)",
      ]);
    }
    const ok = loadConfig({ overrides: { http: { apiToken: "!~0123456789abcdef" } } });
    assert.ok(ok.ok, "every visible ASCII character is allowed");
  });

  test("redaction hides the engine key and the API token", () => {
    const result = loadConfig({
      env: { BRIDGE_ENGINE_API_KEY: "sk-engine-key-123", BRIDGE_API_TOKEN: "operator-token-0123456789" },
    });
    assert.ok(result.ok);
    const text = JSON.stringify(redactConfig(result.config));
    assert.ok(!text.includes("sk-engine-key-123"));
    assert.ok(!text.includes("operator-token-0123456789"));
  });

  test("a TLS key without a certificate names the missing field", () => {
    const key = writeConfig("key.pem", "not really a key");
    const errors = errorsOf(loadConfig({ flags: { tlsKey: key } }));
    assert.deepEqual(errors, ["config error: mqtt.tls.certFile is required with mqtt.tls.keyFile (from --tls-key)"]);
  });

  test("agent class modules given as paths resolve against the config file's directory", () => {
    const file = writeConfig("classes.json", {
      agents: { classes: [{ pattern: "thermo-*", module: "./thermo.ts", export: "Thermostat" }] },
    });
    const result = loadConfig({ file });
    assert.ok(result.ok);
    assert.deepEqual(result.config.agents.classes, [
      { pattern: "thermo-*", module: path.join(tmp, "thermo.ts"), export: "Thermostat" },
    ]);
  });
});

describe("configuration docs", () => {
  const docs = fs.readFileSync(new URL("../../docs/configuration.md", import.meta.url), "utf8");

  test("every environment variable and flag appears in the settings table on its setting's row", () => {
    for (const setting of SETTING_SOURCES) {
      const row = docs.split("\n").find((line) => line.startsWith(`| \`${setting.path}\` |`));
      assert.ok(row, `docs/configuration.md has a row for ${setting.path}`);
      if (setting.env) assert.ok(row.includes(`\`${setting.env}\``), `${setting.path} row names ${setting.env}`);
      if (setting.flag) assert.ok(row.includes(`\`${setting.flag}\``), `${setting.path} row names ${setting.flag}`);
    }
  });

  test("every setting of the schema has a row, with its default", () => {
    const result = loadConfig({});
    assert.ok(result.ok);
    const leaves: Array<[string, unknown]> = [];
    const walk = (value: unknown, prefix: string): void => {
      if (value && typeof value === "object" && !Array.isArray(value) && prefix !== "agents.config") {
        for (const [k, v] of Object.entries(value)) walk(v, prefix ? `${prefix}.${k}` : k);
      } else leaves.push([prefix, value]);
    };
    walk(result.config, "");
    for (const [key, value] of leaves) {
      const row = docs.split("\n").find((line) => line.startsWith(`| \`${key}\` |`));
      assert.ok(row, `docs/configuration.md has a row for ${key}`);
      if (typeof value === "number" || typeof value === "boolean") {
        assert.ok(row.includes(`\`${value}\``), `${key} row shows its default ${value}`);
      }
    }
  });
});
