import type { Value } from "../codecs/frames.ts";
import type { AgentCell } from "./cell.ts";
import { readDirectoryEntries } from "./directory-index.ts";
import { reportError, write } from "./cell-scope.ts";
import { queueProtocol } from "./protocol-output.ts";
import type { Scope } from "./scope.ts";
import { writeStateChunks } from "./state-store.ts";
import type { Connection } from "./types.ts";
import { encodeValue } from "./value-codec.ts";

// The agent state and directory writes of AgentCell (cell.ts). The state lives decoded in `cell.state` (loaded on
// wake, cell-lifecycle.ts); a change inside an event is persisted and broadcast at the event's end (cell-batch.ts,
// finishState), a change outside any event with its own write here. Every in-memory change has an undo step in the
// current scope, so a rollback leaves memory as the database. Functions taking the cell, like cell-batch.ts.

/** AgentCell.writeStateBytes: writes the encoded state in chunks; the scope's undo restores the chunk count. */
export function writeStateBytes(cell: AgentCell, scope: Scope, bytes: Uint8Array): void {
  const previousChunks = cell.stateChunks;
  cell.stateChunks = writeStateChunks(cell.sqlRunner(), bytes, previousChunks);
  scope.addUndo(() => {
    cell.stateChunks = previousChunks;
  });
}

/** AgentCell.setAgentState: the agent's setState, checked and encodable at the call. */
export function setAgentState(cell: AgentCell, next: Value, source: Connection | null): void {
  const agent = cell.liveAgent();
  agent.validateStateChange(next, source);
  encodeValue(next); // a value that cannot be stored fails here, at the call, not at commit
  write(cell, () => {
    const previous = cell.state;
    cell.state = next;
    const scope = cell.scope!;
    scope.addUndo(() => {
      cell.state = previous;
    });
    if (!scope.root.implicit) {
      scope.stateSource = { source: source?.id ?? null };
      return;
    }
    // Outside an event there is no event end to persist at: persist and broadcast with this write.
    writeStateBytes(cell, scope, encodeValue(next));
    for (const conn of cell.connections.values()) {
      if (conn.id !== source?.id) queueProtocol(cell, conn, { type: "state", state: next });
    }
    scope.addOutput({
      type: "action",
      run: () => {
        Promise.resolve()
          .then(() => agent.onStateChanged(next, source))
          .catch((err: unknown) => reportError(cell, err, "onStateChanged"));
      },
    });
  });
}

/** AgentCell.directoryPut: the fleet directory; this agent's row in its own DB now, the runtime's index after commit. */
export function directoryPut(cell: AgentCell, kind: string, key: string, value: Value | null): void {
  write(cell, () => {
    const sql = cell.sqlRunner();
    if (value === null) sql.run("DELETE FROM _bridge_directory WHERE kind = ? AND key = ?", kind, key);
    else
      sql.run(
        "INSERT OR REPLACE INTO _bridge_directory (kind, key, value) VALUES (?, ?, ?)",
        kind,
        key,
        encodeValue(value),
      );
    cell.core.alarms.markPending(cell.id);
    cell.output({
      type: "action",
      run: () => indexDirectory(cell, () => cell.core.db.directoryPut(cell.id, kind, key, value)),
    });
  });
}

/**
 * A write of the runtime's directory index after commit. One runtime.db refuses is tried again later from the agent's
 * own rows, read now (directory-index.ts); until it lands, the pending mark that the change set stays
 * (clearPendingOnLeave), so after a crash the next start wakes the agent and its start event puts the index back.
 */
export function indexDirectory(cell: AgentCell, writeIndex: () => void): void {
  cell.core.directoryIndex.write(cell.id, writeIndex, () => readDirectoryEntries(cell.sqlRunner()));
}
