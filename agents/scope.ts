import type { DownMessage } from "../codecs/frames.ts";
import type { ProtocolMessage } from "./host.ts";

/** Something an event wants to happen only after its writes committed (output gate). */
export type Output =
  | { type: "send"; connectionId: string; message: DownMessage; qos: 0 | 1 }
  | { type: "protocol"; connectionId: string; message: ProtocolMessage }
  | { type: "close"; connectionId: string; reason: string }
  | { type: "action"; run: () => void };

/**
 * The bookkeeping of one event or nested savepoint: frames held behind the output gate, and undo steps for
 * in-memory changes, so a rolled-back savepoint leaves memory exactly as the database.
 */
export class Scope {
  readonly parent: Scope | null;
  outputs: Output[] = [];
  undo: Array<() => void> = [];
  /** Set when setState ran inside this scope; its source connection (or null). */
  stateSource: { source: string | null } | null = null;

  /** True for the root scope of a write made outside any event (agent code in a timer): it commits on its own. */
  readonly implicit: boolean;

  constructor(parent: Scope | null, implicit = false) {
    this.parent = parent;
    this.implicit = implicit;
  }

  get root(): Scope {
    let s: Scope = this;
    while (s.parent !== null) s = s.parent;
    return s;
  }

  /** Keeps this scope's effects: hands outputs and undo steps to the parent. */
  mergeIntoParent(): void {
    const p = this.parent;
    if (p === null) return;
    for (const o of this.outputs) p.outputs.push(o);
    for (const u of this.undo) p.undo.push(u);
    if (this.stateSource !== null) p.stateSource = this.stateSource;
  }

  /** Drops this scope's effects: reverts in-memory changes newest first. */
  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]();
    this.undo = [];
    this.outputs = [];
    this.stateSource = null;
  }
}
