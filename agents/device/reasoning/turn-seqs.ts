/**
 * Chunk sequence numbers of a DeviceAgent's reasoning turns (`seq` of each `down/reason` frame: 0, 1, 2, ... per
 * request). The streaming path is kept off SQLite, so a turn's next seq lives in memory and reaches its row's `seq`
 * column exactly with the turn's next status change (parked for an approval, finished: turn-store.ts). While the turn
 * streams, the column holds a bound reserved ahead of the chunks instead (SEQ_RESERVE seqs at a time: written with
 * the turn's row, then one UPDATE per SEQ_RESERVE chunks, so most answers write nothing more). A turn whose memory was
 * lost mid-stream (a restart, a crash, a stranded turn's agent hibernating) ends with a final frame numbered from
 * that bound, past every seq a frame of it took: the device sees a gap, never a seq twice.
 */
import type { SqlTag } from "../sql.ts";

/**
 * How many chunk seqs a streaming turn's `seq` column is reserved ahead of the chunks sent: a 64-token answer streams
 * in about 8 to 30 chunks, so most answers write no reservation after the turn's row.
 */
export const SEQ_RESERVE = 64;

export class TurnSeqs {
  /** Next chunk seq per turn. */
  readonly #next = new Map<string, number>();
  /**
   * The `seq` column of each turn as this event's writes left it, when known: no frame may take a seq at or above
   * it before a reservation past it is written. Dropped after a rollback (`invalidate`), which may have undone one.
   */
  readonly #stored = new Map<string, number>();
  /** The seq each turn's final frame took (see `takeFinal`). */
  readonly #final = new Map<string, number>();

  constructor(private readonly sql: SqlTag) {}

  /**
   * Turn `id` was just inserted with `seq` SEQ_RESERVE: its chunks count from 0 (ids are MAX + 1, so a pruned or
   * rolled-back id can come back, and must start from 0 again).
   */
  opened(id: string): void {
    this.#next.set(id, 0);
    this.#stored.set(id, SEQ_RESERVE);
    this.#final.delete(id);
  }

  /** The turn's next seq as memory knows it; undefined when only its row does. */
  next(id: string): number | undefined {
    return this.#next.get(id);
  }

  /** A write left the turn's `seq` column at `seq` (a status change writes the next seq exactly). */
  stored(id: string, seq: number): void {
    this.#stored.set(id, seq);
  }

  /**
   * Takes the next chunk sequence number of the turn: in memory, written exactly at the next status change; the
   * `seq` column is moved SEQ_RESERVE past it when it is not already past it.
   */
  take(id: string): number {
    const seq = this.peek(id);
    this.#next.set(id, seq + 1);
    const stored = this.#stored.get(id);
    if (stored === undefined || stored <= seq) {
      const reserved = seq + 1 + SEQ_RESERVE;
      this.sql`UPDATE reason_turns SET seq = MAX(seq, ${reserved}) WHERE id = ${id}`;
      this.#stored.set(id, reserved);
    }
    return seq;
  }

  /**
   * Takes the seq of the turn's final frame. An end that rolled back took one for a frame that never left (a rolled
   * back event sends nothing): when no chunk took a seq since, the end done again takes that same one, so the device
   * sees no gap before its final frame.
   */
  takeFinal(id: string): number {
    const taken = this.#final.get(id);
    if (taken !== undefined && this.#next.get(id) === taken + 1) return taken;
    const seq = this.take(id);
    this.#final.set(id, seq);
    return seq;
  }

  /** The seq the next chunk of the turn will take, without taking it. */
  peek(id: string): number {
    return (
      this.#next.get(id) ??
      Number(this.sql<{ seq: number }>`SELECT seq FROM reason_turns WHERE id = ${id}`[0]?.seq ?? 0)
    );
  }

  /** The turn's row was deleted (pruned). */
  forget(id: string): void {
    this.#next.delete(id);
    this.#stored.delete(id);
    this.#final.delete(id);
  }

  /** After a rolled-back event: the `seq` columns it wrote may have been undone. */
  invalidate(): void {
    this.#stored.clear();
  }
}
