/**
 * Storage faults of runtime.db for tests: `RuntimeDb`'s writes throw "disk I/O error" while the fault's `failing` is
 * set. Every runtime of the process shares the prototype; `restore` puts the methods back. Also a crash snapshot: a
 * copy of a running runtime's data directory is what a kill -9 at that moment would leave on disk.
 */
import fs from "node:fs";
import { RuntimeDb } from "../../agents/runtime-db.ts";

/** runtime.db refuses every alarm write while `failing`; the attempts and the writes that landed. */
export function alarmWriteFault() {
  const setAlarm = RuntimeDb.prototype.setAlarm;
  const fault = {
    failing: false,
    attempts: 0,
    written: [] as Array<{ agentId: string; at: number | null }>,
    restore() {
      RuntimeDb.prototype.setAlarm = setAlarm;
    },
  };
  RuntimeDb.prototype.setAlarm = function (this: RuntimeDb, agentId: string, at: number | null): void {
    fault.attempts++;
    if (fault.failing) throw new Error("disk I/O error");
    setAlarm.call(this, agentId, at);
    fault.written.push({ agentId, at });
  };
  return fault;
}

/** runtime.db refuses to delete an agent's rows (destroyAgent) while `failing`; the deletes that landed. */
export function deleteAgentFault() {
  const deleteAgent = RuntimeDb.prototype.deleteAgent;
  const fault = {
    failing: false,
    deleted: [] as string[],
    restore() {
      RuntimeDb.prototype.deleteAgent = deleteAgent;
    },
  };
  RuntimeDb.prototype.deleteAgent = function (this: RuntimeDb, agentId: string): boolean {
    if (fault.failing) throw new Error("disk I/O error");
    const had = deleteAgent.call(this, agentId);
    fault.deleted.push(agentId);
    return had;
  };
  return fault;
}

/**
 * Copies `dataDir` to `copyDir` as it is now on disk (databases and their WAL files): what a process killed at this
 * moment leaves behind, for a second runtime to start on. Uncommitted transactions are not in it.
 */
export function crashSnapshot(dataDir: string, copyDir: string): string {
  fs.cpSync(dataDir, copyDir, { recursive: true });
  return copyDir;
}

/**
 * runtime.db refuses every write of the fleet directory's index (one entry, or an agent's entries replaced) while
 * `failing`; the attempts, refused or not.
 */
export function directoryWriteFault() {
  const directoryPut = RuntimeDb.prototype.directoryPut;
  const directoryReplace = RuntimeDb.prototype.directoryReplace;
  const fault = {
    failing: false,
    attempts: 0,
    restore() {
      RuntimeDb.prototype.directoryPut = directoryPut;
      RuntimeDb.prototype.directoryReplace = directoryReplace;
    },
  };
  RuntimeDb.prototype.directoryPut = function (this: RuntimeDb, ...args: Parameters<RuntimeDb["directoryPut"]>) {
    fault.attempts++;
    if (fault.failing) throw new Error("disk I/O error");
    directoryPut.apply(this, args);
  };
  RuntimeDb.prototype.directoryReplace = function (
    this: RuntimeDb,
    ...args: Parameters<RuntimeDb["directoryReplace"]>
  ) {
    fault.attempts++;
    if (fault.failing) throw new Error("disk I/O error");
    directoryReplace.apply(this, args);
  };
  return fault;
}
