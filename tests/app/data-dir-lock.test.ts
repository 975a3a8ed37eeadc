/**
 * The data directory lock's rules within one process: what it leaves in the directory, a second bridge of the same
 * process refused, the owner record only informing (an earlier version's record ignored, an unreadable one named),
 * starts that find the lock busy for a moment trying again, and a lock database or owner record it cannot use named
 * in a clear refusal. Holders in other processes: tests/app/data-dir-lock-holders.test.ts.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { acquireDataDirLock, LOCK_DATABASE_FILE, LOCK_FILE } from "../../app/bridge/data-dir-lock.ts";
import { hasErrorCode } from "../../errors/index.ts";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lock-rules-"));
  dirs.push(dir);
  return dir;
}

/** Runs this file's test named `name` in a child process as the unprivileged user `nobody` (65534), which must pass. */
function runAsNobody(name: string): void {
  // Without the parent runner's context variable, the child runs its test instead of reporting to that runner.
  const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
  const childEnv = { ...inherited, HOME: os.tmpdir() };
  const child = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "--test",
      "--test-reporter=spec",
      `--test-name-pattern=^${name}$`,
      fileURLToPath(import.meta.url),
    ],
    { uid: 65534, gid: 65534, encoding: "utf8", env: childEnv, timeout: 60_000 },
  );
  const output = `${child.stdout}${child.stderr}`;
  assert.equal(child.status, 0, output);
  // The pattern must have matched this one test, and it must have run, not skipped.
  assert.match(output, /^ℹ pass 1$/m, output);
}

function refusedWith(message: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(hasErrorCode(err, "BRIDGE_ERR_DATA_DIR_LOCKED"), String(err));
    assert.equal((err as Error).message, message);
    return true;
  };
}

const recordedNote = "(as recorded by the owner, which may run in another container)";
const byThisProcess = `pid ${process.pid} on host ${os.hostname()} ${recordedNote}`;
const noPause = () => {};

describe("the data directory lock in one process", () => {
  test("holds bridge.lock.db, records its owner in bridge.lock; release removes the record, never the database", () => {
    const dir = tempDir();
    const lock = acquireDataDirLock(dir, { nowMs: () => Date.UTC(2026, 0, 2, 3, 4, 5) });
    assert.equal(lock.file, path.join(dir, LOCK_DATABASE_FILE));
    assert.equal(lock.ownerFile, path.join(dir, LOCK_FILE));
    // No journal or temporary file beside them while the lock is held.
    assert.deepEqual(fs.readdirSync(dir).sort(), [LOCK_FILE, LOCK_DATABASE_FILE]);
    assert.deepEqual(JSON.parse(fs.readFileSync(lock.ownerFile, "utf8")), {
      pid: process.pid,
      startedAt: "2026-01-02T03:04:05.000Z",
      host: os.hostname(),
    });

    lock.release();
    lock.release(); // idempotent
    assert.deepEqual(fs.readdirSync(dir), [LOCK_DATABASE_FILE]);
    // Read only now: a descriptor of the file closed in a process holding the lock would drop that process's lock.
    assert.equal(fs.readFileSync(lock.file).subarray(0, 16).toString("latin1"), "SQLite format 3\0");
    acquireDataDirLock(dir).release();
  });

  test("a second lock in the same process is refused, naming this process; free again once released", () => {
    const dir = tempDir();
    const lock = acquireDataDirLock(dir);
    assert.throws(
      () => acquireDataDirLock(dir, { pause: noPause }),
      refusedWith(`data directory ${dir} is in use by ${byThisProcess}`),
    );
    assert.equal(JSON.parse(fs.readFileSync(lock.ownerFile, "utf8")).pid, process.pid, "the holder's record stays");
    lock.release();
    acquireDataDirLock(dir).release();
  });

  test("an earlier version's record, naming a running pid, is ignored and overwritten", () => {
    const dir = tempDir();
    const earlier = { pid: process.pid, startedAt: "2025-01-01T00:00:00.000Z", processStart: "100", host: "old" };
    fs.writeFileSync(path.join(dir, LOCK_FILE), `${JSON.stringify(earlier)}\n`);
    const lock = acquireDataDirLock(dir, { nowMs: () => Date.UTC(2026, 0, 1) });
    assert.deepEqual(JSON.parse(fs.readFileSync(lock.ownerFile, "utf8")), {
      pid: process.pid,
      startedAt: "2026-01-01T00:00:00.000Z",
      host: os.hostname(),
    });
    lock.release();
  });

  test("a held lock whose record cannot be read is refused all the same, saying the record is unreadable", () => {
    const dir = tempDir();
    const lock = acquireDataDirLock(dir);
    fs.writeFileSync(lock.ownerFile, "not json");
    assert.throws(
      () => acquireDataDirLock(dir, { pause: noPause }),
      refusedWith(
        `data directory ${dir} is in use by another process ` +
          `(its owner record ${lock.ownerFile} is missing or unreadable)`,
      ),
    );
    lock.release();
    assert.equal(fs.readFileSync(lock.ownerFile, "utf8"), "not json", "a record that is not ours is left alone");
  });

  test("a start that finds the lock busy tries again after short pauses: a moment's contention is no refusal", () => {
    const dir = tempDir();
    acquireDataDirLock(dir).release();
    // A reader's shared lock, as a racing start holds it for a moment, denies the exclusive lock a start takes.
    const reader = new Database(path.join(dir, LOCK_DATABASE_FILE));
    reader.exec("BEGIN");
    reader.prepare("SELECT count(*) FROM sqlite_master").get();
    const pauses: number[] = [];
    const lock = acquireDataDirLock(dir, {
      pause: (ms) => {
        pauses.push(ms);
        reader.exec("COMMIT");
      },
    });
    assert.equal(pauses.length, 1, "taken on the second try");
    lock.release();
    reader.close();

    // Held for good: refused after a few pauses of a few ms each.
    const held = acquireDataDirLock(dir);
    const waited: number[] = [];
    assert.throws(
      () => acquireDataDirLock(dir, { pause: (ms) => waited.push(ms) }),
      refusedWith(`data directory ${dir} is in use by ${byThisProcess}`),
    );
    assert.ok(waited.length >= 1 && waited.every((ms) => ms >= 1 && ms <= 8), `pauses ${waited.join(", ")}`);
    held.release();
  });
});

describe("a data directory the lock cannot use", () => {
  test("a lock database that is no SQLite file is named and left as it is; removed, the lock works", () => {
    const dir = tempDir();
    const file = path.join(dir, LOCK_DATABASE_FILE);
    fs.writeFileSync(file, "x".repeat(200));
    assert.throws(
      () => acquireDataDirLock(dir),
      refusedWith(
        `cannot lock data directory ${dir}: its lock database ${file} is not a SQLite database or is damaged ` +
          "(file is not a database, SQLITE_NOTADB); it holds no data: remove it",
      ),
    );
    assert.equal(fs.readFileSync(file, "utf8"), "x".repeat(200));
    assert.deepEqual(fs.readdirSync(dir), [LOCK_DATABASE_FILE], "no owner record is written");
    fs.rmSync(file);
    acquireDataDirLock(dir).release();
  });

  test("a lock database that cannot be opened, or a missing directory, is named with what to check", () => {
    const dir = tempDir();
    const file = path.join(dir, LOCK_DATABASE_FILE);
    fs.mkdirSync(file);
    assert.throws(
      () => acquireDataDirLock(dir),
      refusedWith(
        `cannot lock data directory ${dir}: cannot open its lock database ${file} for writing ` +
          "(unable to open database file, SQLITE_CANTOPEN): the directory and that file must be writable",
      ),
    );
    const missing = path.join(dir, "missing");
    assert.throws(
      () => acquireDataDirLock(missing),
      (err: unknown) =>
        hasErrorCode(err, "BRIDGE_ERR_DATA_DIR_LOCKED") &&
        (err as Error).message.startsWith(
          `cannot lock data directory ${missing}: cannot open its lock database ` +
            `${path.join(missing, LOCK_DATABASE_FILE)} for writing (`,
        ),
    );
  });

  // Root writes in a read-only directory, so as root (CI) this test runs itself again as an unprivileged user.
  const READONLY_TEST = "a read-only data directory is refused, with or without a lock database of an earlier run";
  test(READONLY_TEST, () => {
    if (process.getuid?.() === 0) {
      runAsNobody(READONLY_TEST);
      return;
    }
    const fresh = tempDir();
    const used = tempDir();
    acquireDataDirLock(used).release();
    for (const dir of [fresh, used]) fs.chmodSync(dir, 0o555);
    try {
      assert.throws(
        () => acquireDataDirLock(fresh),
        (err: unknown) =>
          hasErrorCode(err, "BRIDGE_ERR_DATA_DIR_LOCKED") &&
          (err as Error).message.startsWith(
            `cannot lock data directory ${fresh}: cannot open its lock database ` +
              `${path.join(fresh, LOCK_DATABASE_FILE)} for writing (`,
          ),
      );
      assert.deepEqual(fs.readdirSync(fresh), []);
      // The lock database can be locked, but the owner record cannot be written beside it.
      assert.throws(
        () => acquireDataDirLock(used),
        (err: unknown) =>
          hasErrorCode(err, "BRIDGE_ERR_DATA_DIR_LOCKED") &&
          (err as Error).message.startsWith(
            `cannot lock data directory ${used}: cannot write the owner record ${path.join(used, LOCK_FILE)}: `,
          ),
      );
      assert.deepEqual(fs.readdirSync(used), [LOCK_DATABASE_FILE]);
    } finally {
      for (const dir of [fresh, used]) fs.chmodSync(dir, 0o755);
    }
  });

  test("an owner record that cannot be written refuses the start and lets the lock go", () => {
    const dir = tempDir();
    const ownerFile = path.join(dir, LOCK_FILE);
    fs.mkdirSync(ownerFile);
    assert.throws(
      () => acquireDataDirLock(dir),
      (err: unknown) =>
        hasErrorCode(err, "BRIDGE_ERR_DATA_DIR_LOCKED") &&
        (err as Error).message.startsWith(
          `cannot lock data directory ${dir}: cannot write the owner record ${ownerFile}: `,
        ),
    );
    assert.deepEqual(fs.readdirSync(dir).sort(), [LOCK_FILE, LOCK_DATABASE_FILE], "no temporary file is left");
    fs.rmdirSync(ownerFile);
    acquireDataDirLock(dir, { pause: noPause }).release();
  });
});
