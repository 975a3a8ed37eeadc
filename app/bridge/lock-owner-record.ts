/**
 * The owner record of a data directory's lock: `<dataDir>/bridge.lock`, a line of JSON saying which process holds
 * the lock, for the refusal message of a start that finds it taken and for operators reading the file. It decides
 * nothing: the kernel lock on `bridge.lock.db` does (app/bridge/data-dir-lock.ts). It is written only by the holder
 * of that lock, after taking it, so a record left by a killed bridge, or in an earlier version's format, is simply
 * overwritten by the next owner.
 */
import fs from "node:fs";

/** Name of the owner record inside the data directory. */
export const LOCK_FILE = "bridge.lock";

/** What the owner record holds (JSON). */
export interface LockOwner {
  /** The owner's pid as it sees itself: in a container, the pid inside that container's pid namespace. */
  pid: number;
  /** ISO time the owner took the lock. */
  startedAt: string;
  /** The owner's host name (a container's own, in a container). */
  host: string;
}

/**
 * Puts `text` in place as the record at `file`: written to a temporary file and renamed over, so a reader never sees
 * a record half written. Only the lock's holder writes, so one fixed temporary name is enough. Throws the fs error.
 */
export function writeOwnerRecord(file: string, text: string): void {
  const temp = `${file}.tmp`;
  try {
    fs.writeFileSync(temp, text, { mode: 0o644 });
    fs.renameSync(temp, file);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
}

/** The record at `file`, or undefined when there is none or it is not one (another program's file, cut short). */
export function readOwnerRecord(file: string): Partial<LockOwner> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const fields = parsed as Record<string, unknown>;
  const owner: Partial<LockOwner> = {};
  if (Number.isSafeInteger(fields.pid) && (fields.pid as number) > 0) owner.pid = fields.pid as number;
  if (typeof fields.host === "string" && fields.host !== "") owner.host = fields.host;
  return owner.pid === undefined ? undefined : owner;
}

/** Removes the record at `file` if it still is `text` (ours); never throws. */
export function removeOwnerRecord(file: string, text: string): void {
  try {
    if (fs.readFileSync(file, "utf8") === text) fs.rmSync(file, { force: true });
  } catch {
    // Already gone, or unreadable: nothing of ours to remove.
  }
}

/**
 * Who holds the lock, as its record says, for a refusal message: "pid N on host H (...)". The pid and host are the
 * owner's own view, which from here may name another container's process, so the words say so.
 */
export function describeOwner(owner: Partial<LockOwner> | undefined, file: string): string {
  if (owner?.pid === undefined) return `another process (its owner record ${file} is missing or unreadable)`;
  const host = owner.host === undefined ? "" : ` on host ${owner.host}`;
  return `pid ${owner.pid}${host} (as recorded by the owner, which may run in another container)`;
}
