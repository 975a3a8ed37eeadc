/**
 * The data directory lock against holders in other processes, all real: a live holder refuses a start and
 * `devices rm --purge`; a holder killed with SIGKILL, one that is a zombie (exited, never reaped) and one in a pid
 * namespace of its own (another container's, as it were) that died leave the lock free at once, since the kernel
 * drops it with the process; and of many processes racing for a free lock, exactly one takes it, round after round.
 * Holders and contenders are tests/app/support/lock-holder.ts and lock-contender.ts.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import type { Readable } from "node:stream";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { acquireDataDirLock, LOCK_DATABASE_FILE, LOCK_FILE } from "../../app/bridge/data-dir-lock.ts";
import { purgeDevice } from "../../app/cli/devices-purge.ts";
import { createDeviceRegistry } from "../../broker/registry/index.ts";
import { hasErrorCode } from "../../errors/index.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const HOLDER = fileURLToPath(new URL("./support/lock-holder.ts", import.meta.url));
const CONTENDER = fileURLToPath(new URL("./support/lock-contender.ts", import.meta.url));
const hasProc = fs.existsSync("/proc/self/stat");
/** Whether an unprivileged process may start one in a new pid namespace here (user namespaces enabled). */
const canUnshare = hasProc && spawnSync("unshare", ["-rpf", "--mount-proc", "true"]).status === 0;

const dirs: string[] = [];
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) child.kill("SIGKILL");
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lock-holders-"));
  dirs.push(dir);
  return dir;
}

/** Reads `child`'s stdout line by line: each call resolves with the next line. */
function lineReader(child: ChildProcess): () => Promise<string> {
  const waiting: Array<(line: string) => void> = [];
  const ready: string[] = [];
  readline.createInterface({ input: child.stdout as Readable }).on("line", (line) => {
    const next = waiting.shift();
    if (next === undefined) ready.push(line);
    else next(line);
  });
  return () => {
    const line = ready.shift();
    return line === undefined ? new Promise((resolve) => waiting.push(resolve)) : Promise.resolve(line);
  };
}

/** Starts `command` (which runs a process of ours, e.g. the holder) with stdout piped and stderr shown. */
function start(command: string, args: string[]): { child: ChildProcess; nextLine: () => Promise<string> } {
  const child = spawn(command, args, { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
  children.push(child);
  return { child, nextLine: lineReader(child) };
}

/** A holder of `dir`'s lock in a process of its own, started by `prefix` (e.g. unshare) or directly. */
async function startHolder(dir: string, prefix: string[] = []): Promise<ChildProcess> {
  const args = [...prefix, process.execPath, "--import", "tsx", HOLDER, dir];
  const holder = start(args[0] as string, args.slice(1));
  assert.equal(await holder.nextLine(), "held");
  return holder.child;
}

function ownerPid(dir: string): number {
  return (JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), "utf8")) as { pid: number }).pid;
}

function inUseBy(dir: string, pid: number): string {
  return (
    `data directory ${dir} is in use by pid ${pid} on host ${os.hostname()} ` +
    "(as recorded by the owner, which may run in another container)"
  );
}

function refusedWith(message: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(hasErrorCode(err, "BRIDGE_ERR_DATA_DIR_LOCKED"), String(err));
    assert.equal((err as Error).message, message);
    return true;
  };
}

/** Takes `dir`'s lock, which must be free, checks that the record names this process, and gives it back. */
function assertFree(dir: string): void {
  const lock = acquireDataDirLock(dir);
  assert.equal(ownerPid(dir), process.pid, "the owner record is this process's");
  lock.release();
}

/**
 * Whether `pid` is a zombie whose exit is over: its main thread shows Z as soon as that thread exits, while the other
 * threads may still be exiting and the process's files still open. The process has exited once none is left.
 */
function exitedZombie(pid: number): boolean {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  return state === "Z" && fs.readdirSync(`/proc/${pid}/task`).length === 1;
}

describe("the data directory lock held by another process", () => {
  test("a start and devices rm --purge are refused, naming the holder; released, the lock is free", async () => {
    const dir = tempDir();
    const holder = await startHolder(dir);
    assert.equal(ownerPid(dir), holder.pid);
    assert.throws(() => acquireDataDirLock(dir), refusedWith(inUseBy(dir, holder.pid as number)));

    const registry = createDeviceRegistry({ path: ":memory:" });
    try {
      const purge = await purgeDevice(dir, registry, "thermo-1");
      assert.deepEqual(purge, { status: "bridge-running", message: inUseBy(dir, holder.pid as number) });
    } finally {
      registry.close();
    }

    holder.stdin?.write("release\n");
    await once(holder, "exit");
    assert.deepEqual(fs.readdirSync(dir), [LOCK_DATABASE_FILE], "the record is removed, the lock database stays");
    assertFree(dir);
  });

  test("a holder killed with SIGKILL leaves the lock free at once; its record is overwritten", async () => {
    const dir = tempDir();
    const holder = await startHolder(dir);
    holder.kill("SIGKILL");
    await once(holder, "exit");
    assert.equal(ownerPid(dir), holder.pid, "SIGKILL leaves the record behind");
    assertFree(dir);
  });

  test("a zombie holder (exited, never reaped) holds nothing", {
    skip: !hasProc && "needs Linux's /proc",
  }, async () => {
    const dir = tempDir();
    // The holder runs in the background of a shell that then becomes `sleep`, which never reaps it.
    const holderCommand = [process.execPath, "--import", "tsx", HOLDER, dir].map((arg) => `'${arg}'`).join(" ");
    const parent = start("sh", ["-c", `${holderCommand} & echo $!; exec sleep 60`]);
    const holderPid = Number(await parent.nextLine());
    assert.equal(await parent.nextLine(), "held");
    assert.throws(() => acquireDataDirLock(dir), refusedWith(inUseBy(dir, holderPid)));

    process.kill(holderPid, "SIGKILL");
    for (let waited = 0; !exitedZombie(holderPid); waited += 10) {
      assert.ok(waited < 5000, `pid ${holderPid} became no zombie`);
      await sleep(10);
    }
    // A pid check would take it for a live owner: kill(pid, 0) succeeds on a zombie.
    assert.doesNotThrow(() => process.kill(holderPid, 0));
    assertFree(dir);
  });

  test("a holder in a pid namespace of its own is refused while it runs, and leaves the lock free once killed", {
    skip: !canUnshare && "needs unprivileged user namespaces (unshare -rpf --mount-proc)",
  }, async () => {
    const dir = tempDir();
    const unshare = await startHolder(dir, ["unshare", "-rpf", "--mount-proc"]);
    // Its pid as it sees itself: pid 1 of its namespace, which here is init.
    assert.equal(ownerPid(dir), 1);
    assert.throws(() => acquireDataDirLock(dir), refusedWith(inUseBy(dir, 1)));

    // As a container is killed: SIGKILL to the holder, by its pid in this namespace (unshare's only child).
    const self = unshare.pid as number;
    const holderPid = Number(fs.readFileSync(`/proc/${self}/task/${self}/children`, "utf8").trim());
    process.kill(holderPid, "SIGKILL");
    await once(unshare, "exit");
    assert.equal(ownerPid(dir), 1, "the record of the killed holder stays");
    assertFree(dir);
  });
});

const CONTENDERS = 6;
const ROUNDS = 60;
/** How far ahead of its sending a round's start time lies: every contender has read it by then (ms). */
const ROUND_LEAD_MS = 10;

test("of many processes released together on a free lock, exactly one takes it, round after round", async () => {
  const contenders = Array.from({ length: CONTENDERS }, () => start(process.execPath, ["--import", "tsx", CONTENDER]));
  const everyLine = () => Promise.all(contenders.map((contender) => contender.nextLine()));
  const shared = tempDir();
  for (let round = 1; round <= ROUNDS; round++) {
    // Every other round on a directory with no lock database yet, so that creating it is raced for too.
    const dir = round % 2 === 0 ? shared : tempDir();
    const at = performance.timeOrigin + performance.now() + ROUND_LEAD_MS;
    for (const { child } of contenders) child.stdin?.write(`take ${dir} ${at}\n`);
    const outcomes = await everyLine();
    assert.deepEqual(
      outcomes.filter((outcome) => outcome !== "won" && outcome !== "refused"),
      [],
      `round ${round}: the others are refused with BRIDGE_ERR_DATA_DIR_LOCKED only`,
    );
    const winners = contenders.filter((_, index) => outcomes[index] === "won");
    assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners`);
    assert.equal(ownerPid(dir), winners[0]?.child.pid, `round ${round}: the record names the winner`);
    for (const { child } of contenders) child.stdin?.write("release\n");
    assert.deepEqual(new Set(await everyLine()), new Set(["released"]));
  }
});
