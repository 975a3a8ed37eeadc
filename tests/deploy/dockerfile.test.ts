/**
 * deploy/docker/Dockerfile without Docker: what it copies exists and holds everything `agent-bridge` loads, it runs
 * what `npm start` runs, and its ports, settings and health check are the bridge's. An image that builds but cannot
 * start (a folder left out of the context, a package `npm ci --omit=dev` leaves out) is caught here.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { loadConfig, SETTING_SOURCES } from "../../app/config/index.ts";
import { REPO_ROOT, runtimeImportGraph } from "./support/runtime-import-graph.ts";

interface Instruction {
  name: string;
  args: string;
}

/** The Dockerfile's instructions, continuation lines joined and comments left out. */
function instructions(text: string): Instruction[] {
  const joined = text
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("#"))
    .join("\n")
    .replaceAll(/\\\n/g, " ");
  return joined
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .map((line) => {
      const [name, ...rest] = line.split(/\s+/);
      return { name: name.toUpperCase(), args: rest.join(" ") };
    });
}

const dockerfile = instructions(readFileSync(path.join(REPO_ROOT, "deploy/docker/Dockerfile"), "utf8"));
const all = (name: string): Instruction[] => dockerfile.filter((i) => i.name === name);
const only = (name: string): Instruction => {
  const found = all(name);
  assert.equal(found.length, 1, `one ${name} instruction`);
  return found[0];
};
const packageJson = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
};
const graph = runtimeImportGraph();
const defaults = (() => {
  const loaded = loadConfig({ env: {} });
  assert.ok(loaded.ok);
  return loaded.config;
})();

/** The paths the root .dockerignore lets into the context: it is `*` followed by `!path` lines, nothing else. */
function contextAllowList(): string[] {
  const lines = readFileSync(path.join(REPO_ROOT, ".dockerignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  assert.equal(lines[0], "*", ".dockerignore starts by leaving everything out");
  return lines.slice(1).map((line) => {
    assert.match(line, /^![\w.-]+$/, `${line}: only top-level paths are let back in`);
    return line.slice(1);
  });
}

test("both stages are node:20-bookworm-slim, and the final one runs as an unprivileged user", () => {
  const bases = all("FROM").map((i) => i.args.split(/\s+/)[0]);
  assert.deepEqual(bases, ["node:20-bookworm-slim", "node:20-bookworm-slim"]);
  const user = only("USER").args;
  assert.notEqual(user, "root");
  assert.notEqual(user, "0");
  const lastRun = dockerfile.findLastIndex((i) => i.name === "RUN");
  assert.ok(dockerfile.indexOf(only("USER")) > lastRun, "USER comes after every RUN");
});

test("the command is what package.json's start script runs", () => {
  const command = JSON.parse(only("CMD").args) as string[];
  const start = packageJson.scripts.start.replace(/^exec\s+/, "");
  assert.equal(command.join(" "), start);
  assert.equal(all("ENTRYPOINT").length, 0, "no entrypoint wraps the command");
  for (const word of command.filter((w) => w.includes("/"))) {
    assert.ok(existsSync(path.join(REPO_ROOT, word)), `${word} exists`);
  }
});

test("every file it copies from the context exists, and the context holds every file the bridge loads", () => {
  const allowed = contextAllowList();
  for (const entry of allowed) assert.ok(existsSync(path.join(REPO_ROOT, entry)), `.dockerignore: ${entry} exists`);
  for (const copy of all("COPY").filter((i) => !i.args.startsWith("--from="))) {
    const sources = copy.args.split(/\s+/).slice(0, -1);
    for (const source of sources) {
      if (source === ".") continue;
      assert.ok(existsSync(path.join(REPO_ROOT, source)), `COPY ${source} exists`);
      assert.ok(allowed.includes(source), `COPY ${source} is in the context`);
    }
  }
  for (const lockfile of ["package.json", "package-lock.json"]) assert.ok(allowed.includes(lockfile));
  const missing = [...graph.files].filter((file) => !allowed.includes(file.split("/")[0]));
  assert.deepEqual(missing, [], "files the bridge loads that .dockerignore leaves out of the image");
});

test("npm ci leaves out the dev dependencies, and the bridge imports none of them", () => {
  assert.ok(all("RUN").some((i) => /\bnpm ci --omit=dev\b/.test(i.args)));
  const notInstalled = [...graph.packages].filter((name) => !(name in packageJson.dependencies));
  assert.deepEqual(notInstalled, [], "packages the bridge imports that are not runtime dependencies");
});

test("ports, the data volume and every setting it sets are the bridge's", () => {
  const exposed = only("EXPOSE").args.split(/\s+/).map(Number).sort();
  const ports = [defaults.mqtt.port, defaults.mqtt.tls.port, defaults.http.port].sort();
  assert.deepEqual(exposed, ports);
  const env = new Map<string, string>();
  for (const i of all("ENV")) {
    for (const pair of i.args.split(/\s+/)) {
      const [key, value] = pair.split("=");
      env.set(key, value);
    }
  }
  const known = new Set(SETTING_SOURCES.flatMap((s) => (s.env === undefined ? [] : [s.env])));
  for (const key of env.keys()) assert.ok(known.has(key), `${key} is a setting's environment variable`);
  assert.equal(only("VOLUME").args, env.get("BRIDGE_DATA_DIR"));
  const loaded = loadConfig({ env: Object.fromEntries(env) });
  assert.ok(loaded.ok, JSON.stringify(loaded.ok ? [] : loaded.issues));
});

test("the health check asks /healthz on the operator HTTP port, and SIGTERM stops the container", () => {
  const check = only("HEALTHCHECK").args;
  assert.match(check, /\bCMD\b/);
  const url = `http://127.0.0.1:\${process.env.BRIDGE_HTTP_PORT||${defaults.http.port}}/healthz`;
  assert.ok(check.includes(url), "asks /healthz on BRIDGE_HTTP_PORT, the bridge's default port without it");
  assert.equal(only("STOPSIGNAL").args, "SIGTERM");
});
