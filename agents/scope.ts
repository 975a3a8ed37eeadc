import type { DownMessage } from "../codecs/frames.ts";
import type { ProtocolMessage } from "./host.ts";

/** Something an event wants to happen only after its writes committed (output gate). */
export type Output =
  | { type: "send"; connectionId: string; message: DownMessage; qos: 0 | 1 }
  | { type: "protocol"; connectionId: string; message: ProtocolMessage }
  | { type: "close"; connectionId: string; reason: string }
  | { type: "action"; run: () => void };

/**
 * What a scope holds until its first output or undo step: most events have neither, and two arrays per event were a
 * visible share of a one-event batch. Frozen, so a push that bypassed addOutput/addUndo fails loudly.
 */
const NO_OUTPUTS: Output[] = Object.freeze([]) as unknown as Output[];
const NO_UNDO: Array<() => void> = Object.freeze([]) as unknown as Array<() => void>;
const NO_WRITES: Array<() => void> = Object.freeze([]) as unknown as Array<() => void>;

/**
 * The bookkeeping of one event or nested savepoint: frames held behind the output gate, undo steps for in-memory
 * changes, so a rolled-back savepoint leaves memory exactly as the database, and writes deferred to the scope's end.
 */
export class Scope {
  readonly parent: Scope | null;
  /** Read-only outside this class: add with addOutput. */
  outputs: Output[] = NO_OUTPUTS;
  /** Read-only outside this class: add with addUndo. */
  undo: Array<() => void> = NO_UNDO;
  /**
   * Writes that belong to this scope but need not happen where they were asked for: they run, in order, when the
   * scope ends well, before its savepoint is released or its transaction commits (cell-scope.ts, writeDeferred), and
   * are dropped with it when it rolls back. An eager task's row (tasks.ts): the task's first I/O leaves before it.
   * Take with takeDeferredWrites.
   */
  #deferredWrites: Array<() => void> = NO_WRITES;
  /** Set when setState ran inside this scope; its source connection (or null). */
  stateSource: { source: string | null } | null = null;

  /** True for the root scope of a write made outside any event (agent code in a timer): it commits on its own. */
  readonly implicit: boolean;

  constructor(parent: Scope | null, implicit = false) {
    this.parent = parent;
    this.implicit = implicit;
  }

  addOutput(o: Output): void {
    if (this.outputs === NO_OUTPUTS) this.outputs = [o];
    else this.outputs.push(o);
  }

  addUndo(step: () => void): void {
    if (this.undo === NO_UNDO) this.undo = [step];
    else this.undo.push(step);
  }

  /** Defers a write to this scope's end (see #deferredWrites). */
  addDeferredWrite(write: () => void): void {
    if (this.#deferredWrites === NO_WRITES) this.#deferredWrites = [write];
    else this.#deferredWrites.push(write);
  }

  /** The deferred writes not yet run, in order; the scope holds none afterwards. */
  takeDeferredWrites(): Array<() => void> {
    const writes = this.#deferredWrites;
    this.#deferredWrites = NO_WRITES;
    return writes;
  }

  get root(): Scope {
    let s: Scope = this;
    while (s.parent !== null) s = s.parent;
    return s;
  }

  /** Keeps this scope's effects: hands outputs, undo steps (and deferred writes not run yet) to the parent. */
  mergeIntoParent(): void {
    const p = this.parent;
    if (p === null) return;
    for (const o of this.outputs) p.addOutput(o);
    for (const u of this.undo) p.addUndo(u);
    for (const w of this.takeDeferredWrites()) p.addDeferredWrite(w);
    if (this.stateSource !== null) p.stateSource = this.stateSource;
  }

  /** Drops this scope's effects: reverts in-memory changes newest first. */
  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]();
    this.undo = NO_UNDO;
    this.outputs = NO_OUTPUTS;
    this.#deferredWrites = NO_WRITES;
    this.stateSource = null;
  }
}
