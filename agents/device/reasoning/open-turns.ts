/**
 * The turns of an agent that have not ended (running, waiting for an approval, queued), kept in memory by request
 * id, asker and status. Every `up/reason` asks whether its id is busy and whether a slot is free, and every turn's
 * end asks whether a turn is queued: answered here without a statement. Apart from turn-store.ts because it is its
 * own concept (a read-once index kept in step with the writes), and that store is its only writer.
 *
 * A request id is its asker's: the device's (whichever of its sessions asked, as its turns follow it to a new one)
 * or one viewer connection's. A viewer asking under an id the device uses, or another viewer uses, takes nothing of
 * theirs, and the answers never mix: each turn's frames go to its own asker only.
 */
import type { SqlTag } from "../sql.ts";
import { type Turn, type TurnOrigin, type TurnStatus, turnOrigin } from "./turn.ts";

/** The statuses of a turn that has not ended. */
export type OpenStatus = Extract<TurnStatus, "running" | "awaiting_approval" | "queued">;

/** Who asked a turn, as far as its request id is concerned: the origin, and for a viewer its connection. */
export type Asker = Pick<Turn, "requestId" | "origin" | "connId">;

/** What the agent keeps of a turn that has not ended: enough to answer an `up/reason` without a statement. */
interface OpenTurn {
  requestId: string;
  origin: TurnOrigin;
  connId: string;
  status: OpenStatus;
}

export function isOpenStatus(status: string): status is OpenStatus {
  return status === "running" || status === "awaiting_approval" || status === "queued";
}

/**
 * The open turns, read once and then kept in step by `track`, which only TurnStore calls, after each of its writes.
 * After a rolled-back event they are read again (`invalidate`).
 */
export class OpenTurns {
  /** The turns not ended, by turn id; undefined: read them again (`#read`). */
  #byId: Map<string, OpenTurn> | undefined;

  constructor(private readonly sql: SqlTag) {}

  /** Forgets them (after a rolled-back event): they are read again when next needed. */
  invalidate(): void {
    this.#byId = undefined;
  }

  /** Whether turn `id` is known open, without reading: false while they are not read yet. */
  isKnownOpen(id: string): boolean {
    return this.#byId?.has(id) === true;
  }

  #read(): Map<string, OpenTurn> {
    if (this.#byId === undefined) {
      const open = new Map<string, OpenTurn>();
      for (const row of this.sql<{ id: string; request_id: string; origin: string; conn_id: string; status: string }>`
        SELECT id, request_id, origin, conn_id, status
        FROM reason_turns WHERE status IN ('running', 'awaiting_approval', 'queued')`) {
        if (!isOpenStatus(row.status)) continue;
        const origin = turnOrigin(row.origin);
        open.set(row.id, { requestId: row.request_id, origin, connId: row.conn_id, status: row.status });
      }
      this.#byId = open;
    }
    return this.#byId;
  }

  /**
   * Keeps the open turns in step with a write that gave turn `id` (asked by `asker`) `status`. Called only after
   * the write succeeded; a write that is rolled back later is undone by `invalidate`. Nothing to do while they are
   * not read yet: they will be read with the write.
   */
  track(id: string, asker: Asker, status: string): void {
    const open = this.#byId;
    if (open === undefined) return;
    if (!isOpenStatus(status)) {
      open.delete(id);
      return;
    }
    const known = open.get(id);
    if (known !== undefined) known.status = status;
    else open.set(id, { requestId: asker.requestId, origin: asker.origin, connId: asker.connId, status });
  }

  /** Whether any turn has not ended. */
  any(): boolean {
    return this.#read().size > 0;
  }

  /** Whether an open turn has `status`. */
  has(status: OpenStatus): boolean {
    for (const turn of this.#read().values()) if (turn.status === status) return true;
    return false;
  }

  /** Request ids of the running turns. */
  runningRequestIds(): string[] {
    const ids: string[] = [];
    for (const turn of this.#read().values()) if (turn.status === "running") ids.push(turn.requestId);
    return ids;
  }

  /**
   * Whether request id `requestId`, asked from connection `connId` of `origin`, belongs to a turn of the same asker
   * that has not ended (which will still stream under it): "running", "waiting" (for an approval or queued for a
   * slot), or undefined when it is free. Every `up/reason` asks.
   */
  requestState(requestId: string, origin: TurnOrigin, connId: string): "running" | "waiting" | undefined {
    let state: "running" | undefined;
    for (const turn of this.#read().values()) {
      // The device's ids are the device's whatever session asked; a viewer's are its connection's.
      if (turn.requestId !== requestId || turn.origin !== origin) continue;
      if (origin === "viewer" && turn.connId !== connId) continue;
      // A waiting turn under the id says so, whatever else runs under it.
      if (turn.status !== "running") return "waiting";
      state = "running";
    }
    return state;
  }

  /**
   * How many turns of `origin` run a round now: each holds one of its origin's slots (the device's
   * `maxConcurrentTurns`, the viewers' `maxConcurrentViewerTurns`; turn-queue.ts).
   */
  runningCount(origin: TurnOrigin): number {
    let n = 0;
    for (const turn of this.#read().values()) if (turn.status === "running" && turn.origin === origin) n++;
    return n;
  }
}
