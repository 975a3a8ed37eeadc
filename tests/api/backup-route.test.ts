import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import Fastify from "fastify";
import pino from "pino";
import { registerOperatorApi } from "../../app/api/index.ts";
import { BackupService } from "../../app/backup/service.ts";
import { createMetrics } from "../../app/metrics/index.ts";
import { tempDir } from "../agents/helpers.ts";
import { AUTH, TOKEN } from "./helpers.ts";
import { idleOperatorDeps } from "./idle-operator-deps.ts";

/** A bridge's backup with a runtime whose copy waits for the test: the first backup stays running meanwhile. */
async function fixture(dataDir: string, backupDir = path.join(dataDir, "backups")) {
  let release = (): void => {};
  let held = false;
  const runtime = {
    backup: async (dir: string) => {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, "runtime.db"), "r");
      if (held) await new Promise<void>((resolve) => (release = resolve));
      return { agents: 0, bytes: 1 };
    },
  };
  const registry = {
    backupTo: (into: string) => {
      fs.writeFileSync(into, "reg");
      return 3;
    },
  };
  const metrics = createMetrics({ defaultMetrics: false });
  const service = new BackupService(
    {
      dataDir,
      registry,
      runtime,
      logger: pino({ level: "silent" }),
      now: () => Date.UTC(2026, 0, 15, 12, 0, 0),
      monotonicNow: () => performance.now(),
    },
    backupDir,
    metrics.backupObserver,
  );
  const app = Fastify();
  await registerOperatorApi(app, {
    ...idleOperatorDeps(),
    apiToken: TOKEN,
    backup: service,
  });
  return {
    app,
    metrics,
    hold: () => {
      held = true;
    },
    release: () => {
      held = false;
      release();
    },
  };
}

describe("POST /api/backup", () => {
  const t = tempDir("backup-route-");
  after(() => t.remove());

  test("writes a snapshot under backup.dir and answers where, with its size", async () => {
    const dataDir = path.join(t.dir, "one");
    const f = await fixture(dataDir);
    const res = await f.app.inject({ method: "POST", url: "/api/backup", headers: AUTH });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as { dir: string; agents: number; bytes: number; durationMs: number };
    assert.equal(body.dir, path.join(dataDir, "backups", "backup-2026-01-15T12-00-00-000Z"));
    assert.equal(body.agents, 0);
    assert.equal(body.bytes, fs.statSync(path.join(body.dir, "backup.json")).size + 4);
    assert.equal(fs.statSync(body.dir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(body.dir, "registry.db")).mode & 0o777, 0o600);
    const scrape = await f.metrics.scrape();
    assert.match(scrape, /bridge_backups_total\{outcome="ok"\} 1/);
    assert.match(scrape, /bridge_backup_last_success_timestamp_seconds 1768478400/);
    await f.app.close();
  });

  test("a second backup while one runs is answered 409, and the first still completes", async () => {
    const dataDir = path.join(t.dir, "two");
    const f = await fixture(dataDir);
    f.hold();
    const first = f.app.inject({ method: "POST", url: "/api/backup", headers: AUTH, payload: { dir: "first" } });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = await f.app.inject({ method: "POST", url: "/api/backup", headers: AUTH, payload: { dir: "x" } });
    assert.equal(second.statusCode, 409, second.body);
    assert.equal((second.json() as { error: { code: string } }).error.code, "BRIDGE_ERR_BACKUP_IN_PROGRESS");
    assert.match(await f.metrics.scrape(), /^bridge_backup_running 1$/m, "the refusal leaves the first one running");
    assert.deepEqual(
      fs.readdirSync(path.join(dataDir, "backups")).filter((n) => !n.startsWith(".")),
      [],
      "nothing looks complete while the first is written",
    );
    f.release();
    assert.equal((await first).statusCode, 200);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, "backups")), ["first"], "no temporary folder is left");
    assert.match(await f.metrics.scrape(), /bridge_backups_total\{outcome="refused"\} 1/);
    await f.app.close();
  });

  test("refuses a dir outside backup.dir or one that exists, and a request without the token", async () => {
    const dataDir = path.join(t.dir, "three");
    const f = await fixture(dataDir);
    for (const dir of ["../escape", "/srv/elsewhere", "."]) {
      const res = await f.app.inject({ method: "POST", url: "/api/backup", headers: AUTH, payload: { dir } });
      assert.equal(res.statusCode, 400, `${dir}: ${res.body}`);
      assert.equal((res.json() as { error: { code: string } }).error.code, "BRIDGE_ERR_BACKUP_TARGET");
    }
    fs.mkdirSync(path.join(dataDir, "backups", "taken"), { recursive: true });
    const taken = await f.app.inject({ method: "POST", url: "/api/backup", headers: AUTH, payload: { dir: "taken" } });
    assert.equal(taken.statusCode, 400, taken.body);
    assert.match((taken.json() as { error: { message: string } }).error.message, /exists already/);
    const nul = await f.app.inject({ method: "POST", url: "/api/backup", headers: AUTH, payload: { dir: "a\u0000b" } });
    assert.equal(nul.statusCode, 400, nul.body);
    assert.equal((nul.json() as { error: { code: string } }).error.code, "BRIDGE_ERR_BACKUP_TARGET");
    const anonymous = await f.app.inject({ method: "POST", url: "/api/backup" });
    assert.equal(anonymous.statusCode, 401);
    await f.app.close();
  });

  test("a backup.dir that cannot be a folder is a failed backup that names it, and counted as one", async () => {
    const dataDir = path.join(t.dir, "four");
    fs.mkdirSync(dataDir, { recursive: true });
    const backupDir = path.join(dataDir, "not-a-folder");
    fs.writeFileSync(backupDir, "x");
    const f = await fixture(dataDir, backupDir);
    const res = await f.app.inject({ method: "POST", url: "/api/backup", headers: AUTH });
    assert.equal(res.statusCode, 500, res.body);
    const error = (res.json() as { error: { code: string; message: string } }).error;
    assert.equal(error.code, "BRIDGE_ERR_BACKUP_FAILED");
    assert.match(error.message, /not-a-folder/);
    const scrape = await f.metrics.scrape();
    assert.match(scrape, /bridge_backups_total\{outcome="failed"\} 1/);
    assert.match(scrape, /^bridge_backup_running 0$/m);
    await f.app.close();
  });
});
